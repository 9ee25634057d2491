"""The `playground` command line (docs/CLIENT.md): serve, submit, follow and control jobs
(and sweeps: playground/sweep_cli.py).

Exit codes: 0 success (a followed job completed); 1 the job failed or was stopped, or the
server could not do it (5xx); 2 bad input (usage, a bad spec or file, an unknown job, a refused
token, any other 4xx); 3 the server cannot be reached; 130 interrupted (Ctrl-C; the job was
paused or stopped as asked). `--json` prints one JSON document on stdout for every command.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from playground import rest
from playground.client import Job, Playground
from playground.errors import ApiError, PlaygroundError, Unreachable
from playground.progress import final_table, watch

OK, FAILED, BAD_INPUT, UNREACHABLE, INTERRUPTED = 0, 1, 2, 3, 130
CONTROLS = ("pause", "resume", "stop", "step", "reset")


class Usage(Exception):
    """Bad input found after parsing (exit 2)."""


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors as a JSON document too when --json was given."""

    wants_json = False

    def error(self, message: str):  # type: ignore[override]
        if Parser.wants_json:
            emit({"error": "usage", "message": f"{self.prog}: {message}"})
        super().error(message)  # prints the usage and exits with 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        return serve(argv[1:])  # every option, --help too, is the server's
    Parser.wants_json = "--json" in argv
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, default in (("url", None), ("token", None), ("json", False)):
        if not hasattr(args, name):
            setattr(args, name, default)
    if args.command is None:
        parser.print_help(sys.stderr)
        return BAD_INPUT
    if args.command == "serve":
        return serve(args.server_args)
    try:
        with Playground(args.url, args.token) as pg:
            return args.run(pg, args)
    except Unreachable as exc:
        return fail(args, exc, UNREACHABLE, {"error": "unreachable", "message": str(exc)})
    except ApiError as exc:
        code = BAD_INPUT if 400 <= exc.status < 500 or exc.status >= 4000 else FAILED
        return fail(args, exc, code, {"error": "api", "status": exc.status,
                                      "message": exc.message, "detail": exc.detail,
                                      "locations": exc.locations})
    except (Usage, OSError, ValueError, TypeError) as exc:
        return fail(args, exc, BAD_INPUT, {"error": "input", "message": str(exc)})
    except PlaygroundError as exc:
        return fail(args, exc, FAILED, {"error": "client", "message": str(exc)})


def fail(args: argparse.Namespace, exc: Exception, code: int, document: dict) -> int:
    if args.json:
        emit(document)
    print(f"playground: {exc}", file=sys.stderr)
    return code


def emit(document: Any) -> None:
    print(json.dumps(document, indent=2, default=str))


def serve(server_args: list[str]) -> int:
    """Run the server in this process (what ./play runs): `python -m server ARGS`."""
    args = [a for a in server_args if a != "--"]
    os.execv(sys.executable, [sys.executable, "-m", "server", *args])
    return OK  # pragma: no cover - execv does not return


# ---- commands ---------------------------------------------------------------------------------


def cmd_submit(pg: Playground, args: argparse.Namespace) -> int:
    job = pg.submit(args.spec, name=args.name, start=False if args.paused else None)
    if not args.follow:
        if args.json:
            emit(job.info)
        else:
            print(f"{job.id}  {job.info.get('status')}  token {job.info.get('token')}")
        return OK
    if not args.json:
        print(f"job {job.id}  token {job.info.get('token')}", file=sys.stderr)
    return follow(job, args)


def cmd_watch(pg: Playground, args: argparse.Namespace) -> int:
    return follow(pg.job(args.id), args)


def follow(job: Job, args: argparse.Namespace) -> int:
    """Follow with a progress bar; Ctrl-C asks whether to pause or stop (pauses without a
    terminal). The final table, or the final state as JSON."""
    while True:
        try:
            with remembered_interrupts() as interrupted:
                info, last = watch(job, quiet=args.json, interrupted=interrupted)
            break
        except KeyboardInterrupt:
            action = ask_interrupt(job)
            if action == "continue":
                continue
            if action != "leave":
                job.control(action)
            info = job.refresh()
            if args.json:
                emit({**info, "interrupted": action})
            else:
                hint = f"; resume it with: playground resume {job.id}" if action == "pause" else ""
                print(f"\njob {job.id} is {info['status']}{hint}", file=sys.stderr)
            return INTERRUPTED
    if args.json:
        emit(info)
    else:
        final_table(info, last)
    return OK if info["status"] == "completed" else FAILED


