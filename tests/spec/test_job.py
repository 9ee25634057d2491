"""The job spec's own rules: defaults, the minimal job of API.md, and errors at the right field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from server.spec.job import DatasetSpec, JobSpec


def test_the_minimal_job_of_the_api_is_valid_with_the_documented_defaults():
    job = JobSpec.model_validate(
        {"dataset": {"name": "xor"}, "model": {"layers": [{"type": "dense", "units": 4}]}})
    assert job.dataset.features == ["x1", "x2"]
    assert (job.dataset.train_fraction, job.dataset.validation_fraction) == (0.5, 0.0)
    assert (job.model.output, job.model.init) == ("auto", "xavier_uniform")
    assert (job.training.loss, job.training.optimizer.name) == ("auto", "sgd")
    assert (job.training.optimizer.learning_rate, job.training.batch_size) == (0.03, 10)
    assert (job.training.epochs, job.training.early_stopping, job.start) == (500, None, True)


def test_no_test_data_left_is_refused_at_validation_fraction():
    with pytest.raises(ValidationError) as caught:
        DatasetSpec(name="xor", train_fraction=0.7, validation_fraction=0.3)
    [error] = caught.value.errors()
    assert error["loc"] == ("validation_fraction",)
    assert error["msg"] == ("Value error, train_fraction + validation_fraction must be below 1 "
                            "so that some data is left for testing; got 0.7 + 0.3")


def test_repeated_features_are_refused_at_features():
    with pytest.raises(ValidationError) as caught:
        DatasetSpec(name="xor", features=["x1", "x1"])
    [error] = caught.value.errors()
    assert (error["loc"], error["msg"]) == (("features",), "Value error, features must not repeat")


def test_misspelled_fields_are_refused_by_name():
    with pytest.raises(ValidationError) as caught:
        JobSpec.model_validate({"dataset": {"name": "xor"}, "model": {"layers": []},
                                "training": {"learning_rate": 0.1}})
    [error] = caught.value.errors()
    assert error["loc"] == ("training", "learning_rate") and error["type"] == "extra_forbidden"
