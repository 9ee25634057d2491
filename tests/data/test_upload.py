"""CSV uploads through the registry: parsing, inferred tasks, every refusal with the row or
column it names, storage without pickle, and survival across a new registry (a restart)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from server.api.errors import detail_of
from server.config import Settings
from server.data.registry import DataRegistry
from server.data.upload import UploadError
from server.spec.job import DatasetSpec


def csv_text(rows: int = 30, label=lambda i: ["cat", "dog", "emu"][i % 3]) -> bytes:
    lines = ["height,weight,animal"]
    lines += [f"{i * 0.5},{(i * 7) % 11},{label(i)}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def test_text_labels_mean_classification_and_the_set_is_usable(registry: DataRegistry) -> None:
    entry = registry.add_upload(csv_text(), "animal", filename="zoo.csv")
    assert entry["name"] == "zoo" and entry["kind"] == "tabular" and entry["uploaded"]
    assert entry["task"] == "classification" and entry["class_names"] == ["cat", "dog", "emu"]
    assert entry["input_shape"] == [2] and entry["feature_names"] == ["height", "weight"]
    assert "zoo" in [e["name"] for e in registry.catalog()]
    shape = registry.describe(DatasetSpec(name="zoo"))
    assert shape.num_classes == 3 and shape.kind == "tabular"
    ds = registry.load(DatasetSpec(name="zoo", train_fraction=0.6))
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert len(ds.x_train) + len(ds.x_test) == 30
    np.testing.assert_allclose(ds.x_train.mean(0), 0, atol=1e-5)  # standardized (train stats)
    assert np.bincount(ds.y_train).tolist() == [6, 6, 6]  # stratified
    preview = registry.preview("zoo", {})
    assert preview["columns"] == ["height", "weight"] and len(preview["rows"]) == 20


def test_numbers_infer_the_task(registry: DataRegistry) -> None:
    reg = registry.add_upload(csv_text(label=lambda i: f"{i * 0.1:.2f}"), "animal", name="r")
    assert reg["task"] == "regression" and reg["num_classes"] is None
    ds = registry.load(DatasetSpec(name="r"))
    assert ds.y_train.shape[1:] == (1,) and ds.y_train.dtype == np.float32
    ints = registry.add_upload(csv_text(label=lambda i: str(i % 2 * 5)), "animal", name="i")
    assert ints["task"] == "classification" and ints["class_names"] == ["0", "5"]
    forced = registry.add_upload(csv_text(label=lambda i: str(i)), "animal", task="regression",
                                 name="f")
    assert forced["task"] == "regression"


def test_uploads_survive_a_restart_and_are_never_pickled(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = DataRegistry(tmp_path / "uploads", settings)
    first.add_upload(csv_text(), "animal", name="zoo")
    before = first.load(DatasetSpec(name="zoo"))
    (path,) = (tmp_path / "uploads").glob("*.npz")  # stored under an id, not the name
    stored = np.load(path, allow_pickle=False)
    assert set(stored.files) == {"x", "y"} and stored["x"].dtype == np.float32
    again = DataRegistry(tmp_path / "uploads", settings)
    assert "zoo" in again.names()
    after = again.load(DatasetSpec(name="zoo"))
    assert before.x_train.tobytes() == after.x_train.tobytes()
    # A damaged entry is skipped, not loaded, and does not stop the others.
    (tmp_path / "uploads" / "broken.json").write_text("{not json")
    (tmp_path / "uploads" / "evil.json").write_text(json.dumps({"name": "../evil",
                                                                 "task": "regression"}))
    assert set(DataRegistry(tmp_path / "uploads", settings).names()) >= {"zoo"}
    assert "broken" not in DataRegistry(tmp_path / "uploads", settings).names()


BAD = [
    (b"", "target", {}, ["empty"]),
    (b"\n\n", "target", {}, ["empty"]),
    (b"a,b\n1,2\n", "b", {}, ["1 data rows", "at least 10"]),
    (csv_text(), "species", {}, ["no target column 'species'", "height, weight, animal"]),
    (csv_text().replace(b"2.5,", b"2.5x,"), "animal", {}, ["Row 6", "'height'", "'2.5x'",
                                                           "not a number"]),
    (csv_text().replace(b"2.5,", b"nan,"), "animal", {}, ["Row 6", "'height'", "NaN"]),
    (csv_text().replace(b"2.5,", b","), "animal", {}, ["Row 6", "'height'", "empty"]),
    (csv_text().replace(b"2.5,2,emu", b"2.5,6,"), "animal", {}, ["Row 6", "target", "missing"]),
    (csv_text(label=lambda i: "cat"), "animal", {}, ["only one class", "'cat'"]),
    (csv_text(label=lambda i: "1.5"), "animal", {"task": "regression"}, ["same value"]),
    (csv_text(label=lambda i: f"{i / 3}"), "animal", {"task": "classification"},
     ["Row 1", "0.0", "integer or text labels"]),
    (csv_text(), "animal", {"task": "regression"}, ["Row 1", "'cat'", "not a number"]),
    (csv_text(), "animal", {"task": "clustering"},
     ["'clustering'", "classification or regression"]),
    (csv_text().replace(b"2.5,2,emu", b"2.5,2,emu,4"), "animal", {}, ["Row 6", "4 cells", "3"]),
    (b"a,a,y\n" + b"1,2,3\n" * 12, "y", {}, ["'a' appears twice"]),
    (b"a,,y\n" + b"1,2,3\n" * 12, "y", {}, ["Column 2 has no name"]),
    (b"\xff\xfe\x00a", "a", {}, ["not UTF-8"]),
    (csv_text(label=lambda i: str(i)), "animal", {}, []),  # 30 distinct ints: fine
]


@pytest.mark.parametrize(("content", "target", "kw", "words"), BAD)
def test_bad_files_name_the_row_or_column(registry: DataRegistry, content, target, kw,
                                          words) -> None:
    if not words:
        registry.add_upload(content, target, name="ok", **kw)
        return
    with pytest.raises(UploadError) as err:
        registry.add_upload(content, target, name="bad", **kw)
    for word in words:
        assert word in err.value.msg, err.value.msg
    assert "bad" not in registry.names()
    assert detail_of(err.value)[0]["loc"][0] == "body"


def test_too_many_classes(registry: DataRegistry) -> None:
    content = csv_text(rows=300, label=lambda i: str(i))
    with pytest.raises(UploadError, match="300 different labels.*regression"):
        registry.add_upload(content, "animal")


def test_names_are_checked(registry: DataRegistry) -> None:
    registry.add_upload(csv_text(), "animal", name="zoo")
    for name, words in [("zoo", "already exists"), ("ZOO", "already exists"),
                        ("xor", "already exists"), ("../etc", "cannot be used"),
                        (".hidden", "cannot be used")]:
        with pytest.raises(UploadError, match=words) as err:
            registry.add_upload(csv_text(), "animal", name=name)
        assert err.value.field == "name"
    entry = registry.add_upload(csv_text(), "animal", filename="my data (2).csv")
    assert entry["name"] == "my_data_2"


def test_row_and_column_limits(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, max_upload_rows=20, max_upload_columns=3)
    registry = DataRegistry(tmp_path / "uploads", settings)
    with pytest.raises(UploadError, match="more than 20 data rows"):
        registry.add_upload(csv_text(rows=21), "animal")
    registry.add_upload(csv_text(rows=20), "animal")
    with pytest.raises(UploadError, match="4 columns; the limit is 3"):
        registry.add_upload(b"a,b,c,y\n" + b"1,2,3,4\n" * 12, "y", name="wide")


def test_a_lost_file_is_a_clear_error_not_a_crash(registry: DataRegistry) -> None:
    from server.spec.errors import SpecError

    registry.add_upload(csv_text(), "animal", name="gone")
    (path,) = registry.upload_dir.glob("*.npz")
    path.write_bytes(b"not an npz")
    with pytest.raises(SpecError, match="could not be read"):
        registry.load(DatasetSpec(name="gone"))


@pytest.mark.parametrize("sep", [";", "\t"])
def test_semicolons_and_tabs_separate_columns_too(registry: DataRegistry, sep: str) -> None:
    entry = registry.add_upload(csv_text().replace(b",", sep.encode()), "animal", name="sep")
    assert entry["feature_names"] == ["height", "weight"]
