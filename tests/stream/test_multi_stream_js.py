"""The page's side of the multi-job stream, in node: `wire.decodeBundle` reads the bundles that
`server.stream.wire.encode_bundle` writes (aligned views, odd frame lengths, bad bundles), and
`api.js MultiStream` against a stand-in WebSocket: one coalesced `subscribe` per tick with the
complete job set, sent again on each reconnect; `without_snapshots` (jobs watched without
frames) kept with the set, coalesced, re-sent and cleaned of jobs that leave; messages, batches
and bundle frames routed to their jobs; one ack per bundle; refused and deleted jobs leave the
set; final close codes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from server.stream import wire

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "web/static/js"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def frame(job_id: str, seq: int, values: list[float]) -> bytes:
    """A snapshot frame of `job_id`: a quantized array, then float32 `values` (padded to 8)."""
    b = wire.FrameBuilder(type="snapshot", job_id=job_id, seq=seq)
    b.add_quantized("heat", np.arange(6, dtype=np.float32).reshape(2, 3))
    b.add("w", np.array(values, dtype=np.float32))
    return b.encode()


def node(script: str) -> dict:
    out = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


READ = """
import { readFileSync } from "node:fs";
function read(path) {
  const buf = readFileSync(path);
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
}
"""


def test_decode_bundle_reads_the_server_bundles(tmp_path):
    # The server's frames end on a multiple of 8; one without its last padding checks that the
    # reader finds the next frame at the next multiple of 8.
    frames = [frame("a", 1, [1.5])[:-4], frame("b", 2, [1, 2, 3]), frame("c", 3, [4, 5, 6, 7, 8])]
    assert [len(f) % 8 for f in frames] == [4, 0, 0]
    paths = {}
    for name, data in {"three": wire.encode_bundle(frames), "none": wire.encode_bundle([]),
                       "cut": wire.encode_bundle(frames)[:-4],
                       "table": (5).to_bytes(4, "little")}.items():
        paths[name] = tmp_path / f"{name}.bin"
        paths[name].write_bytes(data)
    got = node(READ + f"""
import {{ decodeBundle, dequantize }} from "{(JS / 'wire.js').as_uri()}";
const frames = decodeBundle(read({json.dumps(str(paths["three"]))}));
const fail = (data) => {{
  try {{ decodeBundle(data); return null; }} catch (e) {{ return e.message; }}
}};
console.log(JSON.stringify({{
  jobs: frames.map((f) => f.header.job_id),
  seqs: frames.map((f) => f.header.seq),
  w: frames.map((f) => Array.from(f.arrays.w.data)),
  heat: Array.from(dequantize(frames[2].arrays.heat)),
  aligned: frames.every((f) => Object.values(f.arrays).every((a) => a.data.byteOffset % 8 === 0)),
  none: decodeBundle(read({json.dumps(str(paths["none"]))})).length,
  cut: fail(read({json.dumps(str(paths["cut"]))})),
  table: fail(read({json.dumps(str(paths["table"]))})),
  notBuffer: fail("x"),
}}));
""")
    assert got["jobs"] == ["a", "b", "c"]
    assert got["seqs"] == [1, 2, 3]
    assert got["w"] == [[1.5], [1, 2, 3], [4, 5, 6, 7, 8]]
    header, arrays = wire.decode(frames[2])
    assert got["heat"] == pytest.approx(wire.values(header, arrays, "heat").ravel().tolist(),
                                        abs=1e-5)
    assert got["aligned"] is True
    assert got["none"] == 0
    assert got["cut"].startswith("frame 2 (") and "runs past the bundle" in got["cut"]
    assert got["table"] == "bundle of 5 frames is shorter than its length table (4 bytes)"
    assert got["notBuffer"] == ("decodeBundle needs an ArrayBuffer; "
                                "set socket.binaryType = 'arraybuffer'")


FAKE_SOCKET = """
const sockets = [];
class FakeSocket {
  static OPEN = 1;
  constructor(url) { this.url = url; this.readyState = 0; this.sent = []; sockets.push(this); }
  send(text) { this.sent.push(JSON.parse(text)); }
  close(code) { this.readyState = 3; this.closedWith = code; }
  open() { this.readyState = 1; this.onopen?.(); }
  message(data) { this.onmessage?.({ data: typeof data === "string" ? data : data }); }
  drop(code, reason = "") { this.readyState = 3; this.onclose?.({ code, reason }); }
}
globalThis.WebSocket = FakeSocket;
globalThis.location = { protocol: "http:", host: "wall.test", search: "", hash: "" };
const tick = () => new Promise((r) => setTimeout(r, 0));
const log = [];
const handlers = (id) => Object.fromEntries(
  ["hello", "metrics", "status", "error", "reply", "snapshot", "connection"].map((name) => [name,
    (...args) => log.push([id, name, ...args.map((a) => (a && a.header ? a.header.seq : a))])]));
