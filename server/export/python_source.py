"""Readable PyTorch source that rebuilds a network and loads its safetensors weights.

The generated file needs torch only (not this server, not the safetensors package: it carries a
twenty-line reader of the format). It holds plain `nn.Module` classes for the layer types the
network uses (only those), a `Network` whose `layers` list is written out one constructor per
layer with its output shape as a comment, `load(path)`, and a `__main__` that loads the weights
and prints the output for an example input.

The source is generated from the built modules, not re-derived from the spec, so what it
constructs is what trained: the same module tree and state dict names (`layers.0.linear.weight`),
hence `load_state_dict(strict=True)` checks the match. A module type this generator does not
know raises ExportError naming the layer.
"""

from __future__ import annotations

import pprint
import textwrap
import unicodedata

from torch import nn

from server.export.errors import ExportError
from server.nn.build import Network
from server.spec.layers.attention import SelfAttention
from server.spec.layers.conv import Conv
from server.spec.layers.core import Dense, SequenceBatchNorm
from server.spec.layers.recurrent import PoolSequence, Recurrent

# The classes a generated file may define, each with what it needs defined before it.
CLASS_SOURCE: dict[str, str] = {
    "Dense": '''
class Dense(nn.Module):
    """Linear then activation; on a sequence it acts on every time step."""

    def __init__(self, linear, activation):
        super().__init__()
        self.linear = linear
        self.activation = activation

    def forward(self, x):  # (batch, [time,] features)
        return self.activation(self.linear(x))  # (batch, [time,] units)
''',
    "Conv": '''
class Conv(nn.Module):
    """Conv2d then activation."""

    def __init__(self, conv, activation):
        super().__init__()
        self.conv = conv
        self.activation = activation

    def forward(self, x):  # (batch, channels, height, width)
        return self.activation(self.conv(x))  # (batch, filters, height', width')
''',
    "SequenceBatchNorm": '''
class SequenceBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d over the features of a sequence (torch wants them in dimension 1)."""

    def forward(self, x):  # (batch, time, features)
        return super().forward(x.transpose(1, 2)).transpose(1, 2)
''',
    "Recurrent": '''
class Recurrent(nn.Module):
    """An RNN/LSTM/GRU (batch first) giving the whole sequence or the final state."""

    def __init__(self, rnn, return_sequences):
        super().__init__()
        self.rnn = rnn
        self.return_sequences = return_sequences
        self.directions = 2 if rnn.bidirectional else 1

    def forward(self, x):  # (batch, time, features)
        out, state = self.rnn(x)  # out: (batch, time, units * directions)
        if self.return_sequences:
            return out
        h = state[0] if isinstance(state, tuple) else state  # (layers * dirs, batch, units)
        last = h[-self.directions:]  # the top layer's final state, per direction
        return torch.cat(list(last), dim=-1)  # (batch, units * directions)
''',
    "PoolSequence": '''
class PoolSequence(nn.Module):
    """A sequence (batch, time, features) to one vector (batch, features)."""

    def __init__(self, mode):
        super().__init__()
        self.mode = mode

    def forward(self, x):  # (batch, time, features)
        if self.mode == "last":
            return x[:, -1]
        if self.mode == "mean":
            return x.mean(dim=1)
        return x.amax(dim=1)
''',
    "sinusoidal": '''
def sinusoidal(time, width):
    """The fixed positional encoding of "Attention is all you need": (time, width)."""
    position = torch.arange(time, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, width, 2, dtype=torch.float32)
                     * (-math.log(10000.0) / width))
    pe = torch.zeros(time, width)
    pe[:, 0::2] = torch.sin(position * rate)
    pe[:, 1::2] = torch.cos(position * rate[: width // 2])
    return pe
''',
    "SelfAttention": '''
class SelfAttention(nn.Module):
    """Multi-head self-attention with optional token embedding, input projection, positional
    encoding ("learned", "sinusoidal" or "none"), causal mask, residual sum and layer norm."""

    def __init__(self, width, heads, time, tokens=None, features=None, positional="none",
                 causal=False, residual=True, norm=True):
        super().__init__()
        self.heads, self.causal, self.residual = heads, causal, residual
        self.embed = nn.Embedding(tokens, width) if tokens is not None else None
        self.project = nn.Linear(features, width) if features is not None else None
        self.positional = (nn.Parameter(torch.zeros(time, width)) if positional == "learned"
                           else None)
        self.register_buffer("fixed_positional", sinusoidal(time, width)
                             if positional == "sinusoidal" else None, persistent=False)
        self.query, self.key, self.value, self.out = (nn.Linear(width, width) for _ in range(4))
        self.norm = nn.LayerNorm(width) if norm else None

    def forward(self, x):  # (batch, time) token ids or (batch, time, features)
        if self.embed is not None:
            x = self.embed(x)  # (batch, time, width)
        elif self.project is not None:
            x = self.project(x)  # (batch, time, width)
        if self.positional is not None:
            x = x + self.positional
        if self.fixed_positional is not None:
            x = x + self.fixed_positional
        b, t, d = x.shape
        hd = d // self.heads

        def split(y):
            return y.view(b, t, self.heads, hd).transpose(1, 2)  # (batch, heads, time, hd)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-2, -1) / math.sqrt(hd)  # (batch, heads, time, time)
        if self.causal:
            future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(future, float("-inf"))
        weights = scores.softmax(dim=-1)  # (batch, heads, time, time)
        y = (weights @ v).transpose(1, 2).reshape(b, t, d)  # (batch, time, width)
        y = self.out(y)
        if self.residual:
            y = x + y
        if self.norm is not None:
            y = self.norm(y)
        return y  # (batch, time, width)
''',
}
NEEDS = {"SelfAttention": ["sinusoidal"]}

