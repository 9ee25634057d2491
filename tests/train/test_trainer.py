"""The trainer's controls and state: determinism, checkpoints, divergence, early stopping."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from server.train.trainer import Diverged, Trainer
from tests.train.helpers import blobs, job_spec, mlp, regression_set


def _params(trainer):
    return [p.detach().clone() for p in trainer.model.parameters()]


def _dropout_mlp(seed):
    return mlp(seed, hidden=8, dropout=0.3)


def test_same_seed_gives_identical_histories():
    spec = job_spec(optimizer={"name": "adam", "learning_rate": 0.01}, batch_size=8, epochs=5)
    runs = []
    for _ in range(2):
        trainer = Trainer(spec, blobs(validation=30), "cpu", model_factory=_dropout_mlp)
        torch.manual_seed(123 + len(runs))  # the global RNG must not matter
        records = trainer.train_batches(10_000)
        runs.append((records, _params(trainer)))
    assert runs[0][0] == runs[1][0]
    assert len(runs[0][0]) == 5
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))
    other = Trainer(job_spec(optimizer={"name": "adam", "learning_rate": 0.01}, batch_size=8,
                             epochs=5, seed=1), blobs(validation=30), "cpu",
                    model_factory=_dropout_mlp)
    assert other.train_batches(10_000) != runs[0][0]


def test_record_keys_classification_and_regression():
    trainer = Trainer(job_spec(epochs=2, regularization={"kind": "l2", "rate": 0.01}),
                      blobs(validation=20), "cpu", model_factory=mlp)
    records = trainer.train_epoch()
    assert len(records) == 1
    record = records[0]
    assert record["epoch"] == 1 and record["step"] == 10 and record["batch_size"] == 10
    assert record["train_penalty"] > 0
    for split in ("train", "validation", "test"):
        for key in ("loss", "accuracy", "precision", "recall", "f1", "auc", "confusion_matrix"):
            assert f"{split}_{key}" in record, f"{split}_{key}"
    assert sum(map(sum, record["test_confusion_matrix"])) == 80
    json.dumps(record, allow_nan=False)

    trainer = Trainer(job_spec(epochs=2), regression_set(), "cpu",
                      model_factory=lambda s: mlp(s, inputs=1))
    assert trainer.loss_name == "mse"
    record = trainer.train_epoch()[0]
    keys = {"train_loss", "test_loss", "train_mae", "test_mae", "train_r2", "test_r2"}
    assert keys <= set(record)
    assert "validation_loss" not in record
    json.dumps(record, allow_nan=False)


def test_epoch_budget_finishes_and_can_be_extended():
    trainer = Trainer(job_spec(epochs=3, batch_size=30), blobs(), "cpu", model_factory=mlp)
    records = trainer.train_batches(100)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert trainer.finished and trainer.stop_reason == "epochs"
    assert trainer.step == 12  # 100 samples in batches of 30: 4 a epoch, the last of 10
    assert trainer.train_batches(5) == []
    trainer.set_epochs(4)
    assert not trainer.finished
    assert [r["epoch"] for r in trainer.train_epoch()] == [4]


def test_step_one_batch_then_finish_the_epoch():
    trainer = Trainer(job_spec(batch_size=25, epochs=None), blobs(), "cpu", model_factory=mlp)
    assert trainer.train_batches(1) == []
    assert (trainer.step, trainer.batch_in_epoch, trainer.epoch) == (1, 1, 0)
    records = trainer.train_epoch()
    assert len(records) == 1 and trainer.step == 4 and trainer.batch_in_epoch == 0
    assert not trainer.finished  # epochs None: until stopped
    trainer.set_batch_size(40)  # 100 samples: 40, 40, 20
    trainer.train_epoch()
    assert trainer.step == 7


def test_mid_run_settings():
    trainer = Trainer(job_spec(optimizer={"name": "momentum"}), blobs(), "cpu", model_factory=mlp)
    trainer.set_regularization("l1", 0.1)
    record = trainer.train_epoch()[0]
    assert record["train_penalty"] > 0
    trainer.set_momentum(0.5)
    assert trainer.optimizer.param_groups[0]["momentum"] == 0.5
    with pytest.raises(ValueError, match="expected one of"):
        trainer.set_regularization("l3", 0.1)


def test_reset_reseeds_with_the_reset_count_or_a_given_seed():
    spec = job_spec(seed=5)
    trainer = Trainer(spec, blobs(), "cpu", model_factory=mlp)
    initial = _params(trainer)
    trainer.set_learning_rate(0.07)
    trainer.train_batches(15)
    trainer.reset()
    assert (trainer.epoch, trainer.step, trainer.model_seed) == (0, 0, 6)
    assert trainer.learning_rate == 0.07  # settings changed mid-run survive a reset
    assert not all(torch.equal(a, b) for a, b in zip(initial, _params(trainer), strict=True))
    trainer.reset(seed=5)
    assert all(torch.equal(a, b) for a, b in zip(initial, _params(trainer), strict=True))


@pytest.mark.parametrize("optimizer", ["adam", "nesterov", "rmsprop"])
def test_checkpoint_resume_is_bit_identical(optimizer):
    """Train 23 batches, checkpoint through safetensors bytes and JSON, resume in a new trainer:
    the same weights and records as training straight through."""
    spec = job_spec(optimizer={"name": optimizer, "learning_rate": 0.01}, batch_size=7,
                    epochs=6, schedule={"name": "cosine", "period": 4},
                    regularization={"kind": "l2", "rate": 0.001},
                    early_stopping={"patience": 50})
    straight = Trainer(spec, blobs(validation=20), "cpu", model_factory=_dropout_mlp)
    expected = straight.train_batches(10_000)

    first = Trainer(spec, blobs(validation=20), "cpu", model_factory=_dropout_mlp)
    before = first.train_batches(23)  # mid-epoch (15 batches an epoch)
    first.set_batch_size(7)
    tensors = load_safetensors(save_safetensors(first.state_tensors()))
    meta = json.loads(json.dumps(first.state_meta(), allow_nan=False))
    torch.manual_seed(999)  # nothing global carries over
    resumed = Trainer(spec, blobs(validation=20), "cpu", model_factory=_dropout_mlp)
    resumed.load_state(tensors, meta)
    after = resumed.train_batches(10_000)
    assert before + after == expected
    assert resumed.step == straight.step and resumed.finished
    assert all(torch.equal(a, b)
               for a, b in zip(_params(straight), _params(resumed), strict=True))


def test_huge_learning_rate_diverges_with_a_message():
    spec = job_spec(optimizer={"name": "sgd", "learning_rate": 100.0}, loss="mse", batch_size=5)
    trainer = Trainer(spec, regression_set(), "cpu", model_factory=lambda s: mlp(s, inputs=1))
    with pytest.raises(Diverged) as caught:
        for _ in range(50):
            trainer.train_epoch()
    message = str(caught.value)
    assert message.startswith("diverged: loss became ")
    assert f" at epoch {trainer.epoch + 1}; " in message
    assert message.endswith(f"paused at epoch {trainer.epoch}, its last good state: try a "
                            "lower learning rate or gradient clipping")
    assert ("NaN" in message) or ("infinite" in message)
    # Rewound to its last good epoch (issue 16): ready to go on, not finished.
    assert caught.value.rewound and not trainer.finished and trainer.stop_reason is None


def test_infinite_loss_is_named_infinite():
    trainer = Trainer(job_spec(loss="mse"), regression_set(), "cpu",
                      model_factory=lambda s: mlp(s, inputs=1))
    with torch.no_grad():
        trainer.model[4].bias.fill_(3e38)  # the squared error overflows to inf
    with pytest.raises(Diverged, match=r"^diverged: loss became infinite at epoch 1; .*try a "
                                       r"lower learning rate or gradient clipping$"):
        trainer.train_batches(1)


def test_early_stopping_restores_the_best_weights():
    """Overfitting a tiny noisy set with a big model: validation loss turns up, training
    stops after `patience` epochs without improvement and the best epoch's weights return."""
    spec = job_spec(optimizer={"name": "adam", "learning_rate": 0.05}, batch_size=10,
                    epochs=500, early_stopping={"patience": 5})
    data = blobs(n=120, seed=3, validation=40)
    trainer = Trainer(spec, data, "cpu", model_factory=lambda s: mlp(s, hidden=64))
    records = trainer.train_batches(100_000)
    assert trainer.finished and trainer.stop_reason == "early_stopping"
    best = min(records, key=lambda r: r["validation_loss"])
    assert trainer.best_epoch == best["epoch"] == records[-1]["best_epoch"]
    assert records[-1]["epoch"] == best["epoch"] + 5
    assert trainer.evaluate()["validation_loss"] == best["validation_loss"]