"""


def test_multi_stream_subscribes_routes_and_acks(tmp_path):
    bundle = tmp_path / "bundle.bin"
    bundle.write_bytes(wire.encode_bundle([frame("a", 7, [1]), frame("gone", 8, [2]),
                                           frame("c", 9, [3, 4])]))
    got = node(READ + FAKE_SOCKET + f"""
const {{ MultiStream }} = await import("{(JS / 'api.js').as_uri()}");
const stream = new MultiStream(
  {{ ...handlers("*"), bundle: (frames) => log.push(["*", "bundle", frames.length]) }},
  {{ token: "t k", subscribe: {{ hz: 10, detail: "tile" }} }});
const out = {{}};
stream.connect();
for (const id of ["a", "b", "c"]) stream.watch(id, handlers(id));
await tick();
const s1 = sockets[0];
out.url = s1.url;
out.beforeOpen = s1.sent.length;
s1.open();
out.first = s1.sent.splice(0);
// Several changes in one tick: one message with the complete set.
stream.unwatch("b"); stream.watch("d", handlers("d")); stream.setOptions({{ hz: 5 }});
out.afterOpen = s1.sent.length;
await tick();
out.second = s1.sent.splice(0);
stream.watch("e", handlers("e")); stream.unwatch("e"); stream.unwatch("nobody");
await tick();
out.unchanged = s1.sent.splice(0);
// The server's answers, routed by job.
const send = (m) => s1.message(JSON.stringify(m));
send({{ type: "reply", request: "subscribe", id: 2, ok: true, jobs: ["a", "c"],
        refused: {{ d: "Job not found" }} }});
send({{ type: "hello", job_id: "a", kind: "points2d" }});
send({{ type: "hello", job_id: "b", kind: "points2d" }});
send({{ type: "metrics_batch",
  jobs: {{ a: [{{ epoch: 1 }}], c: [{{ epoch: 2 }}, {{ epoch: 3 }}], b: [{{ epoch: 9 }}] }} }});
send({{ type: "status", job_id: "c", status: "paused" }});
send({{ type: "error", job_id: "a", message: "failed" }});
send({{ type: "error", job_id: null, message: "bad subscribe", request: "subscribe" }});
send({{ type: "reply", job_id: "a", request: "control", ok: true }});
send({{ type: "surprise", job_id: "a" }});
out.ackBefore = stream.ack();
s1.message(read({json.dumps(str(bundle))}));
out.ack1 = stream.ack();
out.ack2 = stream.ack();
out.acks = s1.sent.splice(0);
s1.message(new Uint32Array([5]).buffer); // not a bundle: said, and acknowledged all the same
out.ackBad = stream.ack();
out.ackBadSent = s1.sent.splice(0);
send({{ type: "status", job_id: "c", status: "deleted" }});
stream.watch("f", handlers("f"));
await tick();
out.third = s1.sent.splice(0);
const short = (x) => (typeof x === "object" && x !== null ? (x.type || x) : x);
out.log = log.splice(0).map((entry) => entry.map(short));
// The socket drops: every job hears, and the next socket gets the whole subscription again.
s1.drop(1006);
out.lost = log.splice(0);
await new Promise((r) => setTimeout(r, 350));
const s2 = sockets[1];
s2.open();
out.reconnect = s2.sent.splice(0);
out.ackNoBundle = stream.ack();
s2.drop(4403, "This job belongs to someone else");
await new Promise((r) => setTimeout(r, 400));
out.final = log.splice(0);
out.sockets = sockets.length;
stream.close();
console.log(JSON.stringify(out));
""")
    assert got["url"] == "ws://wall.test/api/streams?token=t%20k"
    assert got["beforeOpen"] == 0
    assert got["first"] == [{"type": "subscribe", "id": 1, "jobs": ["a", "b", "c"],
                             "without_snapshots": [], "hz": 10, "detail": "tile"}]
    assert got["afterOpen"] == 0  # not before the end of the tick
    assert got["second"] == [{"type": "subscribe", "id": 2, "jobs": ["a", "c", "d"],
                              "without_snapshots": [], "hz": 5, "detail": "tile"}]
    assert got["unchanged"] == []
    assert got["ackBefore"] is False
    assert got["ack1"] is True and got["ack2"] is False
    assert got["acks"] == [{"type": "ack"}]
    assert got["ackBad"] is True and got["ackBadSent"] == [{"type": "ack"}]
    # c deleted, d refused: neither is asked for again.
    assert got["third"] == [{"type": "subscribe", "id": 3, "jobs": ["a", "f"],
                             "without_snapshots": [], "hz": 5, "detail": "tile"}]
    assert got["log"] == [
        ["d", "connection", "closed", "Job not found"],
        ["*", "reply", "reply"],
        ["a", "connection", "open"], ["a", "hello", "hello"],
        ["a", "metrics", [{"epoch": 1}]], ["c", "metrics", [{"epoch": 2}, {"epoch": 3}]],
        ["c", "status", "status"],
        ["a", "error", "error"],
        ["*", "error", "error"],
        ["a", "reply", "reply"],
        ["a", "snapshot", 7], ["c", "snapshot", 9], ["*", "bundle", 3],
        ["*", "error", "error"], ["*", "bundle", 0],
        ["c", "status", "status"], ["c", "connection", "closed", "Job not found"],
    ]
    assert got["lost"] == [["*", "connection", "lost", "Connection to the server lost"],
                           ["a", "connection", "lost", "Connection to the server lost"],
                           ["f", "connection", "lost", "Connection to the server lost"]]
    assert got["reconnect"] == [{"type": "subscribe", "id": 4, "jobs": ["a", "f"],
                                 "without_snapshots": [], "hz": 5, "detail": "tile"}]
    assert got["ackNoBundle"] is False
    assert got["final"] == [["*", "connection", "closed", "This job belongs to someone else"],
                            ["a", "connection", "closed", "This job belongs to someone else"],
                            ["f", "connection", "closed", "This job belongs to someone else"]]
    assert got["sockets"] == 2  # no reconnect after a final close code


def test_multi_stream_sends_the_jobs_without_snapshots():
    got = node(FAKE_SOCKET + f"""
