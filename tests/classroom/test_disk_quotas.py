"""Storage quotas in class mode (issue 12, item 4), through a live server: a student's uploads
past `max_upload_storage_per_student` get 413, the server's past `max_upload_storage_total`
507, each with a sentence naming the setting; deleting an upload frees its room. A student's
checkpoints past `max_checkpoint_storage_per_student` refuse a new job with 413; other
students and the teacher are not held by it."""

from __future__ import annotations

from pathlib import Path

from server.config import Settings
from server.data.registry import DataRegistry
from tests.classroom.test_uploads import csv_bytes, upload
from tests.engine.common import wait_status


def stored_size(tmp_path: Path) -> int:
    """What csv_bytes() takes once stored (the same code the server runs)."""
    registry = DataRegistry(tmp_path / "probe", Settings(data_dir=tmp_path))
    return registry.add_upload(csv_bytes(), "label", name="probe")["stored_bytes"]


def test_upload_quotas_per_student_and_in_total(tmp_room, tmp_path):
    size = stored_size(tmp_path)
    room = tmp_room(PLAYGROUND_RATE_LIMIT_PER_SECOND="0",
                    PLAYGROUND_MAX_UPLOAD_STORAGE_PER_STUDENT=str(int(1.5 * size)),
                    PLAYGROUND_MAX_UPLOAD_STORAGE_TOTAL=str(int(3.5 * size)))
    tokens = {name: room.join(name) for name in ("Ana", "Ben", "Cy", "Dan")}
    clients = {name: room.http(token) for name, token in tokens.items()}
    try:
        first = upload(clients["Ana"], "one")
        assert first.status_code == 201, first.text
        assert first.json()["stored_bytes"] == size
        over = upload(clients["Ana"], "two")
        assert over.status_code == 413
        assert "max_upload_storage_per_student" in over.json()["detail"]
        assert "Delete one of your uploads first" in over.json()["detail"]
        assert upload(clients["Ben"], "one").status_code == 201  # a quota of his own
        assert upload(clients["Cy"], "one").status_code == 201
        full = upload(clients["Dan"], "one")
        assert full.status_code == 507
        assert "max_upload_storage_total" in full.json()["detail"]
        # Deleting frees the room.
        assert clients["Ana"].delete(f"/api/datasets/{first.json()['name']}").status_code == 204
        assert upload(clients["Ana"], "two").status_code == 201
    finally:
        for client in clients.values():
            client.close()


BIG = {"dataset": {"name": "xor", "params": {"samples": 100}},
       "model": {"layers": [{"type": "dense", "units": 512, "activation": "tanh"},
                            {"type": "dense", "units": 512, "activation": "tanh"}]},
       "training": {"epochs": 1}}


def test_checkpoint_quota_per_student(tmp_room):
    # 264,705 parameters: a checkpoint of about 1 MB; estimated at up to 3.2 MB (weights and
    # two optimizer slots), so the second job passes 4 MB.
    room = tmp_room(PLAYGROUND_RATE_LIMIT_PER_SECOND="0",
                    PLAYGROUND_MAX_CHECKPOINT_STORAGE_PER_STUDENT="4000000")
    ana, ben, teacher = room.join("Ana"), room.join("Ben"), room.teacher()
    with room.http(ana) as a, room.http(ben) as b, room.http(teacher) as t:
        r = a.post("/api/jobs", json=BIG)
        assert r.status_code == 201, r.text
        wait_status(a, r.json()["id"], "completed")
        assert (room.live.data_dir / "checkpoints" / f"{r.json()['id']}.safetensors").stat(
        ).st_size > 1_000_000
        again = a.post("/api/jobs", json=BIG)
        assert again.status_code == 413
        assert "max_checkpoint_storage_per_student" in again.json()["detail"]
        assert b.post("/api/jobs", json=BIG).status_code == 201
        assert t.post("/api/jobs", json={**BIG, "start": False}).status_code == 201
        assert a.delete(f"/api/jobs/{r.json()['id']}").status_code == 204
        assert a.post("/api/jobs", json={**BIG, "start": False}).status_code == 201
