"""One job's training state and its step: model, optimizer, batch order, epochs, early stopping.

What is here: `Trainer` (build from a JobSpec and a Dataset, train some batches or an epoch,
evaluate every split at each epoch's end, change settings mid-run, reset, checkpoint state as
flat tensors + JSON meta, resume bit for bit) and `Diverged`.
What is not: threads, timing, queues, snapshots, storage (the engine owns those) and anything
web. The trainer talks to nothing outside; the engine calls it and forwards what it returns.

Reproducibility: batch order comes from the trainer's own seeded `torch.Generator`, and the
model's own randomness (dropout) runs on a private copy of torch's global RNG state that is
swapped in for the duration of each call, so a seed repeats exactly on the CPU even when the
engine interleaves many jobs, and a checkpoint resumes exactly where it stopped.

Divergence (issue 16): a NaN or infinite loss, or one that explodes (over
`diagnose.EXPLODE_FACTOR` times the first epoch's train loss), raises `Diverged`; when the
trainer keeps its last good state in memory (a copy at each epoch's end, for models whose
state is at most `REWIND_MAX_BYTES`), it first puts that state back (weights, optimizer, RNG,
counters; the settings in use now stay) and replays the bad epoch with every layer checked
(server.train.diagnose), so the exception says which layer went wrong first and the trainer is
ready to go on from its last good epoch. That part is `GoodState` (server/train/good_state.py).

The checkpoint state (`state_tensors`, `state_meta`, `load_state`) is `TrainerState`
(server/train/trainer_state.py); the pieces that stand alone (losses, optimizers, schedules,
metrics) live in optim.py and metrics.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from server.nn.build import build_model
from server.nn.check import resolve_loss
from server.train import diagnose
from server.train.good_state import GoodState
from server.train.metrics import classification_metrics, finite, regression_metrics
from server.train.optim import (
    data_loss,
    make_optimizer,
    penalized_weights,
    penalty,
    scheduled_lr,
)
from server.train.protocol import Diverged
from server.train.trainer_state import TrainerState

if TYPE_CHECKING:
    from server.data.base import Dataset
    from server.spec.job import JobSpec

EVAL_CHUNK = 2048  # rows per forward pass when evaluating a whole split
SPLITS = ("train", "validation", "test")
MOMENTUM_OPTIMIZERS = ("momentum", "nesterov", "rmsprop")
# The last good epoch's state is kept in memory when weights and optimizer state (counted as 3
# copies of the weights: Adam's two moments) take at most this; larger models rewind to their
# last checkpoint (server.engine.rewind).
REWIND_MAX_BYTES = 16 * 2**20


def _build_model(spec: JobSpec, dataset: Dataset) -> Callable[[int], nn.Module]:
    return lambda seed: build_model(spec.model, dataset.shape, seed)


class Trainer(TrainerState, GoodState):
    """Trains one job. Attributes the engine reads: `model`, `optimizer`, `epoch` (epochs
    completed), `step` (batches done), `batch_in_epoch`, `finished`, `stop_reason` ("epochs",
    "early_stopping", "diverged" or None), `learning_rate` (the one in use now), `batch_size`.

    `model_factory(seed) -> nn.Module` replaces `server.nn.build.build_model` (tests).
    """

    def __init__(self, spec: JobSpec, dataset: Dataset, device: torch.device | str = "cpu", *,
                 model_factory: Callable[[int], nn.Module] | None = None) -> None:
        training = spec.training
        self.spec = spec
        self.shape = dataset.shape
        self.device = torch.device(device)
        self._factory = model_factory or _build_model(spec, dataset)
        self.loss_name = resolve_loss(training.loss, self.shape)
        # Binary outputs are logits under bce (class 1 when > 0), values near 0/1 otherwise.
        self._threshold = 0.0 if self.loss_name == "bce" else 0.5

        # The data moves to the device once; batches are gathered there by index.
        self.data: dict[str, tuple[Tensor, Tensor]] = {}
        splits = (("train", dataset.x_train, dataset.y_train),
                  ("validation", dataset.x_val, dataset.y_val),
                  ("test", dataset.x_test, dataset.y_test))
        for split, x, y in splits:
            if x is None or len(x) == 0:
                continue
            y = np.asarray(y)
            if self.shape.task == "regression":
                y = y.reshape(-1, 1)  # (n, 1), like the outputs
            self.data[split] = (self._tensor(x), self._tensor(y))
        if "train" not in self.data:
            raise ValueError("the data set has no training samples")
        self.n_train = len(self.data["train"][0])
        self.monitor = "validation" if "validation" in self.data else "test"

        # Settings that may change mid-run (and survive a reset).
        self.batch_size = training.batch_size
        self.epochs = training.epochs
        self.regularization = (training.regularization.kind, training.regularization.rate)
        self.momentum = training.optimizer.momentum
        self.base_lr = training.optimizer.learning_rate
        self.gradient_clip = training.gradient_clip
        self.early_stopping = training.early_stopping
        self.resets = 0
        self.family = None  # the DenseFamily training it now (server.train.family), if any
        self._start(training.seed)

    # ------------------------------------------------------------------ set-up

    def _tensor(self, array: np.ndarray) -> Tensor:
        array = np.asarray(array)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        return torch.tensor(array, device=self.device)  # a copy: the registry's arrays stay put

    def _start(self, seed: int) -> None:
        """Fresh weights, optimizer, batch order and counters from `seed`."""
        self.model_seed = seed
        with torch.random.fork_rng(devices=[]):  # the builder may seed torch's global RNG
            self.model = self._factory(seed).to(self.device)
        self.model.train()
        self._weights = penalized_weights(self.model)
        self.optimizer = self._new_optimizer()
        self.generator = torch.Generator().manual_seed(seed)
        # Dropout and other layer randomness: a private state of torch's global RNG.
        self._rng_cpu = torch.Generator().manual_seed(seed + 2**31).get_state()
        self._rng_cuda = None
        if self.device.type == "cuda":
            cuda = torch.Generator(device=self.device).manual_seed(seed + 2**31)
            self._rng_cuda = cuda.get_state()
        self.epoch = 0
        self.step = 0
        self.batch_in_epoch = 0
        self._pos = 0  # samples of the current epoch's permutation already used
        self._perm: Tensor | None = None  # (n_train,) on the device
        self.finished = False
        self.stop_reason: str | None = None
        self.best_loss: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self._best_state: dict[str, Tensor] | None = None
        self.schedule_origin = 0
        self._apply_lr()
        self.first_loss: float | None = None  # the first epoch's train loss (explosions)
        weights = sum(p.numel() * p.element_size() for p in self.model.parameters())
        self.rewind_in_memory = 3 * weights <= REWIND_MAX_BYTES
        self._good: tuple[dict[str, Tensor], dict, int] | None = None
        self._keep_good()

    def _new_optimizer(self) -> torch.optim.Optimizer:
        spec = self.spec.training.optimizer.model_copy(
            update={"learning_rate": self.base_lr, "momentum": self.momentum})
        return make_optimizer(self.model.parameters(), spec)

    @contextmanager
    def _own_rng(self) -> Iterator[None]:
        saved = torch.get_rng_state()
        torch.set_rng_state(self._rng_cpu)
        saved_cuda = None
        if self._rng_cuda is not None:
            saved_cuda = torch.cuda.get_rng_state(self.device)
            torch.cuda.set_rng_state(self._rng_cuda, self.device)
        try:
            yield
        finally:
            self._rng_cpu = torch.get_rng_state()
            torch.set_rng_state(saved)
            if saved_cuda is not None:
                self._rng_cuda = torch.cuda.get_rng_state(self.device)
                torch.cuda.set_rng_state(saved_cuda, self.device)

    # ------------------------------------------------------------------ training

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(self.n_train / self.batch_size)

    def train_batches(self, n: int) -> list[dict]:
        """Run up to `n` batches; return the metric records of the epochs completed meanwhile.

        Stops early when the job finishes (epoch budget or early stopping). Raises `Diverged`
        when a batch loss is NaN or infinite (checked at the end of the call or of the epoch,
        so the GPU is not synchronised every batch).
        """
        records: list[dict] = []
        if self.finished or n <= 0:
            return records
        with self._own_rng():
            try:
                self._run(n, records)
            except Diverged as exc:
                exc.records = records
                raise
        return records

    def _run(self, n: int, records: list[dict]) -> None:
        x, y = self.data["train"]
        losses: list[Tensor] = []
        for _ in range(n):
            if self._perm is None:
                perm = torch.randperm(self.n_train, generator=self.generator)  # (n_train,)
                self._perm = perm.to(self.device)
            idx = self._perm[self._pos:self._pos + self.batch_size]  # (batch,)
            losses.append(self._train_step(x[idx], y[idx]))
            self._pos += len(idx)
            self.step += 1
            self.batch_in_epoch += 1
            if self._pos >= self.n_train:
                self._check_finite(losses)
                losses = []
                records.append(self._end_epoch())
                if self.finished:
                    break
        self._check_finite(losses)

    def train_epoch(self) -> list[dict]:
        """Finish the current epoch (a whole one if none is under way)."""
        remaining = math.ceil((self.n_train - self._pos) / self.batch_size)
        return self.train_batches(remaining)

    def _train_step(self, xb: Tensor, yb: Tensor) -> Tensor:
        loss = self.backward(self.model(xb), yb)  # out: (batch, units)
        self.optimizer.step()
        return loss.detach()

    def backward(self, out: Tensor, yb: Tensor) -> Tensor:
        """A step's loss of outputs `out` (the L1/L2 penalty included) and its gradients in
        the parameters' `.grad`, clipped when the job clips them; the optimizer not stepped
        (server.train.diagnose replays a step through it)."""
        loss = data_loss(self.loss_name, out, yb)
        extra = penalty(self._weights, *self.regularization)
        if extra is not None:
            loss = loss + extra
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.gradient_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.gradient_clip)
        return loss

    def _check_finite(self, losses: list[Tensor]) -> None:
        if not losses:
            return
        first_step = self.step - len(losses) + 1  # the step of losses[0]
        if self.device.type == "cpu":  # reading a CPU scalar costs nothing
            for i, value in enumerate(losses):
                number = value.item()
                if not math.isfinite(number):
                    self._diverge("NaN" if math.isnan(number) else "infinite", first_step + i)
            return
        values = torch.stack(losses)  # (batches,)
        bad = ~torch.isfinite(values)
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            self._diverge("NaN" if bool(torch.isnan(values[i])) else "infinite", first_step + i)

    def _end_epoch(self) -> dict:
        lr_used = self.learning_rate
        self.batch_in_epoch = 0
        self._pos = 0
        self._perm = None
        record, raw_train_loss = self._evaluate()
        if not math.isfinite(raw_train_loss):
            self._diverge("NaN" if math.isnan(raw_train_loss) else "infinite", self.step)
        if diagnose.exploded(raw_train_loss, self.first_loss):
            self._diverge("exploding", self.step, raw_train_loss)
        if self.first_loss is None:
            self.first_loss = raw_train_loss
        self.epoch += 1
        record["epoch"] = self.epoch
        record["learning_rate"] = lr_used
        if self.early_stopping is not None:
            self._early_stopping(record)
        if self.epochs is not None and self.epoch >= self.epochs and not self.finished:
            self.finished = True
            self.stop_reason = "epochs"
        self._apply_lr()
        self._keep_good()
        return record

    def _early_stopping(self, record: dict) -> None:
        rule = self.early_stopping
        loss = record.get(f"{self.monitor}_loss")
        if loss is not None and (self.best_loss is None or loss < self.best_loss - rule.min_delta):
            self.best_loss = loss
            self.best_epoch = self.epoch
            self.bad_epochs = 0
            self._best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            self.bad_epochs += 1
        record["best_epoch"] = self.best_epoch
        if self.bad_epochs >= rule.patience:
            self.finished = True
            self.stop_reason = "early_stopping"
            if rule.restore_best and self._best_state is not None:
                self.model.load_state_dict(self._best_state)

    # ------------------------------------------------------------------ evaluation

    def _outputs(self, x: Tensor) -> Tensor:
        parts = [self.model(x[i:i + EVAL_CHUNK]) for i in range(0, len(x), EVAL_CHUNK)]
        return torch.cat(parts)  # (n, units)

    def evaluate(self) -> dict:
        """The metric record of the current weights: every split, eval mode, no gradients.

        Keys: epoch, step, learning_rate, batch_size, train_penalty, and per split s in
        (train, validation if any, test): s_loss plus, for classification, s_accuracy,
        s_precision, s_recall, s_f1 (macro), s_auc (binary only), s_confusion_matrix; for
        regression s_mae, s_r2. Floats are finite or None.
        """
        return self._evaluate()[0]

    def _evaluate(self) -> tuple[dict, float]:
        """`evaluate`'s record and the raw (possibly NaN) train loss."""
        record: dict[str, Any] = {"epoch": self.epoch, "step": self.step,
                                  "learning_rate": self.learning_rate,
                                  "batch_size": self.batch_size}
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            extra = penalty(self._weights, *self.regularization)
            record["train_penalty"] = 0.0 if extra is None else finite(extra)
            raw_train_loss = math.nan
            for split in SPLITS:
                if split not in self.data:
                    continue
                x, y = self.data[split]
                out = self._outputs(x)  # (n, units)
                loss = float(data_loss(self.loss_name, out, y))
                if split == "train":
                    raw_train_loss = loss
                record[f"{split}_loss"] = finite(loss)
                outputs = out.float().cpu().numpy()
                targets = y.cpu().numpy()
                if self.shape.task == "classification":
                    values = classification_metrics(outputs, targets, self.shape.num_classes or 2,
                                                    self._threshold)
                else:
                    values = regression_metrics(outputs, targets)
                record.update({f"{split}_{k}": v for k, v in values.items()})
        self.model.train(was_training)
        return record, raw_train_loss

    # ------------------------------------------------------------------ controls

    def _apply_lr(self) -> None:
        self.learning_rate = scheduled_lr(self.spec.training.schedule, self.base_lr,
                                          self.epoch - self.schedule_origin)
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate

    def set_learning_rate(self, lr: float) -> None:
        """Use `lr` from now on; it becomes the schedule's base, the schedule runs on from it."""
        self.base_lr = float(lr)
        self.schedule_origin = self.epoch
        self._apply_lr()

    def set_momentum(self, momentum: float) -> None:
        """Change the momentum of momentum, nesterov and rmsprop (others have none)."""
        self.momentum = float(momentum)
        if self.spec.training.optimizer.name in MOMENTUM_OPTIMIZERS:
            for group in self.optimizer.param_groups:
                group["momentum"] = self.momentum

    def set_batch_size(self, n: int) -> None:
        """Batches from now on have `n` samples (the current epoch goes on where it was)."""
        self.batch_size = int(n)

    def set_regularization(self, kind: str, rate: float) -> None:
        if kind not in ("none", "l1", "l2"):
            raise ValueError(f"unknown regularization '{kind}'; expected one of: none, l1, l2")
        self.regularization = (kind, float(rate))

    def set_epochs(self, epochs: int | None) -> None:
        """A new epoch budget; a job that had finished its budget goes on if it is larger."""
        self.epochs = epochs
        if self.stop_reason == "epochs" and (epochs is None or self.epoch < epochs):
            self.finished = False
            self.stop_reason = None

    def set_gradient_clip(self, max_norm: float | None) -> None:
        """Clip the gradient norm to `max_norm` from the next batch on (None: no clipping); the
        spec follows, so that `family_key` sees it (a clipped job trains alone)."""
        self.gradient_clip = None if max_norm is None else float(max_norm)
        training = self.spec.training.model_copy(update={"gradient_clip": self.gradient_clip})
        self.spec = self.spec.model_copy(update={"training": training})

    def restart(self) -> None:
        """Back to this run's initial weights and batch order (its seed), epoch 0; changed
        settings stay (a rewind with no checkpoint to go back to)."""
        self._start(self.model_seed)

    def reset(self, seed: int | None = None) -> None:
        """New initial weights and batch order, epoch 0. Seed: `seed`, else the spec's seed plus
        the number of resets so far. Changed settings (learning rate, batch size...) stay."""
        self.resets += 1
        self._start(self.spec.training.seed + self.resets if seed is None else seed)