const {{ MultiStream }} = await import("{(JS / 'api.js').as_uri()}");
const stream = new MultiStream({{}}, {{ subscribe: {{ detail: "tile" }} }});
const out = {{}};
stream.connect();
stream.watch("a", handlers("a"));
stream.watch("b", handlers("b"), {{ snapshots: false }});
stream.watch("c", handlers("c"));
stream.setSnapshots("nobody", false); // not watched: nothing to say
const s1 = sockets[0];
s1.open();
out.first = s1.sent.splice(0);
// Changes in one tick: one message; a change back and forth: none.
stream.setSnapshots("c", false); stream.setSnapshots("b", true); stream.setSnapshots("b", false);
await tick();
out.second = s1.sent.splice(0);
stream.setSnapshots("a", false); stream.setSnapshots("a", true); stream.setSnapshots("c", false);
await tick();
out.unchanged = s1.sent.splice(0);
// A job that leaves the list's set leaves the list: unwatched, refused or deleted.
stream.unwatch("b");
await tick();
out.unwatched = s1.sent.splice(0);
stream.watch("d", handlers("d"), {{ snapshots: false }});
await tick();
out.fourth = s1.sent.splice(0);
s1.message(JSON.stringify({{ type: "reply", request: "subscribe", id: 4, ok: true, jobs: ["a", "c"],
  refused: {{ d: "Job not found" }}, without_snapshots: ["c"] }}));
stream.watch("e", handlers("e"));
await tick();
out.fifth = s1.sent.splice(0);
// Watched again, a job gets frames unless it says otherwise.
stream.watch("c", handlers("c"));
await tick();
out.rewatched = s1.sent.splice(0);
stream.setSnapshots("e", false);
await tick();
s1.sent.splice(0);
s1.drop(1006);
await new Promise((r) => setTimeout(r, 350));
sockets[1].open();
out.reconnect = sockets[1].sent.splice(0);
stream.close();
console.log(JSON.stringify(out));
""")
    def sub(i: int, jobs: list[str], without: list[str]) -> list[dict]:
        return [{"type": "subscribe", "id": i, "jobs": jobs, "without_snapshots": without,
                 "detail": "tile"}]

    assert got["first"] == sub(1, ["a", "b", "c"], ["b"])
    assert got["second"] == sub(2, ["a", "b", "c"], ["b", "c"])
    assert got["unchanged"] == []
    assert got["unwatched"] == sub(3, ["a", "c"], ["c"])
    assert got["fourth"] == sub(4, ["a", "c", "d"], ["c", "d"])
    assert got["fifth"] == sub(5, ["a", "c", "e"], ["c"])
    assert got["rewatched"] == sub(6, ["a", "c", "e"], [])
    assert got["reconnect"] == sub(8, ["a", "c", "e"], ["e"])
