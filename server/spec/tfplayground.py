"""Map a TensorFlow Playground link (its URL hash) to the job spec that reproduces its setup.

Pure: no FastAPI, no torch, no data generation. `import_tfplayground(text)` takes a whole link,
the part after `#`, or the bare `key=value&...` string, and returns a `TFPlaygroundImport`:
the job spec as a plain JSON dict (validate it with `JobSpec.model_validate`), plus every field
of the link that could not be mapped (`unmapped`, with the reason and what was used instead),
the UI-only fields left out (`ignored`, with the reason) and `notes` on what is approximate.
Nothing in the link is dropped silently.

The hash is read the way TF Playground's `State.deserializeState` (src/state.ts) reads it: a key
counts when its value is not blank; booleans are true unless the value is exactly `false`;
numbers use JavaScript's `+value`; an unknown choice (`activation=swish`) keeps the default.
What the page then does with the state is in src/playground.ts: 500 samples for
classification and 1200 for regression, noise = `noise / 100`, train share =
`percTrainData / 100`, plain SGD that updates after every `batchSize` examples, one hidden
activation for every layer, only the inputs x, y, xSquared, ySquared, xTimesY, sinX and sinY
(the page has no cosX or cosY input although its state has the flags).
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus, urlsplit

SAMPLES_CLASSIFICATION = 500
SAMPLES_REGRESSION = 1200
EPOCHS = 500  # TF Playground trains until paused; a finite default keeps a classroom server free.

ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "linear": "linear"}
REGULARIZATIONS = {"none": "none", "L1": "l1", "L2": "l2"}
DATASETS = {"circle": "circle", "xor": "xor", "gauss": "gauss", "spiral": "spiral"}
REG_DATASETS = {"reg-plane": "plane", "reg-gauss": "multi_gauss"}
PROBLEMS = ("classification", "regression")

# TF Playground's input flags in the order its page lists them, with our feature names.
FEATURES = {
    "x": "x1",
    "y": "x2",
    "xSquared": "x1^2",
    "ySquared": "x2^2",
    "xTimesY": "x1*x2",
    "sinX": "sin(x1)",
    "sinY": "sin(x2)",
}
# In the state but not among the page's inputs: setting them changes nothing there.
NO_OP_FEATURES = {"cosX": "cos(x1)", "cosY": "cos(x2)"}

UI_ONLY = {
    "showTestData": "only shows the test points on the page; every job here reports test metrics",
    "discretize": "only changes how the page draws the output heatmap",
    "collectStats": "only turns on the page's usage statistics",
    "hideText": "only hides the page's article text",
    "tutorial": "selects a tutorial text on the page",
}

# Defaults of TF Playground's State class, as strings the way a hash would carry them.
DEFAULTS: dict[str, str] = {
    "activation": "tanh",
    "regularization": "none",
    "batchSize": "10",
    "dataset": "circle",
    "regDataset": "reg-plane",
    "learningRate": "0.03",
    "regularizationRate": "0",
    "noise": "0",
    "networkShape": "4,2",
    "percTrainData": "50",
    "x": "true",
    "y": "true",
    "xTimesY": "false",
    "xSquared": "false",
    "ySquared": "false",
    "cosX": "false",
    "sinX": "false",
    "cosY": "false",
    "sinY": "false",
    "problem": "classification",
    "initZero": "false",
}


class TFPlaygroundError(ValueError):
    """The link cannot become a job at all (for example it selects no input feature)."""


SITE_HOST = "playground.tensorflow.org"
NOT_A_LINK = (
    "This is not a TensorFlow Playground link: {what}. Paste the address of a "
    "playground.tensorflow.org page (https://playground.tensorflow.org/#activation=tanh&...) "
    "or the part after its #."
)


def _is_site_link(text: str) -> bool:
    """Whether `text` is an address on TF Playground's own site (with or without a hash)."""
    address = text.strip().split("#", 1)[0]
    host = urlsplit(address if "://" in address else f"https://{address}").hostname or ""
    return host == SITE_HOST or host.endswith("." + SITE_HOST)


def _known(name: str) -> bool:
    return name in DEFAULTS or name in UI_ONLY or name == "seed" or name.endswith("_hide")