READER = '''
SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}


def read_safetensors(path):
    """The tensors of a .safetensors file: an 8-byte little-endian header length, a JSON header
    (name -> dtype, shape, byte offsets), then the raw little-endian data."""
    with open(path, "rb") as f:
        data = f.read()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size])
    body = memoryview(data)[8 + size:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = SAFETENSORS_DTYPES[info["dtype"]]
        if end == begin:
            tensors[name] = torch.empty(info["shape"], dtype=dtype)
        else:
            raw = bytearray(body[begin:end])
            tensors[name] = torch.frombuffer(raw, dtype=dtype).reshape(info["shape"])
    return tensors
'''

MAIN = '''

def load(path=WEIGHTS):
    """The network with the weights of `path` (the job's .safetensors download), in eval mode."""
    network = Network()
    network.load_state_dict(read_safetensors(path))
    return network.eval()


def example_input(batch=4):
    """A random batch of the shape and type the network takes."""
    if INPUT_TOKENS is not None:
        return torch.randint(0, INPUT_TOKENS, (batch, *INPUT_SHAPE))
    return torch.randn(batch, *INPUT_SHAPE)


if __name__ == "__main__":
    network = load(sys.argv[1] if len(sys.argv) > 1 else WEIGHTS)
    with torch.no_grad():
        print(network(example_input()))
'''


def _activation(m: nn.Module) -> str | None:
    simple = (nn.ReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Identity)
    if type(m) in simple:
        return f"nn.{type(m).__name__}()"
    if type(m) is nn.LeakyReLU:
        return f"nn.LeakyReLU({m.negative_slope!r})"
    if type(m) is nn.Softmax:
        return f"nn.Softmax(dim={m.dim!r})"
    return None


def _rnn(m: nn.RNNBase) -> str:
    args = [str(m.input_size), str(m.hidden_size)]
    if m.num_layers != 1:
        args.append(f"num_layers={m.num_layers}")
    if isinstance(m, nn.RNN) and m.nonlinearity != "tanh":
        args.append(f"nonlinearity={m.nonlinearity!r}")
    if not m.bias:
        args.append("bias=False")
    args.append("batch_first=True")
    if m.bidirectional:
        args.append("bidirectional=True")
    return f"nn.{type(m).__name__}({', '.join(args)})"


def _norm_args(m: nn.modules.batchnorm._BatchNorm) -> str:
    return f"{m.num_features}, eps={m.eps!r}, momentum={m.momentum!r}"


