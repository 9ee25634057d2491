"""A `Trainer`'s checkpoint state: everything it needs to go on bit for bit, as flat tensors
(for safetensors) and JSON meta (issue: a resumed job repeats exactly).

`TrainerState` is a part of `server.train.trainer.Trainer` (a mixin, kept apart like
`GoodState` to keep the trainer readable): `state_tensors` (weights, early stopping's best
weights, optimizer tensors, both RNG states, the unfinished epoch's batch order, the first
loss), `state_meta` (counters, settings changed mid-run, early-stopping bookkeeping, the
optimizer's groups and scalars), `load_state` / `_load` (put them back). It reads and sets the
trainer's attributes and uses its `_new_optimizer` and `_keep_good`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

STATE_VERSION = 1


class TrainerState:
    """Checkpoint state of a Trainer (see the module docstring)."""

    def state_tensors(self) -> dict[str, Tensor]:
        """Everything tensor-valued, flat and on the CPU, for safetensors: `model.*`, `best.*`
        (early stopping's best weights), `optimizer.<param index>.<key>`, `rng.batches`,
        `rng.model` (and `rng.model_cuda`), `perm` (the batch order of an unfinished epoch),
        `first_loss` (the first epoch's train loss, against which a loss explodes)."""
        def own(t: Tensor) -> Tensor:
            return t.detach().to("cpu", copy=True).contiguous()

        tensors = {f"model.{k}": own(v) for k, v in self.model.state_dict().items()}
        if self._best_state is not None:
            tensors.update({f"best.{k}": own(v) for k, v in self._best_state.items()})
        for index, state in self.optimizer.state_dict()["state"].items():
            for key, value in state.items():
                if torch.is_tensor(value):
                    tensors[f"optimizer.{index}.{key}"] = own(value)
        tensors["rng.batches"] = own(self.generator.get_state())
        tensors["rng.model"] = own(self._rng_cpu)
        if self._rng_cuda is not None:
            tensors["rng.model_cuda"] = own(self._rng_cuda)
        if self._perm is not None:
            tensors["perm"] = own(self._perm)
        if self.first_loss is not None:  # a number, kept as a tensor: a family's is within 1e-5
            tensors["first_loss"] = torch.tensor([self.first_loss], dtype=torch.float64)
        return tensors

    def state_meta(self) -> dict:
        """The rest of the state, JSON-serialisable: counters, settings changed mid-run,
        early-stopping bookkeeping and the optimizer's parameter groups and scalars."""
        optimizer = self.optimizer.state_dict()
        scalars = {f"{index}.{key}": value for index, state in optimizer["state"].items()
                   for key, value in state.items() if not torch.is_tensor(value)}
        groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in group.items()}
                  for group in optimizer["param_groups"]]
        return {
            "version": STATE_VERSION,
            "epoch": self.epoch, "step": self.step, "batch_in_epoch": self.batch_in_epoch,
            "position": self._pos, "model_seed": self.model_seed, "resets": self.resets,
            "batch_size": self.batch_size, "epochs": self.epochs,
            "base_lr": self.base_lr, "schedule_origin": self.schedule_origin,
            "learning_rate": self.learning_rate, "momentum": self.momentum,
            "regularization": list(self.regularization),
            "finished": self.finished, "stop_reason": self.stop_reason,
            "best_loss": self.best_loss, "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "optimizer": {"param_groups": groups, "scalars": scalars,
                          "indices": sorted(optimizer["state"])},
        }

    def load_state(self, tensors: dict[str, Tensor], meta: dict) -> None:
        """Put back a state from `state_tensors` / `state_meta`; training then goes on exactly as
        it would have without the interruption."""
        self._load(tensors, meta)
        self._good = None
        if self._perm is None and self._pos == 0:  # an epoch's end: the state to rewind to
            self._keep_good()

    def _load(self, tensors: dict[str, Tensor], meta: dict) -> None:
        if meta.get("version") != STATE_VERSION:
            raise ValueError(f"checkpoint version {meta.get('version')} is not {STATE_VERSION}")
        self.model_seed = meta["model_seed"]
        self.resets = meta["resets"]
        self.model.load_state_dict(
            {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
        best = {k[len("best."):]: v.to(self.device) for k, v in tensors.items()
                if k.startswith("best.")}
        self._best_state = best or None

        self.batch_size = meta["batch_size"]
        self.epochs = meta["epochs"]
        self.base_lr = meta["base_lr"]
        self.schedule_origin = meta["schedule_origin"]
        self.momentum = meta["momentum"]
        self.regularization = (meta["regularization"][0], meta["regularization"][1])

        opt = meta["optimizer"]
        state: dict[int, dict[str, Any]] = {int(i): {} for i in opt["indices"]}
        for name, value in tensors.items():
            if name.startswith("optimizer."):
                _, index, key = name.split(".", 2)
                state[int(index)][key] = value
        for name, value in opt["scalars"].items():
            index, key = name.split(".", 1)
            state[int(index)][key] = value
        self.optimizer = self._new_optimizer()
        self.optimizer.load_state_dict({"state": state, "param_groups": opt["param_groups"]})

        self.generator.set_state(tensors["rng.batches"].clone())
        self._rng_cpu = tensors["rng.model"].clone()
        if self._rng_cuda is not None and "rng.model_cuda" in tensors:
            self._rng_cuda = tensors["rng.model_cuda"].clone()
        self._perm = tensors["perm"].to(self.device) if "perm" in tensors else None

        self.epoch = meta["epoch"]
        self.step = meta["step"]
        self.batch_in_epoch = meta["batch_in_epoch"]
        self._pos = meta["position"]
        self.finished = meta["finished"]
        self.stop_reason = meta["stop_reason"]
        self.best_loss = meta["best_loss"]
        self.best_epoch = meta["best_epoch"]
        self.bad_epochs = meta["bad_epochs"]
        first = tensors.get("first_loss")  # (1,) float64
        self.first_loss = None if first is None else float(first[0])
        self.learning_rate = meta["learning_rate"]
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate
