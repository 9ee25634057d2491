"""JobSpec: one JSON document that describes a job (data set, model, training), as API.md shows.

Every field but `dataset.name` and `model.layers` has a default. Unknown fields are errors.
Types are strict: `true` is not 1 and `"3"` is not 3 (a JSON integer is still a fine float), and
no number field takes NaN or an infinity. A job name holds no control characters (a NUL would
end up in exported source files).
Whether the data set name and params exist and whether the layers fit together is checked
later, against the data registry and by shape inference (`server.nn.check`), since that needs
more than pydantic knows.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from server.spec.layers import Initializer, Layer
from server.spec.vocabulary import LossName, OptimizerName, RegularizationKind, ScheduleName

POINT_FEATURES = ("x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)", "cos(x1)", "cos(x2)")
PointFeature = Literal[
    "x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)", "cos(x1)", "cos(x2)"
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def _no_control_characters(value: str) -> str:
    bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Cs")), None)
    if bad is not None:
        raise ValueError(f"a name must not hold control characters (found U+{ord(bad):04X}); "
                         "use letters, digits, spaces and punctuation")
    return value


JobName = Annotated[str, Field(max_length=200, description="A label for the job."),
                    AfterValidator(_no_control_characters)]


class DatasetSpec(Strict):
    name: str = Field(
        ..., min_length=1, max_length=100, description="A data set from GET /api/datasets."
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="The data set's own parameters (samples, noise, ...); "
        "see its entry in the catalogue.",
    )
    features: list[PointFeature] = Field(
        default_factory=lambda: ["x1", "x2"],
        min_length=1,
        description="Input features computed from the two coordinates "
        "(two-dimensional point sets only).",
    )
    train_fraction: float = Field(
        0.5, gt=0.0, lt=1.0, description="Share of samples used for training."
    )
    validation_fraction: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Share held out for validation (early stopping); the rest is test.",
    )
    seed: int = Field(1, ge=0, le=2**31 - 1, description="Seed of the data and of the split.")

    @field_validator("validation_fraction")
    @classmethod
    def _leaves_test_data(cls, value: float, info: ValidationInfo) -> float:
        train = info.data.get("train_fraction")
        if train is not None and train + value >= 1.0:
            raise ValueError(
                "train_fraction + validation_fraction must be below 1 so that some data is left "
                f"for testing; got {train} + {value}"
            )
        return value

    @field_validator("features")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("features must not repeat")
        return value


class ModelSpec(Strict):
    layers: list[Layer] = Field(
        ...,
        description="The hidden layers, in order. May be empty: a network with no hidden layer "
        "is linear or logistic regression.",
    )
    output: Literal["auto", "none"] = Field(
        "auto",
        description="auto: append the output layer the task needs (one unit for binary "
        "classification and regression, k units for k classes); "
        "none: the last layer is the output.",
    )
    init: Initializer = Field(
        "xavier_uniform",
        description="Weight initializer for every layer that does not choose its own.",
    )
    init_std: float = Field(
        0.1, gt=0.0, le=10.0, description="Standard deviation for init 'normal'."
    )


class OptimizerSpec(Strict):
    name: OptimizerName = Field(
        "sgd", description="sgd: plain gradient descent; momentum and nesterov: SGD with momentum."
    )
    learning_rate: float = Field(0.03, gt=0.0, le=100.0, description="Step size.")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="For momentum, nesterov and rmsprop.")
    beta1: float = Field(0.9, ge=0.0, lt=1.0, description="Adam's first-moment decay.")
    beta2: float = Field(0.999, ge=0.0, lt=1.0, description="Adam's second-moment decay.")
    alpha: float = Field(0.99, ge=0.0, lt=1.0, description="RMSProp's smoothing constant.")
    eps: float = Field(1e-8, gt=0.0, le=1.0, description="Added to denominators for stability.")
    weight_decay: float = Field(
        0.0, ge=0.0, le=1.0, description="Decoupled weight decay (adamw) or the optimizer's own L2."
    )


class RegularizationSpec(Strict):
    kind: RegularizationKind = Field("none", description="Penalty added to the loss.")
    rate: float = Field(0.0, ge=0.0, le=10.0, description="Weight of the penalty (lambda).")


class ScheduleSpec(Strict):
    name: ScheduleName = Field(
        "constant", description="How the learning rate changes over epochs."
    )
    step_size: int = Field(
        10, ge=1, description="step: epochs between drops; cyclic: epochs per half cycle."
    )
    gamma: float = Field(
        0.5, gt=0.0, le=1.0, description="step and exponential: factor per drop or epoch."
    )
    min_learning_rate: float = Field(
        0.0, ge=0.0, description="cosine, cyclic, warm_restarts: the floor."
    )
    period: int = Field(
        50, ge=1, description="cosine: epochs to the floor; warm_restarts: first period."
    )


class EarlyStoppingSpec(Strict):
    patience: int = Field(
        10, ge=1, le=10_000, description="Epochs without improvement before stopping."
    )
    min_delta: float = Field(
        0.0, ge=0.0, description="Smallest decrease of validation loss that counts."
    )
    restore_best: bool = Field(True, description="Put back the weights of the best epoch.")


class TrainingSpec(Strict):
    loss: LossName = Field(
        "auto", description="auto: bce for binary, cross_entropy for k classes, mse for regression."
    )
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    batch_size: int = Field(10, ge=1, le=65536, description="Samples per gradient step.")
    epochs: int | None = Field(500, ge=1, description="Epochs to train; null trains until stopped.")
    regularization: RegularizationSpec = Field(default_factory=RegularizationSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    early_stopping: EarlyStoppingSpec | None = Field(
        None,
        description="Stop when validation (or test, if no validation split) loss stops improving.",
    )
    gradient_clip: float | None = Field(None, gt=0.0, description="Clip the gradient norm to this.")
    seed: int = Field(
        0, ge=0, le=2**31 - 1, description="Seed of the initial weights and batch order."
    )


class JobSpec(Strict):
    name: JobName = ""
    dataset: DatasetSpec
    model: ModelSpec
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    start: bool = Field(True, description="false creates the job paused.")


class ModelCheckRequest(Strict):
    """Body of POST /api/models/check."""

    dataset: DatasetSpec
    model: ModelSpec
    training: TrainingSpec = Field(default_factory=TrainingSpec)


# PATCH /api/jobs/{id} and the stream's `set` message: the settings that may change mid-run.
class OptimizerPatch(Strict):
    learning_rate: Annotated[float, Field(gt=0.0, le=100.0)] | None = None
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None


class TrainingPatch(Strict):
    optimizer: OptimizerPatch | None = None
    batch_size: Annotated[int, Field(ge=1, le=65536)] | None = None
    regularization: RegularizationSpec | None = None
    epochs: Annotated[int, Field(ge=1)] | None = None
    gradient_clip: Annotated[float, Field(gt=0.0, le=1e6)] | None = Field(
        None, description="Clip the gradient norm to this (0 < max norm <= 1e6).")


class JobPatch(Strict):
    name: JobName | None = None
    training: TrainingPatch | None = None