def check_is_link(text: str, pairs: dict[str, str]) -> None:
    """Refuse a text that is neither a TF Playground address nor a hash naming at least one
    of its settings ("hello world", another site's address): importing it would silently
    replace the setup with the defaults."""
    if _is_site_link(text) or any(_known(name) for name in pairs):
        return
    stripped = text.strip()
    if not stripped:
        what = "the text is empty"
    elif "://" in stripped.split("#", 1)[0]:
        what = f"{stripped.split('#', 1)[0][:80]!r} is another site's address and names no " \
               "TF Playground setting"
    else:
        what = f"{stripped[:80]!r} names none of its settings (activation, dataset, " \
               "networkShape, learningRate, ...)"
    raise TFPlaygroundError(NOT_A_LINK.format(what=what))


@dataclass
class TFPlaygroundImport:
    """The result of an import: the spec plus what did not carry over, each with its reason."""

    spec: dict[str, Any]
    unmapped: list[dict[str, Any]] = field(default_factory=list)
    ignored: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "unmapped": self.unmapped, "ignored": self.ignored,
                "notes": self.notes}


def parse_hash(text: str) -> dict[str, str]:
    """`key=value` pairs of a TF Playground link, its hash, or the bare hash text.

    Like TF Playground, a repeated key keeps its last value and a value stops at a second `=`.
    """
    text = text.strip()
    if "#" in text:
        text = text.split("#", 1)[1]
    elif "://" in text or text.startswith(SITE_HOST):
        text = ""  # a link without a hash: every setting is the default
    pairs: dict[str, str] = {}
    for part in text.split("&"):
        if not part.strip():
            continue
        name, _, value = part.partition("=")
        pairs[unquote_plus(name.strip())] = unquote_plus(value.split("=", 1)[0])
    return pairs


def seed_from_text(seed: str) -> int:
    """An integer seed for TF Playground's string seed: `0.12345` -> 12345, else a CRC32."""
    if re.fullmatch(r"0\.\d{1,9}", seed):
        return int(seed[2:].ljust(5, "0"))
    return zlib.crc32(seed.encode()) & 0x7FFFFFFF


def _js_number(value: str) -> float | None:
    """JavaScript's `+value` for the forms a link carries; None where it would give NaN."""
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


class _Reader:
    """Reads the hash field by field and records what it could not use."""

    def __init__(self, pairs: dict[str, str]) -> None:
        self.pairs = pairs
        self.seen: set[str] = set()
        self.result = TFPlaygroundImport(spec={})

    def has(self, name: str) -> bool:
        self.seen.add(name)
        return name in self.pairs and self.pairs[name].strip() != ""

    def unmapped(self, name: str, reason: str) -> None:
        self.result.unmapped.append(
            {"field": name, "value": self.pairs.get(name), "reason": reason})

    def ignored(self, name: str, reason: str) -> None:
        self.seen.add(name)
        self.result.ignored.append({"field": name, "value": self.pairs.get(name), "reason": reason})

    def choice(self, name: str, choices: dict[str, str]) -> str:
        default = choices[DEFAULTS[name]]
        if not self.has(name):
            return default
        value = self.pairs[name]
        if value not in choices:
            self.unmapped(name, f"unknown value {value!r}; expected one of: "
                          f"{', '.join(choices)}; used {DEFAULTS[name]!r} as TF Playground does")
            return default
        return choices[value]

    def number(self, name: str, low: float, high: float, what: str) -> float:
        default = float(DEFAULTS[name])
        if not self.has(name):
            return default
        number = _js_number(self.pairs[name])
        if number is None or not low <= number <= high:
            self.unmapped(name, f"{what} must be a number from {low:g} to {high:g}; "
                          f"got {self.pairs[name]!r}; used the default {DEFAULTS[name]}")
            return default
        return number

    def flag(self, name: str) -> bool:
        value = self.pairs[name] if self.has(name) else DEFAULTS.get(name, "false")
        return value != "false"