def module_source(m: nn.Module, used: set[str]) -> str:
    """A Python expression that constructs a module like `m` (weights aside); adds the names
    of the generated classes it needs to `used`. Raises ExportError for an unknown module."""
    act = _activation(m)
    if act is not None:
        return act
    kind = type(m)
    if kind is Dense:
        used.add("Dense")
        return f"Dense({module_source(m.linear, used)}, {module_source(m.activation, used)})"
    if kind is Conv:
        used.add("Conv")
        return f"Conv({module_source(m.conv, used)}, {module_source(m.activation, used)})"
    if kind is Recurrent:
        used.add("Recurrent")
        return f"Recurrent({_rnn(m.rnn)}, return_sequences={m.return_sequences})"
    if kind is PoolSequence:
        used.add("PoolSequence")
        return f"PoolSequence({m.mode!r})"
    if kind is SequenceBatchNorm:
        used.add("SequenceBatchNorm")
        return f"SequenceBatchNorm({_norm_args(m)})"
    if kind is SelfAttention:
        return _attention_source(m, used)
    if kind is nn.Linear:
        bias = "" if m.bias is not None else ", bias=False"
        return f"nn.Linear({m.in_features}, {m.out_features}{bias})"
    if kind is nn.Conv2d:
        padding = m.padding if isinstance(m.padding, str) else tuple(m.padding)
        bias = "" if m.bias is not None else ", bias=False"
        return (f"nn.Conv2d({m.in_channels}, {m.out_channels}, kernel_size={tuple(m.kernel_size)}"
                f", stride={tuple(m.stride)}, padding={padding!r}{bias})")
    if kind in (nn.MaxPool2d, nn.AvgPool2d):
        return f"nn.{kind.__name__}({m.kernel_size!r}, stride={m.stride!r}, padding={m.padding!r})"
    if kind in (nn.BatchNorm1d, nn.BatchNorm2d):
        return f"nn.{kind.__name__}({_norm_args(m)})"
    if kind is nn.LayerNorm:
        return f"nn.LayerNorm({list(m.normalized_shape)}, eps={m.eps!r})"
    if kind is nn.Dropout:
        return f"nn.Dropout({m.p!r})"
    if kind is nn.Flatten:
        return f"nn.Flatten({m.start_dim}, {m.end_dim})"
    if kind is nn.Embedding:
        return f"nn.Embedding({m.num_embeddings}, {m.embedding_dim})"
    raise ExportError(f"the python export does not know the module {kind.__name__}")


def _attention_source(m: SelfAttention, used: set[str]) -> str:
    used.update({"SelfAttention", "sinusoidal"})
    width = m.query.in_features
    args = [f"width={width}", f"heads={m.heads}"]
    time = None
    if m.positional is not None:
        time, positional = m.positional.shape[0], "learned"
    elif m.fixed_positional is not None:
        time, positional = m.fixed_positional.shape[0], "sinusoidal"
    else:
        positional = "none"
    args.append(f"time={time}")
    if m.embed is not None:
        args.append(f"tokens={m.embed.num_embeddings}")
    if m.project is not None:
        args.append(f"features={m.project.in_features}")
    args += [f"positional={positional!r}", f"causal={m.causal}", f"residual={m.residual}",
             f"norm={m.norm is not None}"]
    if m.norm is not None and (m.norm.eps != 1e-5 or not m.norm.elementwise_affine):
        raise ExportError("the python export supports attention layer norm with eps 1e-5 only")
    return f"SelfAttention({', '.join(args)})"


def _top_level_args(text: str) -> list[str]:
    """The arguments of `f(a, g(b, c), d=1)` split at the commas outside brackets."""
    args, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(text[start:i].strip())
            start = i + 1
    args.append(text[start:].strip())
    return args


def _wrap(expr: str, indent: str, width: int = 96) -> str:
    """`expr` on one line when it fits, else its call's arguments one per line."""
    if len(indent) + len(expr) <= width or "(" not in expr or not expr.endswith(")"):
        return indent + expr
    name, inner = expr[: expr.index("(")], expr[expr.index("(") + 1 : -1]
    args = [_wrap(a, indent + "    ", width) + "," for a in _top_level_args(inner)]
    return f"{indent}{name}(\n" + "\n".join(args) + f"\n{indent})"


