"""`playground sweep`: create a sweep from a spec file and `--axis` options, and follow it.

    playground sweep spec.json --axis training.optimizer.learning_rate=0.001,0.01,0.1 \
        --axis model.layers.0.units=2:16:4:log --follow

Without --follow it prints the sweep's id, token and job ids; with it a progress bar (epochs of
all variants, how many are done) and a final table of the variants, best first by the test
metric (`--sort` names another). Exit codes as the other commands (playground/cli.py): 0 every
variant completed (or not followed), 1 one failed or was stopped, 2 bad input, 130 Ctrl-C
(the sweep paused or stopped as asked).
"""

from __future__ import annotations

import argparse
import sys
import time

from playground.cli import FAILED, INTERRUPTED, OK, Usage, emit
from playground.client import Playground
from playground.progress import Progress
from playground.sweeps import ENDED, Sweep, parse_axis, ranked, sort_metric, variant_table

POLL_SECONDS = 0.5


def sweep_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="the base job spec (JSON file)")
    p.add_argument("--axis", "-a", action="append", default=[], metavar="PATH=VALUES",
                   help="PATH=V1,V2,... or PATH=LOW:HIGH:COUNT[:log] (repeat for more axes), "
                        "e.g. training.optimizer.learning_rate=0.001,0.01,0.1")
    p.add_argument("--mode", choices=("grid", "random"), default="grid",
                   help="grid: every combination (default); random: --count draws")
    p.add_argument("--count", type=int, help="variants of a random sweep")
    p.add_argument("--follow", "-f", action="store_true", help="follow it to the end")
    p.add_argument("--sort", metavar="METRIC",
                   help="rank the final table by this metric (default: test_accuracy, else "
                        "test_loss)")


def cmd_sweep(pg: Playground, args: argparse.Namespace) -> int:
    if not args.axis:
        raise Usage("give at least one --axis PATH=VALUES, e.g. "
                    "--axis training.optimizer.learning_rate=0.001,0.01,0.1")
    if args.mode == "random" and args.count is None:
        raise Usage("--mode random needs --count N (how many variants to draw)")
    axes = [parse_axis(text) for text in args.axis]
    sweep = pg.sweep(args.spec, axes, args.mode, args.count)
    if not args.follow:
        if args.json:
            emit(sweep.info)
        else:
            print(f"sweep {sweep.id}  {len(sweep.jobs)} jobs  token {sweep.token}")
            for job in sweep.jobs:
                print(job.id)
        return OK
    if not args.json:
        print(f"sweep {sweep.id}  {len(sweep.jobs)} jobs  token {sweep.token}", file=sys.stderr)
    return follow_sweep(sweep, args)


def follow_sweep(sweep: Sweep, args: argparse.Namespace) -> int:
    """Poll the sweep until every variant has ended, with a progress bar on stderr; then the
    variants, best first (a table, or the sweep's state as JSON)."""
    try:
        info = _watch(sweep, quiet=args.json)
    except KeyboardInterrupt:
        action = _ask(sweep)
        if action != "leave":
            sweep.control(action)
        info = sweep.refresh()
        if args.json:
            emit({**info, "interrupted": action})
        else:
            hint = (f"; resume it with the API: POST /api/sweeps/{sweep.id}/control"
                    if action == "pause" else "")
            print(f"\nsweep {sweep.id} is {info['status']}{hint}", file=sys.stderr)
        return INTERRUPTED
    metric = args.sort or sort_metric(info["variants"])
    if args.json:
        emit({**info, "sorted_by": metric, "variants": ranked(info["variants"], metric)})
    else:
        variant_table(info, metric)
    done = all(v["status"] == "completed" for v in info["variants"])
    return OK if done else FAILED


def _watch(sweep: Sweep, quiet: bool) -> dict:
    bar: Progress | None = None
    finished = -1
    try:
        while True:
            info = sweep.refresh()
            variants = info["variants"]
            if not quiet:
                budgets = [v.get("epochs") for v in variants]
                if bar is None:
                    total = sum(budgets) if all(isinstance(b, int) for b in budgets) else None
                    bar = Progress(total, description="sweep")
                bar.update({"epoch": sum(v.get("epoch") or 0 for v in variants)})
                over = sum(v["status"] in ENDED for v in variants)
                if over != finished:
                    bar.status(f"{over}/{len(variants)} done")
                    finished = over
            if all(v["status"] in ENDED for v in variants):
                return info
            time.sleep(POLL_SECONDS)
    finally:
        if bar is not None:
            bar.close()


def _ask(sweep: Sweep) -> str:
    """'pause', 'stop' or 'leave'; 'pause' when stdin is not a terminal (nobody to ask)."""
    if not sys.stdin or not sys.stdin.isatty():
        return "pause"
    choices = {"p": "pause", "s": "stop", "l": "leave", "": "pause"}
    while True:
        try:
            answer = input(f"\nSweep {sweep.id}: [p]ause (default), [s]top, or [l]eave it "
                           "training? ").strip().lower()
        except (EOFError, KeyboardInterrupt):
            return "pause"
        if answer[:1] in choices:
            return choices[answer[:1]]

