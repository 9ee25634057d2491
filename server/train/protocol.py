"""What the engine and the snapshot frames use of a trainer: `TrainerLike`, and `Diverged`.

`server.train.trainer.Trainer` meets `TrainerLike`; so must any other trainer the engine runs
(a test's small fake, a batched family that trains several jobs together). Typing only: the
engine calls these members without probing for them. `Diverged` lives here (not beside the
Trainer) so that the engine recognises a divergence by its type without importing the trainer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from torch import Tensor

    from server.nn.build import Network
    from server.spec.shapes import DataShape


class Diverged(RuntimeError):
    """The loss became NaN or infinite, or exploded; the message is a sentence for the user.
    `records`: the metric records of the epochs the interrupted call did complete (keep them for
    the curves). What the engine needs to pause the job at its last good state instead of
    failing it (server.engine.rewind): `what` ("NaN", "infinite" or "exploding"), `epoch` (the
    epoch that went wrong), `good_epoch` (the last good epoch, None: unknown), `step` (the step
    whose loss went wrong first, when known), `rewound` (True: the trainer already put back the
    state at the end of `good_epoch`), `diagnosis` (server.train.diagnose's dict, or None)."""

    def __init__(self, message: str, *, what: str = "NaN", epoch: int | None = None,
                 good_epoch: int | None = None, step: int | None = None) -> None:
        super().__init__(message)
        self.records: list[dict] = []
        self.what = what
        self.epoch = epoch
        self.good_epoch = good_epoch
        self.step = step
        self.rewound = False
        self.diagnosis: dict | None = None


class TrainerLike(Protocol):
    """One job's training as the engine drives it (worker thread only)."""

    model: Network  # `layers`, `layer_specs`, `attention_weights`, `forward(x, capture=True)`
    shape: DataShape  # the data's shape (task, classes) the model was built for
    loss_name: str  # the resolved loss ("bce", "cross_entropy", "mse", ...)
    epoch: int
    step: int
    learning_rate: float  # the scheduled rate now
    finished: bool  # the epoch budget or a stopping rule ended training
    stop_reason: str | None  # "epochs", "early_stopping", "diverged" or None

    def train_batches(self, n: int) -> list[dict]:
        """Up to `n` batches; the metric records of the epochs they completed. Raises
        `Diverged`."""

    def train_epoch(self) -> list[dict]:
        """The rest of the current epoch; its metric record."""

    def set_learning_rate(self, lr: float) -> None: ...

    def set_momentum(self, momentum: float) -> None: ...

    def set_batch_size(self, n: int) -> None: ...

    def set_regularization(self, kind: str, rate: float) -> None: ...

    def set_epochs(self, epochs: int | None) -> None: ...

    def set_gradient_clip(self, max_norm: float | None) -> None: ...

    def state_tensors(self) -> dict[str, Tensor]: ...

    def state_meta(self) -> dict: ...

    def load_state(self, tensors: dict[str, Tensor], meta: dict) -> None: ...
