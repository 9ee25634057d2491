"""GET /api/catalog through a real server: everything the UI builds its forms from."""

from __future__ import annotations

from typing import get_args

from server.config import Settings
from server.spec.job import OptimizerSpec, ScheduleSpec, TrainingSpec
from server.spec.layers import ACTIVATIONS, INITIALIZERS, LAYER_TYPES


def test_catalog_lists_layers_with_their_schemas(server):
    with server.client() as client:
        response = client.get("/api/catalog")
    assert response.status_code == 200
    catalog = response.json()
    assert [layer["type"] for layer in catalog["layers"]] == list(LAYER_TYPES) == [
        "dense", "activation", "dropout", "batchnorm", "layernorm", "flatten", "conv2d",
        "maxpool2d", "avgpool2d", "rnn", "lstm", "gru", "pool_sequence", "embedding", "attention",
    ]
    by_type = {layer["type"]: layer for layer in catalog["layers"]}
    dense = by_type["dense"]
    assert dense["family"] == "core"
    assert dense["description"] == ("Fully connected layer: every output unit sees every input "
                                    "feature.")
    units = dense["schema"]["properties"]["units"]
    assert units["minimum"] == 1 and units["description"]
    activation = dense["schema"]["properties"]["activation"]
    assert activation["default"] == "relu" and activation["enum"] == list(ACTIVATIONS)
    assert dense["schema"]["required"] == ["units"]
    conv = by_type["conv2d"]["schema"]["properties"]
    assert conv["kernel_size"] == {"default": 3, "description": "Height and width of each filter.",
                                   "maximum": 32, "minimum": 1, "title": "Kernel Size",
                                   "type": "integer"}
    assert by_type["attention"]["family"] == "sequence"
    assert by_type["attention"]["schema"]["properties"]["heads"]["default"] == 2
    for layer in catalog["layers"]:
        assert layer["schema"]["additionalProperties"] is False
        assert layer["schema"]["properties"]["type"]["const"] == layer["type"]


def test_catalog_lists_the_choices_and_limits(server):
    with server.client() as client:
        catalog = client.get("/api/catalog").json()
    assert [a["name"] for a in catalog["activations"]] == list(ACTIVATIONS)
    assert all(a["description"] for a in catalog["activations"])
    assert [i["name"] for i in catalog["initializers"]] == list(INITIALIZERS)
    assert catalog["losses"] == list(get_args(TrainingSpec.model_fields["loss"].annotation)) == [
        "auto", "mse", "l1", "huber", "bce", "cross_entropy"]
    assert catalog["optimizers"] == list(get_args(OptimizerSpec.model_fields["name"].annotation))
    assert "adam" in catalog["optimizers"]
    # every optimizer says what it reads, in OptimizerSpec's own field names
    assert list(catalog["optimizer_settings"]) == catalog["optimizers"]
    for entry in catalog["optimizer_settings"].values():
        assert entry["description"]
        assert set(entry["settings"]) <= set(OptimizerSpec.model_fields) - {"name"}
    assert catalog["optimizer_settings"]["sgd"]["settings"] == ["weight_decay"]
    assert "momentum" in catalog["optimizer_settings"]["nesterov"]["settings"]
    assert "momentum" not in catalog["optimizer_settings"]["adam"]["settings"]
    assert list(catalog["loss_descriptions"]) == catalog["losses"]
    assert catalog["schedules"] == list(get_args(ScheduleSpec.model_fields["name"].annotation))
    assert catalog["regularizations"] == ["none", "l1", "l2"]
    assert catalog["model_outputs"] == ["auto", "none"]
    defaults = Settings()
    assert catalog["limits"]["max_layers"] == defaults.max_layers == 64
    assert catalog["limits"]["max_units"] == 4096
    assert catalog["limits"]["max_parameters"] == 10_000_000
    assert catalog["limits"]["max_memory_bytes"] == 1 << 30
    assert "dataset" in catalog["schemas"]["job"]["properties"]


def test_catalog_lists_the_data_sets(server):
    with server.client() as client:
        catalog = client.get("/api/catalog").json()
    sets = {d["name"]: d for d in catalog["datasets"]}
    for name in ("xor", "circle", "spiral"):
        assert sets[name]["kind"] == "points2d" and sets[name]["input_shape"] == [2]
    assert sets["iris"]["kind"] == "tabular"
    assert sets["digits"]["input_shape"] == [1, 8, 8]
    assert sets["sine"]["kind"] == "sequence" and sets["sine"]["input_shape"][-1] == 1
    assert any(d["input_tokens"] for d in catalog["datasets"])  # a token sequence task


def test_health_is_still_there(server):
    with server.client() as client:
        body = client.get("/api/health").json()
    assert body["status"] == "ok"


def test_width_fields_carry_the_servers_max_units(server):
    """A form built from a layer schema refuses what the model check refuses (issue 11, item 4):
    every field checked against max_units has it as its maximum; one more is a 422 that names it."""
    with server.client() as client:
        catalog = client.get("/api/catalog").json()
        most = catalog["limits"]["max_units"]
        by_type = {layer["type"]: layer["schema"]["properties"] for layer in catalog["layers"]}
        widths = {t: sorted(n for n, p in props.items() if p.get("maximum") == most)
                  for t, props in by_type.items()}
        assert {t: w for t, w in widths.items() if w} == {
            "dense": ["units"], "conv2d": ["filters"], "rnn": ["units"], "lstm": ["units"],
            "gru": ["units"], "embedding": ["dim"], "attention": ["d_model"]}
        assert by_type["dense"]["units"]["minimum"] == 1
        body = {"dataset": {"name": "circle"},
                "model": {"layers": [{"type": "dense", "units": most + 1}]}}
        refused = client.post("/api/models/check", json=body)
        body["model"]["layers"][0]["units"] = most
        accepted = client.post("/api/models/check", json=body)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "model", "layers", 0, "units"]
    assert f"at most {most}" in refused.json()["detail"][0]["msg"]
    assert accepted.status_code == 200, accepted.text
