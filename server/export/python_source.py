"""Readable PyTorch source that rebuilds a network and loads its safetensors weights.

The generated file needs torch only (not this server, not the safetensors package: it carries a
twenty-line reader of the format). It holds the layer modules the network uses (only those),
copied with `inspect.getsource` from the classes training builds (server/spec/layers/*.py), so
the export and training cannot drift apart; a `Network` whose `layers` list is written out one
constructor call per layer with its output shape as a comment; `load(path)`; and a `__main__`
that loads the weights and prints the output for an example input.

The constructor calls are read from the built modules, not re-derived from the spec, so what
the file constructs is what trained: the same module tree and state dict names
(`layers.0.linear.weight`), hence `load_state_dict(strict=True)` checks the match. SelfAttention
takes the server's AttentionSpec and Shape: the file copies Shape and defines a small
`AttentionSpec` holding only the settings the module reads. A module type this generator does
not know raises ExportError naming the layer.
"""

from __future__ import annotations

import inspect
import pprint
import unicodedata
from collections.abc import Callable

from torch import nn

from server.export.errors import ExportError
from server.nn.build import Network
from server.spec.layers.attention import SelfAttention, sinusoidal
from server.spec.layers.conv import Conv
from server.spec.layers.core import Dense, SequenceBatchNorm
from server.spec.layers.recurrent import PoolSequence, Recurrent
from server.spec.shapes import Shape

TRAINING_CODE: list[type | Callable] = [
    Dense, Conv, SequenceBatchNorm, Recurrent, PoolSequence, Shape, sinusoidal, SelfAttention,
]
"""The server's classes and functions a generated file may copy, in the order it defines them."""

# What a class's code uses besides itself (copied with it); ATTENTION_SPEC is generated text.
NEEDS: dict[type | Callable, list[type | Callable]] = {SelfAttention: [Shape, sinusoidal]}

ATTENTION_SPEC = '''

class AttentionSpec:
    """The settings SelfAttention reads from the server's attention layer spec (which also
    validates them and infers shapes)."""

    def __init__(self, heads, d_model, causal, residual, norm):
        self.heads, self.d_model = heads, d_model
        self.causal, self.residual, self.norm = causal, residual, norm

    def width(self, shape):
        return self.d_model
'''


def training_source(obj: type | Callable) -> str:
    """The source of a class or function of TRAINING_CODE, exactly as training runs it."""
    return inspect.getsource(obj)

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


def module_source(m: nn.Module, used: set, shape: Shape | None = None) -> str:
    """A Python expression that constructs a module like `m` (weights aside) with the
    constructors of the copied training code; adds what it needs of TRAINING_CODE to `used`.
    `shape` is the shape the layer receives (attention needs it). Raises ExportError for an
    unknown module."""
    act = _activation(m)
    if act is not None:
        return act
    kind = type(m)
    if kind is Dense:
        used.add(Dense)
        bias = m.linear.bias is not None
        return (f"Dense({m.linear.in_features}, {m.linear.out_features}, bias={bias}, "
                f"activation={module_source(m.activation, used)})")
    if kind is Conv:
        used.add(Conv)
        return f"Conv({module_source(m.conv, used)}, {module_source(m.activation, used)})"
    if kind is Recurrent:
        used.add(Recurrent)
        return f"Recurrent({_rnn(m.rnn)}, return_sequences={m.return_sequences})"
    if kind is PoolSequence:
        used.add(PoolSequence)
        return f"PoolSequence({m.mode!r})"
    if kind is SequenceBatchNorm:
        used.add(SequenceBatchNorm)
        return f"SequenceBatchNorm({_norm_args(m)})"
    if kind is SelfAttention and shape is not None:
        return _attention_source(m, used, shape)
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


def _attention_source(m: SelfAttention, used: set, shape: Shape) -> str:
    """SelfAttention(AttentionSpec(...), Shape(...), positional): the spec settings read back
    from the module, the shape it received, the positional encoding it holds."""
    used.add(SelfAttention)
    if m.positional is not None:
        positional = "learned"
    elif m.fixed_positional is not None:
        positional = "sinusoidal"
    else:
        positional = "none"
    spec = (f"AttentionSpec(heads={m.heads}, d_model={m.query.in_features}, causal={m.causal}, "
            f"residual={m.residual}, norm={m.norm is not None})")
    return f"SelfAttention({spec}, {shape!r}, {positional!r})"


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
    used: set = set()
    lines = []
    received = [network.input_shape, *network.shapes[:-1]]
    for i, (layer, layer_spec, shape) in enumerate(
            zip(network.layers, network.layer_specs, network.shapes, strict=True)):
        try:
            expr = module_source(layer, used, received[i])
        except ExportError as err:
            raise ExportError(f"Layer {i} ({layer_spec.type}) cannot be exported as python: "
                              f"{err}; download the model as safetensors or onnx instead") from err
        settings = layer_spec.model_dump(exclude_defaults=True, exclude={"type"})
        words = " ".join(f"{k}={v}" for k, v in settings.items())
        lines.append(f"            # {i}: {' '.join([layer_spec.type, words]).strip()}"
                     f" -> {shape.describe()}")
        lines.append(_wrap(expr, "            ") + ",")
    needed = used.union(*(NEEDS.get(u, []) for u in used))
    classes = "\n\n".join(training_source(obj) for obj in TRAINING_CODE if obj in needed)
    if SelfAttention in used:
        classes += ATTENTION_SPEC
    imports = ("from __future__ import annotations\n\nimport json\nimport math\nimport struct\n"
               "import sys\n" + ("from dataclasses import dataclass\n" if Shape in needed else "")
               + "\nimport torch\nfrom torch import nn\n")
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
    return (_header(network, spec) + "\n" + imports + "\n" + constants + "\n\n" + classes
            + network_class + "\n" + READER + MAIN)
