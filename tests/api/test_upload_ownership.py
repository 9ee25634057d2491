"""Uploads on an open server (issue 11, item 8): one user, everything visible as before, used
by the name given; delete (409 while a job trains on it) and share work the same way. Class
mode is in tests/classroom/test_uploads.py."""

from __future__ import annotations

from tests.api.test_datasets import csv_bytes, upload
from tests.conftest import LiveServer


def test_open_server_upload_delete_and_share(server: LiveServer) -> None:
    with server.client() as c:
        r = upload(c, csv_bytes(), name="open_owned")
        assert r.status_code == 201, r.text
        entry = r.json()
        assert entry["name"] == "open_owned" and entry["title"] == "open_owned"
        assert entry["owner"] is None and entry["deletable"] is True
        assert entry["rows"] == 30 and entry["stored_bytes"] > 0
        bad = upload(c, csv_bytes(), name="upload:0123456789ab")
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "name"]

        r = c.post("/api/jobs", json={"dataset": {"name": "open_owned"},
                                      "model": {"layers": [{"type": "dense", "units": 4}]},
                                      "training": {"epochs": 3}, "start": False})
        assert r.status_code == 201, r.text
        job = r.json()
        refused = c.delete("/api/datasets/open_owned")
        assert refused.status_code == 409
        assert refused.json()["detail"] == (
            f"The data set 'open_owned' is used by 1 job: '{job['id']}' (paused). "
            "Delete that job first.")
        assert c.get("/api/datasets/open_owned/preview").status_code == 200  # still there

        shared = c.post("/api/datasets/open_owned/share")
        assert shared.status_code == 200 and shared.json()["shared"] is True

        assert c.delete(f"/api/jobs/{job['id']}").status_code == 204
        assert c.delete("/api/datasets/open_owned").status_code == 204
        assert c.get("/api/datasets/open_owned").status_code == 404
        assert "open_owned" not in [e["name"] for e in c.get("/api/datasets").json()]
        assert c.delete("/api/datasets/open_owned").status_code == 404
        # The name is free again.
        assert upload(c, csv_bytes(), name="open_owned").status_code == 201