def test_early_stopping_watches_test_loss_without_validation_and_may_keep_last_weights():
    spec = job_spec(optimizer={"name": "adam", "learning_rate": 0.05}, batch_size=10,
                    epochs=500, early_stopping={"patience": 3, "restore_best": False})
    trainer = Trainer(spec, blobs(n=120, seed=3), "cpu", model_factory=lambda s: mlp(s, hidden=64))
    assert trainer.monitor == "test"
    records = trainer.train_batches(100_000)
    assert trainer.stop_reason == "early_stopping"
    best = min(records, key=lambda r: r["test_loss"])
    assert trainer.best_epoch == best["epoch"] == records[-1]["epoch"] - 3
    assert trainer.evaluate()["test_loss"] == records[-1]["test_loss"]  # the last weights


def test_diverged_keeps_the_records_of_epochs_completed_in_the_call():
    trainer = Trainer(job_spec(loss="mse", batch_size=50), regression_set(), "cpu",
                      model_factory=lambda s: mlp(s, inputs=1))
    trainer.train_batches(3)  # epoch 1 done, half of epoch 2
    with torch.no_grad():
        trainer.model[4].bias.fill_(float("nan"))
    with pytest.raises(Diverged, match="loss became NaN at epoch 2;") as caught:
        trainer.train_batches(10)
    assert caught.value.records == []
    trainer = Trainer(job_spec(loss="mse", batch_size=50), regression_set(), "cpu",
                      model_factory=lambda s: mlp(s, inputs=1))
    trainer.train_batches(1)
    original = trainer._end_epoch

    def poison_after_first_epoch():
        record = original()
        with torch.no_grad():
            trainer.model[4].bias.fill_(float("inf"))
        return record

    trainer._end_epoch = poison_after_first_epoch
    with pytest.raises(Diverged, match="at epoch 2;") as caught:
        trainer.train_batches(10)
    assert [r["epoch"] for r in caught.value.records] == [1]