@contextlib.contextmanager
def remembered_interrupts() -> Iterator[Callable[[], bool]]:
    """While inside: Ctrl-C raises KeyboardInterrupt as usual and is also remembered; yields
    whether one came. Python drops an exception raised inside a finalizer or a weakref
    callback (a busy stream's garbage collections run them), and the watch would go on."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    came = []

    def on_sigint(signum, frame):
        came.append(signum)
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield lambda: bool(came)
    finally:
        signal.signal(signal.SIGINT, before)


def ask_interrupt(job: Job) -> str:
    """'pause', 'stop', 'leave' (keep training) or 'continue' (watch again); 'pause' when
    stdin is not a terminal (nobody to ask)."""
    if not sys.stdin or not sys.stdin.isatty():
        return "pause"
    choices = {"p": "pause", "s": "stop", "l": "leave", "c": "continue", "": "pause"}
    while True:
        try:
            answer = input(f"\nJob {job.id}: [p]ause (default), [s]top, [l]eave it training, "
                           "or [c]ontinue watching? ").strip().lower()
        except (EOFError, KeyboardInterrupt):
            return "pause"
        if answer[:1] in choices:
            return choices[answer[:1]]


def cmd_jobs(pg: Playground, args: argparse.Namespace) -> int:
    jobs = pg.jobs()
    if args.json:
        emit([j.info for j in jobs])
        return OK
    if not jobs:
        print("no jobs")
    for j in jobs:
        progress = j.info.get("progress") or {}
        epochs = progress.get("epochs")
        epoch = f"{progress.get('epoch', 0)}/{epochs}" if epochs else str(progress.get("epoch", 0))
        status, name = j.info.get("status", ""), j.info.get("name") or ""
        print(f"{j.id}  {status:<9}  epoch {epoch:<11}  {name}")
    return OK


def cmd_status(pg: Playground, args: argparse.Namespace) -> int:
    job = pg.job(args.id)
    if args.json:
        emit(job.info)
    else:
        final_table(job.info, job.info.get("metrics"))
    return FAILED if job.info["status"] in ("failed", "stopped") else OK


def cmd_control(pg: Playground, args: argparse.Namespace) -> int:
    job = Job(pg, args.id)
    info = job.control(args.command, "epoch" if getattr(args, "epoch", False) else None)
    if args.json:
        emit(info)
    else:
        progress = info.get("progress") or {}
        print(f"{job.id}  {info.get('status')}  epoch {progress.get('epoch', 0)}")
    return OK


def cmd_delete(pg: Playground, args: argparse.Namespace) -> int:
    Job(pg, args.id).delete()
    if args.json:
        emit({"id": args.id, "deleted": True})
    else:
        print(f"{args.id}  deleted")
    return OK


def cmd_patch(pg: Playground, args: argparse.Namespace) -> int:
    settings = {k: getattr(args, k) for k in ("learning_rate", "momentum", "batch_size",
                                              "epochs", "name") if getattr(args, k) is not None}
    if not settings:
        raise Usage("give at least one of --learning-rate, --momentum, --batch-size, "
                    "--epochs, --name")
    info = Job(pg, args.id).patch(**settings)
    if args.json:
        emit(info)
    else:
        print(f"{args.id}  {info.get('status')}  " + "  ".join(
            f"{k}={v}" for k, v in settings.items()))
    return OK


def cmd_metrics(pg: Playground, args: argparse.Namespace) -> int:
    records = Job(pg, args.id).metrics(since=args.since)
    if args.json:
        emit(records)
        return OK
    if not records:
        print("no epochs yet")
        return OK
    keys = [k for k in records[-1] if isinstance(records[-1][k], int | float)
            and not k.endswith("confusion_matrix")]
    print("  ".join(f"{k:>12}" for k in keys))
    for r in records:
        print("  ".join(f"{_cell(r.get(k)):>12}" for k in keys))
    return OK


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.5g}"
    return "-" if value is None else str(value)


def cmd_download(pg: Playground, args: argparse.Namespace) -> int:
    path = Job(pg, args.id).download(args.format, args.output)
    if args.json:
        emit({"id": args.id, "format": args.format, "path": str(path),
              "bytes": path.stat().st_size})
    else:
        print(path)
    return OK


def cmd_import_tfp(pg: Playground, args: argparse.Namespace) -> int:
    report = pg.import_tfp(args.link)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            json.dump(report["spec"], fh, indent=2)
    job = pg.submit(report["spec"]) if args.submit else None
    if args.json:
        emit({**report, **({"job": job.info} if job else {})})
        return OK
    for item in report.get("unmapped", []):
        print(f"not carried over: {item.get('field')}={item.get('value')}: {item.get('reason')}",
              file=sys.stderr)
    for note in report.get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    if job:
        print(f"{job.id}  {job.info.get('status')}  token {job.info.get('token')}")
    elif not args.output:
        emit(report["spec"])
    return OK


def cmd_datasets(pg: Playground, args: argparse.Namespace) -> int:
    entries = pg.datasets.list()
    if args.json:
        emit(entries)
        return OK
    for d in entries:
        print(f"{d.get('name', ''):<24} {d.get('kind', ''):<9} {d.get('task', '')}")
    return OK


def cmd_upload(pg: Playground, args: argparse.Namespace) -> int:
    entry = pg.datasets.upload(args.csv, args.target, name=args.name, task=args.task)
    if args.json:
        emit(entry)
    else:
        print(entry.get("name"))
    return OK


# ---- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS,
                        help=f"the server (default $PLAYGROUND_URL or {rest.DEFAULT_URL})")
    common.add_argument("--token", default=argparse.SUPPRESS,
                        help="a job's or the teacher's token (default $PLAYGROUND_TOKEN)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print one JSON document on stdout")
    parser = Parser(
        prog="playground", parents=[common],
        description="Train and follow neural networks on a playground server.",
        epilog="Exit codes: 0 done (job completed), 1 job failed or stopped, 2 bad input, "
               "3 server unreachable, 130 interrupted.")
    # Not set_defaults: the actions are shared with the subcommands', whose defaults would then
    # override a --url given before the command. main() fills in what is missing.
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, run: Callable, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(run=run)
        return p

    p = sub.add_parser("serve", help="start the server (what ./play runs); options go to "
                       "python -m server (--host, --port, --data-dir, --device)")
    p.add_argument("server_args", nargs=argparse.REMAINDER)
    p = add("submit", cmd_submit, "create a job from a JSON spec file")
    p.add_argument("spec", help="the job spec (JSON file)")
    p.add_argument("--follow", "-f", action="store_true", help="follow it to the end")
    p.add_argument("--name", help="the job's name (overrides the spec's)")
    p.add_argument("--paused", action="store_true", help="create it paused")
    add("jobs", cmd_jobs, "list your jobs (all jobs on an open server)")
    for name, run, text in (("status", cmd_status, "a job's status and latest numbers"),
                            ("watch", cmd_watch, "follow a job with a progress bar"),
                            ("delete", cmd_delete, "stop and delete a job")):
        add(name, run, text).add_argument("id")
    for action in CONTROLS:
        p = add(action, cmd_control, f"{action} a job")
        p.add_argument("id")
        if action == "step":
            p.add_argument("--epoch", action="store_true", help="to the end of the epoch")
    p = add("patch", cmd_patch, "change a job's settings while it trains")
    p.add_argument("id")
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--momentum", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--name")
    p = add("metrics", cmd_metrics, "a job's per-epoch history")
    p.add_argument("id")
    p.add_argument("--since", type=int, help="only the epochs after this one")
    p = add("download", cmd_download, "save a job's trained model")
    p.add_argument("id")
    p.add_argument("--format", default="safetensors",
                   help="safetensors (default), onnx, torchscript or python")
    p.add_argument("-o", "--output", help="file or folder (default: the current folder)")
    p = add("import-tfp", cmd_import_tfp, "turn a TensorFlow Playground link into a job spec")
    p.add_argument("link", help="the link (https://playground.tensorflow.org/#...) or its hash")
    p.add_argument("--submit", action="store_true", help="create the job too")
    p.add_argument("-o", "--output", help="save the spec to this file")
    add("datasets", cmd_datasets, "list the data sets")
    p = add("upload", cmd_upload, "upload a CSV as a data set")
    p.add_argument("csv")
    p.add_argument("--target", required=True, help="the column to predict")
    p.add_argument("--name")
    p.add_argument("--task", choices=("classification", "regression"))
    from playground.sweep_cli import cmd_sweep, sweep_arguments  # it imports this module

    sweep_arguments(add("sweep", cmd_sweep, "one job per variant of a spec along --axis "
                        "(a sweep); --follow ranks them by the test metric"))
    return parser


if __name__ == "__main__":
    sys.exit(main())