def import_tfplayground(text: str) -> TFPlaygroundImport:
    """The job spec reproducing a TF Playground link, with what could not be carried over."""
    pairs = parse_hash(text)
    check_is_link(text, pairs)
    read = _Reader(pairs)
    out = read.result

    problem = read.choice("problem", {p: p for p in PROBLEMS})
    if problem == "classification":
        dataset = read.choice("dataset", DATASETS)
        if read.has("regDataset"):
            read.ignored("regDataset", "only used when problem=regression")
    else:
        dataset = read.choice("regDataset", REG_DATASETS)
        if read.has("dataset"):
            read.ignored("dataset", "only used when problem=classification")

    activation = read.choice("activation", ACTIVATIONS)
    regularization = read.choice("regularization", REGULARIZATIONS)
    rate = read.number("regularizationRate", 0.0, 10.0, "the regularization rate")
    learning_rate = read.number("learningRate", 1e-9, 100.0, "the learning rate")
    noise = read.number("noise", 0.0, 50.0, "noise (percent)")
    percent_train = read.number("percTrainData", 1.0, 99.0, "percTrainData (percent)")

    batch_size = read.number("batchSize", 1.0, 65536.0, "the batch size")
    if batch_size != int(batch_size):
        read.unmapped("batchSize", f"the batch size must be a whole number; got "
                      f"{read.pairs['batchSize']!r}; used {int(batch_size)}")
    batch_size = int(batch_size)

    units = _network_shape(read)

    features = [ours for flag, ours in FEATURES.items() if read.flag(flag)]
    for flag, ours in NO_OP_FEATURES.items():
        if read.has(flag) and read.flag(flag):
            read.ignored(flag, f"TF Playground's page has no {ours} input (the flag is in its "
                         "state but no input node uses it), so the link trains without it; "
                         f"add {ours!r} to dataset.features to try it here")
    if not features:
        raise TFPlaygroundError(
            "The link selects no input feature (x, y, xSquared, ySquared, xTimesY, sinX, sinY); "
            "a network here needs at least one. Turn one on, e.g. add x=true to the link."
        )

    init = "xavier_uniform"
    if read.has("initZero") and read.flag("initZero"):
        init = "zeros"
        out.notes.append("initZero=true: init is zeros, so every weight starts at zero as in "
                         "TF Playground.")

    data_seed, train_seed = 1, 0
    if read.has("seed"):
        data_seed = train_seed = seed_from_text(read.pairs["seed"])
        out.notes.append(f"seed {read.pairs['seed']!r} became {data_seed}: the same seed always "
                         "gives the same data and weights here, but not TF Playground's points.")

    for name in read.pairs:
        if name.endswith("_hide"):
            read.ignored(name, "only hides a control on TF Playground's page")
        elif name in UI_ONLY:
            read.ignored(name, UI_ONLY[name])
    for name in read.pairs:
        if name not in read.seen and name not in DEFAULTS and name != "seed":
            read.unmapped(name, "not a TF Playground setting this import knows; left out")

    shape_text = "-".join(str(u) for u in units) or "no hidden layer"
    out.spec = {
        "name": f"TF Playground: {dataset}, {shape_text} {activation}",
        "dataset": {
            "name": dataset,
            "params": {
                "noise": noise / 100,
                "samples": (SAMPLES_REGRESSION if problem == "regression"
                            else SAMPLES_CLASSIFICATION),
            },
            "features": features,
            "train_fraction": percent_train / 100,
            "validation_fraction": 0.0,
            "seed": data_seed,
        },
        "model": {
            "layers": [{"type": "dense", "units": u, "activation": activation} for u in units],
            "output": "auto",
            "init": init,
        },
        "training": {
            "loss": "auto",
            "optimizer": {"name": "sgd", "learning_rate": learning_rate},
            "batch_size": batch_size,
            "epochs": EPOCHS,
            "regularization": {"kind": regularization, "rate": rate},
            "schedule": {"name": "constant"},
            "early_stopping": None,
            "seed": train_seed,
        },
        "start": True,
    }
    out.notes.append(
        "TF Playground trains until paused; epochs is set to 500 (null trains until stopped).")
    if problem == "classification":
        out.notes.append(
            "The output layer: TF Playground uses tanh with a squared error on labels -1/+1; "
            "here the output is a logit with binary cross-entropy (loss auto).")
    out.notes.extend([
        "TF Playground starts weights uniform in [-0.5, 0.5] with biases 0.1; here the "
        "initializer is " + init + ".",
    ])
    return out


def _network_shape(read: _Reader) -> list[int]:
    read.seen.add("networkShape")
    if "networkShape" not in read.pairs:
        return [4, 2]
    text = read.pairs["networkShape"].strip()
    if text == "":
        return []  # TF Playground reads an empty shape as no hidden layer
    units: list[int] = []
    for part in text.split(","):
        number = _js_number(part)
        if number is None or number < 1 or number != int(number):
            read.unmapped("networkShape", f"every layer size must be a whole number of at least "
                          f"1; got {part!r} in {text!r}; used the default 4,2")
            return [4, 2]
        units.append(int(number))
    return units
