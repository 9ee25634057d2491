"""The last good state of a `Trainer` and what a divergence does with it (issue 16).

`GoodState` is a part of `server.train.trainer.Trainer` (a mixin, kept apart to keep the
trainer readable): `_keep_good` copies the state at each epoch's end (when `rewind_in_memory`:
weights and optimizer state at most `REWIND_MAX_BYTES`); `_diverge` raises `Diverged` after
putting that state back and replaying the bad epoch with every layer checked
(server.train.diagnose); `rewind`, `restart` (in trainer.py) and `diagnose` serve the engine
when the trainer could not rewind itself (server.engine.rewind). It uses the trainer's
attributes and methods (`state_tensors`, `state_meta`, `_load`, `_own_rng`, `_apply_lr`...).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from server.train import diagnose
from server.train.protocol import Diverged


class GoodState:
    """The last good epoch's state of a Trainer: keep it, put it back, diverge with it."""

    def _diverge(self, what: str, step: int | None = None, loss: float | None = None) -> None:
        """Raise `Diverged` for a loss that became `what` ("NaN", "infinite", "exploding") at
        `step`; with the last good epoch's state in memory, put it back first and find the
        layer that went wrong (module docstring). Runs inside `_own_rng`."""
        epoch = self.epoch + 1
        diagnosis: dict[str, Any] = {"loss_became": what, "epoch": epoch, "step": step,
                                     "layer": None, "layer_type": None, "where": None,
                                     "what": what}
        if what == "exploding":
            big = diagnose.largest_gradients(self)
            diagnosis.update(layer=big["layer"], layer_type=big["layer_type"],
                             where="gradients" if big["layer"] is not None else None,
                             train_loss=loss, gradient_norm=big["gradient_norm"])
        reached = self.step
        good = self._good if self._good_valid() else None
        if good is None:
            self.finished = True
            self.stop_reason = "diverged"
        else:
            self._restore(good, inside_rng=True)
            if what != "exploding":
                found = diagnose.replay(self, reached - self.step)
                if found is not None:
                    diagnosis.update(found)
                self._restore(good, inside_rng=True)
            diagnosis["rewound_to"] = {"epoch": self.epoch, "step": self.step}
        exc = Diverged(diagnose.sentence(diagnosis), what=what, epoch=epoch,
                       good_epoch=epoch - 1, step=step)
        exc.diagnosis = diagnosis
        exc.rewound = good is not None
        raise exc

    # ------------------------------------------------------------------ the last good state

    def _keep_good(self) -> None:
        """Keep the state now (an epoch's end) as the one to rewind to, if it is small."""
        self._good = ((self.state_tensors(), self.state_meta(), self.epoch)
                      if self.rewind_in_memory else None)

    def _good_valid(self) -> bool:
        """The kept state is the end of the last completed epoch (not one from before a
        family trained this job on, or before a checkpoint was loaded)."""
        return self._good is not None and self._good[2] == self.epoch

    def _restore(self, good: tuple[dict[str, Tensor], dict, int], inside_rng: bool) -> None:
        """Put back a kept state; the settings in use now (learning rate, batch size, ...)
        stay. `inside_rng`: called within `_own_rng` (the global RNG holds the model's)."""
        settings = (self.batch_size, self.epochs, self.base_lr, self.schedule_origin,
                    self.momentum, self.regularization)
        tensors, meta, _epoch = good
        self._load({k: v.clone() for k, v in tensors.items()}, meta)
        (self.batch_size, self.epochs, self.base_lr, origin, momentum,
         self.regularization) = settings
        self.schedule_origin = min(origin, self.epoch)
        self._apply_lr()
        self.set_momentum(momentum)
        self.optimizer.zero_grad(set_to_none=True)  # no gradients of the bad steps linger
        if inside_rng:
            torch.set_rng_state(self._rng_cpu)
            if self._rng_cuda is not None:
                torch.cuda.set_rng_state(self._rng_cuda, self.device)

    def rewind(self) -> bool:
        """Put back the end of the last completed epoch if it is kept (True), else False (the
        engine then rewinds to the checkpoint). Not while training (outside `_own_rng`)."""
        if not self._good_valid():
            return False
        self._restore(self._good, inside_rng=False)
        return True

    def diagnose(self, loss_became: str, epoch: int, limit: int) -> dict:
        """Replay up to `limit` steps from the state now (at most to the end of this epoch)
        with every layer checked, then put the state back: what `Diverged.diagnosis` holds
        (for a rewind the engine did; its replay alone may not blow up the same way)."""
        state = (self.state_tensors(), self.state_meta(), self.epoch)
        diagnosis: dict[str, Any] = {"loss_became": loss_became, "epoch": epoch, "step": None,
                                     "layer": None, "layer_type": None, "where": None,
                                     "what": loss_became}
        with self._own_rng():
            try:
                found = diagnose.replay(self, limit) if loss_became != "exploding" else None
                if found is None:
                    big = diagnose.largest_gradients(self)
                    found = {"layer": big["layer"], "layer_type": big["layer_type"],
                             "where": "gradients" if big["layer"] is not None else None}
                diagnosis.update(found)
            finally:
                self._restore(state, inside_rng=True)
        diagnosis["rewound_to"] = {"epoch": self.epoch, "step": self.step}
        return diagnosis
