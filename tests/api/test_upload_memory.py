"""Uploads' memory on a live server (issue 12, item 6): one 10 MB CSV, then 8 at once, twice;
the server's resident memory (VmRSS of its process) must grow by less than 3x what was
uploaded at its peak (before: 17x, never given back), and stay bounded afterwards (a second
round keeps no more than the first). Parses beyond `max_concurrent_uploads` wait, then get a
503 with a sentence. Run with -s to print the numbers."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np

from tests.conftest import start_server, stop_server

MB = 1024 * 1024


def ten_mb_csv(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(140_000, 8))
    labels = np.where(values[:, 0] > 0, "up", "down")
    body = "\n".join(",".join(f"{v:.5f}" for v in row) + "," + label
                     for row, label in zip(values, labels, strict=True))
    content = ("f0,f1,f2,f3,f4,f5,f6,f7,label\n" + body + "\n").encode()
    assert 9.5 * MB < len(content) <= 10 * MB
    return content


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class Sampler(threading.Thread):
    """The highest VmRSS seen while it runs, every 20 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.join()


def post(url: str, content: bytes, name: str) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=300) as c:
        return c.post("/api/datasets", data={"target": "label", "name": name},
                      files={"file": (f"{name}.csv", content, "text/csv")})


def test_rss_stays_bounded_for_one_and_for_eight_concurrent_10_mb_uploads(tmp_path) -> None:
    files = [ten_mb_csv(seed) for seed in range(8)]
    live = start_server(tmp_path / "data", env={"PLAYGROUND_MAX_UPLOAD_ROWS": "200000",
                                                "PLAYGROUND_UPLOAD_WAIT_SECONDS": "300"})
    pid = live.process.pid
    try:
        small = b"a,label\n" + b"".join(f"{i},{i % 2}\n".encode() for i in range(20))
        assert post(live.url, small, "warm").status_code == 201  # imports, first arena
        time.sleep(0.5)
        base = rss_mb(pid)
        with Sampler(pid) as one:
            r = post(live.url, files[0], "one")
        assert r.status_code == 201, r.text
        assert r.json()["rows"] == 140_000
        one_growth = one.peak - base
        time.sleep(0.5)
        after_one = rss_mb(pid) - base

        total = sum(len(f) for f in files) / MB
        rounds = []
        for round_ in range(2):
            with Sampler(pid) as eight, ThreadPoolExecutor(8) as pool:
                replies = list(pool.map(
                    lambda i, r=round_: post(live.url, files[i], f"many{r}_{i}"), range(8)))
            assert [r.status_code for r in replies] == [201] * 8, [r.text for r in replies]
            time.sleep(1.0)
            rounds.append((eight.peak - base, rss_mb(pid) - base))
        print(f"\nbase {base:.0f} MB; one 10 MB upload: peak +{one_growth:.0f} MB, after "
              f"+{after_one:.0f} MB; eight at once ({total:.0f} MB), twice: peaks "
              f"+{rounds[0][0]:.0f} and +{rounds[1][0]:.0f} MB, after +{rounds[0][1]:.0f} and "
              f"+{rounds[1][1]:.0f} MB")
        assert one_growth < 4 * len(files[0]) / MB
        for peak, _ in rounds:
            assert peak < 3 * total
            assert peak < 80  # two parses at a time, not eight: about a quarter of the total
        assert rounds[1][1] < rounds[0][1] + 10  # bounded: a second round keeps no more
        assert rounds[1][1] < 60
    finally:
        stop_server(live)


def test_uploads_past_the_parse_slots_wait_then_get_503(tmp_path) -> None:
    files = [ten_mb_csv(seed) for seed in range(3)]
    live = start_server(tmp_path / "data", env={"PLAYGROUND_MAX_UPLOAD_ROWS": "200000",
                                                "PLAYGROUND_MAX_CONCURRENT_UPLOADS": "1",
                                                "PLAYGROUND_UPLOAD_WAIT_SECONDS": "0.05"})
    try:
        with ThreadPoolExecutor(3) as pool:
            replies = list(pool.map(lambda i: post(live.url, files[i], f"slot{i}"), range(3)))
        codes = sorted(r.status_code for r in replies)
        assert 201 in codes and 503 in codes, codes
        busy = next(r for r in replies if r.status_code == 503)
        assert busy.headers["retry-after"] == "5"
        assert busy.json()["detail"] == ("The server is reading other uploads right now; try "
                                         "again in a few seconds.")
    finally:
        stop_server(live)
