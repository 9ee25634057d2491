"""Sequence sets, one target per sequence:

- `sine`: forecast the next value of a noisy sine wave of random frequency and phase
  (regression; input (time, 1)).
- `marker`: a +1 or -1 marker appears in one of the first few steps, then only noise; the
  class is the marker's sign (classification that needs memory over time; input (time, 1)).
- `recall`: associative recall, key-value pair tokens then a question token for one key;
  predict its value (token ids (time,), where attention beats a plain RNN of the same size).
"""

from __future__ import annotations

import math
import string

import numpy as np
from pydantic import Field, model_validator

from server.data.base import DataSetDef, Params
from server.data.starters import Starter
from server.spec.shapes import Shape

SAMPLES_DESC = "Number of sequences."


class SineParams(Params):
    samples: int = Field(1000, ge=10, le=100_000, description=SAMPLES_DESC)
    length: int = Field(20, ge=3, le=200, description="Steps the model sees before forecasting.")
    noise: float = Field(
        0.05, ge=0.0, le=1.0, description="Standard deviation of noise on the inputs (amplitude 1)."
    )


class MarkerParams(Params):
    samples: int = Field(1000, ge=10, le=100_000, description=SAMPLES_DESC)
    length: int = Field(20, ge=4, le=200, description="Steps per sequence; longer needs memory.")
    early: int = Field(3, ge=1, le=50, description="The marker is in the first `early` steps.")
    noise: float = Field(
        0.2, ge=0.0, le=1.0, description="Standard deviation of the noise on every other step."
    )

    @model_validator(mode="after")
    def _early_fits(self) -> MarkerParams:
        if self.early >= self.length:
            raise ValueError(f"early ({self.early}) must be below length ({self.length})")
        return self


class RecallParams(Params):
    samples: int = Field(2000, ge=10, le=100_000, description=SAMPLES_DESC)
    pairs: int = Field(4, ge=1, le=20, description="Key-value pairs before the question.")
    keys: int = Field(8, ge=2, le=26, description="Distinct keys (letters A, B, ...).")
    values: int = Field(8, ge=2, le=10, description="Distinct values (0, 1, ...): the classes.")

    @model_validator(mode="after")
    def _enough_keys(self) -> RecallParams:
        if self.keys < self.pairs:
            raise ValueError(
                f"keys ({self.keys}) must be at least pairs ({self.pairs}): keys in one "
                "sequence are distinct"
            )
        return self


def sine(p: SineParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Angular frequency 0.1 to 0.8 radians per step, any phase; target: the clean next value."""
    n, t = p.samples, p.length
    omega = rng.uniform(0.1, 0.8, (n, 1))
    phase = rng.uniform(0.0, 2 * math.pi, (n, 1))
    steps = np.arange(t + 1)[None, :]
    wave = np.sin(omega * steps + phase)  # (n, time + 1)
    x = wave[:, :t] + p.noise * rng.standard_normal((n, t))
    return x[:, :, None], wave[:, t]  # (n, time, 1), (n,)


def marker(p: MarkerParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n, t = p.samples, p.length
    x = p.noise * rng.standard_normal((n, t))
    labels = rng.integers(0, 2, n)
    where = rng.integers(0, p.early, n)
    rows = np.arange(n)
    x[rows, where] = np.where(labels == 1, 1.0, -1.0)
    return x[:, :, None], labels.astype(np.int64)  # (n, time, 1)


def recall_tokens(p: RecallParams) -> list[str]:
    """Token names by id: one token per key-value pair (A0, A1, ..., B0, ...), then one per
    question (A?, B?, ...)."""
    letters = string.ascii_uppercase[: p.keys]
    return [f"{k}{v}" for k in letters for v in range(p.values)] + [f"{k}?" for k in letters]


def recall(p: RecallParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Tokens: `pairs` key-value tokens with distinct keys (A3 C7 B1), then a question token
    (C?); the target is the value paired with the asked key (7)."""
    n, k = p.samples, p.pairs
    keys = np.argsort(rng.random((n, p.keys)), axis=1)[:, :k]  # distinct keys per row
    values = rng.integers(0, p.values, (n, k))
    asked = rng.integers(0, k, n)
    rows = np.arange(n)
    x = np.empty((n, k + 1), dtype=np.int64)
    x[:, :k] = keys * p.values + values
    x[:, k] = p.keys * p.values + keys[rows, asked]
    return x, values[rows, asked].astype(np.int64)


SETS = [
    DataSetDef(
        "sine", "Sine forecast", "Noisy sine waves of random frequency and phase; predict the "
        "next (clean) value.",
        "Recurrent networks for forecasting: the state must hold the phase and frequency.",
        "regression", "sequence", SineParams, sine,
        input_shape=lambda p: Shape((p.length, 1)),
        feature_names=lambda p: ["value"],
        starter=Starter(({"type": "lstm", "units": 16},), epochs=20, expect=0.9,
                        optimizer="adam", learning_rate=0.01, batch_size=32),
    ),
    DataSetDef(
        "marker", "Early marker", "A +1 or -1 marker in one of the first steps, then noise; "
        "the class is the marker's sign.",
        "Memory over time: the class is decided at the start and must be carried to the end; "
        "make the sequences longer and compare RNN, GRU and LSTM (vanishing gradients).",
        "classification", "sequence", MarkerParams, marker,
        input_shape=lambda p: Shape((p.length, 1)),
        class_names=lambda p: ("minus", "plus"),
        feature_names=lambda p: ["value"],
        starter=Starter(({"type": "lstm", "units": 16},), epochs=40, expect=0.9,
                        optimizer="adam", learning_rate=0.01, batch_size=32,
                        note="SGD 0.03 stays at chance for hundreds of epochs; Adam finds "
                        "the marker after a plateau of a few epochs."),
    ),
    DataSetDef(
        "recall", "Associative recall", "Key-value pairs as tokens (A3 C7 B1), then a "
        "question (C?): predict the value paired with the asked key (7).",
        "Attention: looking a key up anywhere in the sequence, which a plain RNN of the same "
        "size struggles to do.",
        "classification", "sequence", RecallParams, recall,
        input_shape=lambda p: Shape((p.pairs + 1,), tokens=p.keys * p.values + p.keys),
        class_names=lambda p: tuple(str(v) for v in range(p.values)),
        notes="Token ids: key * values + value for a pair (A0 is 0), keys * values + key for "
        "a question (A? is keys * values).",
        extra={"token_names": recall_tokens},
        starter=Starter(
            ({"type": "embedding", "dim": 16}, {"type": "attention", "heads": 2},
             {"type": "pool_sequence", "mode": "last"}),
            epochs=20, expect=0.9, optimizer="adam", learning_rate=0.01, batch_size=32,
            note="Pooling the last step (the question, which attended to its pair); the mean "
            "of all steps reaches about 58% in the same epochs.",
        ),
    ),
]