def _doc(text: object) -> str:
    """User text (a job name, uploaded class names) made safe inside the docstring: no quote,
    backslash or line break can end it early and turn the rest into code, and no control
    character (a NUL makes the file unreadable to Python) or lone surrogate (not UTF-8) stays."""
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c for c in str(text))
    return " ".join(text.replace("\\", "/").replace('"', "'").split())


def _header(network: Network, spec: dict) -> str:
    data = network.data
    name = _doc(spec.get("name") or "a network")
    dataset = spec.get("dataset", {})
    if data.input.tokens is not None:
        takes = f"int64 token ids (batch, {', '.join(map(str, data.input.dims))}), " \
                f"vocabulary {data.input.tokens}"
    else:
        takes = f"float32 (batch, {', '.join(map(str, data.input.dims))})"
    if dataset.get("features") and data.kind == "points2d":
        takes += f": features {_doc(', '.join(dataset['features']))}"
    if data.task == "regression":
        gives = f"(batch, {data.output_units}) predicted values"
    elif data.output_units == 1:
        gives = "(batch, 1) logits: class 1 where > 0 (sigmoid gives its probability)"
    else:
        gives = f"(batch, {data.output_units}) logits: argmax is the class (softmax gives " \
                "probabilities)"
    classes = f"\nClasses: {_doc(', '.join(data.class_names))}." if data.class_names else ""
    return f'''"""{name}: a network trained in the neural network playground, as plain PyTorch.

Data set: {_doc(dataset.get("name", "?"))} ({data.task}).
Input: {takes}.
Output: {gives}.{classes}

Needs torch only. Run `python {{this file}} model.safetensors` to load the weights (the job's
safetensors download) and print the output for a random batch, or in Python:

    from model import load  # this file, saved as model.py
    network = load("model.safetensors")
    output = network(x)
"""
'''


def python_source(network: Network, spec: dict | None = None) -> str:
    """The source of a module that rebuilds `network` and loads its safetensors weights."""
    spec = spec or {}
    used: set[str] = set()
    lines = []
    for i, (layer, layer_spec, shape) in enumerate(
            zip(network.layers, network.layer_specs, network.shapes, strict=True)):
        try:
            expr = module_source(layer, used)
        except ExportError as err:
            raise ExportError(f"Layer {i} ({layer_spec.type}) cannot be exported as python: "
                              f"{err}; download the model as safetensors or onnx instead") from err
        settings = layer_spec.model_dump(exclude_defaults=True, exclude={"type"})
        words = " ".join(f"{k}={v}" for k, v in settings.items())
        lines.append(f"            # {i}: {' '.join([layer_spec.type, words]).strip()}"
                     f" -> {shape.describe()}")
        lines.append(_wrap(expr, "            ") + ",")
    order = [name for name in CLASS_SOURCE if name in used
             or any(name in NEEDS.get(u, []) for u in used)]
    classes = "\n".join(textwrap.dedent(CLASS_SOURCE[n]) for n in order)
    imports = "import json\nimport math\nimport struct\nimport sys\n\nimport torch\nfrom torch " \
              "import nn\n"
    data = network.data
    constants = (f"INPUT_SHAPE = {tuple(data.input.dims)!r}  # per sample, without the batch\n"
                 f"INPUT_TOKENS = {data.input.tokens!r}  # vocabulary size for token ids, "
                 "else None\n"
                 f"WEIGHTS = \"model.safetensors\"\n"
                 "# The job spec it was trained with.\n"
                 f"SPEC = {pprint.pformat(spec, width=96, sort_dicts=False)}\n")
    network_class = (
        "\n\nclass Network(nn.Module):\n"
        '    """The trained network: its layers in order, the output layer last."""\n\n'
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.layers = nn.ModuleList([\n" + "\n".join(lines) + "\n        ])\n\n"
        "    def forward(self, x):\n"
        "        for layer in self.layers:\n"
        "            x = layer(x)\n"
        "        return x\n"
    )
    return (_header(network, spec) + "\n" + imports + "\n" + constants + "\n" + classes
            + network_class + "\n" + READER + MAIN)
