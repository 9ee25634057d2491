"""Does a vmap family pay? (issue 17: CNN, recurrent and attention families.)

For the README's CNN on digits, the LSTM on sine and the attention job on recall
(examples/*.json, early stopping off, no epoch budget), K = 1, 8 and 30 jobs with different seeds
and learning rates: total steps/s of K solo Trainers stepped one after the other (today's time
slices) against one `VmapFamily` of the K, both including the epoch ends (evaluation), and
the ratio. The issue's bar for wiring a kind in: >= 1.3x at 8 members.
The LSTM cannot be vmapped; for it the bench times what a hand-written stacked LSTM step would
give against solo nn.LSTM steps (training steps only), to say whether writing one would pay.

    .venv/bin/python bench/vmap_family_bench.py [--steps 60] [--sizes 1,8,30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.config import Settings  # noqa: E402
from server.data.registry import DataRegistry  # noqa: E402
from server.spec.job import JobSpec  # noqa: E402
from server.train.trainer import Trainer  # noqa: E402
from server.train.vmap_family import VmapFamily, vmap_key  # noqa: E402

KINDS = {"cnn": "cnn-digits.json", "lstm": "lstm-sine.json", "attention": "attention-recall.json"}


def specs(example: str, k: int) -> list[JobSpec]:
    raw = json.loads((ROOT / "examples" / example).read_text())
    raw.pop("name", None)
    out = []
    for i in range(k):
        doc = json.loads(json.dumps(raw))
        training = doc["training"]
        training.pop("early_stopping", None)
        training["epochs"] = None
        training["seed"] = 100 + i
        training["optimizer"]["learning_rate"] *= 1 + 0.1 * (i % 3)
        out.append(JobSpec.model_validate(doc))
    return out


def rate(trainers: list, steps: int, family: bool) -> float:
    """Total steps/s of `trainers` over `steps` steps each (epoch ends included)."""
    if family:
        fam = VmapFamily(trainers)
        fam.train(2)  # warm-up
        start = time.perf_counter()
        fam.train(steps)
        wall = time.perf_counter() - start
        fam.release()
    else:
        for t in trainers:
            t.train_batches(2)
        start = time.perf_counter()
        for t in trainers:
            t.train_batches(steps)
        wall = time.perf_counter() - start
    return len(trainers) * steps / wall


def best(registry, made: list, steps: int, repeats: int) -> tuple[float, float]:
    """(solo loop, family) steps/s, the best of `repeats` interleaved runs of each (the
    machine may be shared: the best run is the one least disturbed)."""
    solo = [Trainer(s, registry.load(s.dataset)) for s in made]
    together = [Trainer(s, registry.load(s.dataset)) for s in made]
    alone, fam = 0.0, 0.0
    for _ in range(repeats):
        fam = max(fam, rate(together, steps, True))
        alone = max(alone, rate(solo, steps, False))
    return alone, fam


def lstm_estimate(k: int, steps: int) -> tuple[float, float]:
    """vmap cannot run nn.LSTM; what a hand-written stacked LSTM step would give: (steps/s of
    k solo nn.LSTM(1, 16) + Linear steps with Adam, one after the other; steps/s of the same
    k as one LSTM written out per time step with stacked weights (bmm), autograd and one
    Adam over the stacked parameters). Shapes of examples/lstm-sine.json (batch 32, time 20)."""
    torch.manual_seed(0)
    x, y = torch.randn(k, 32, 20, 1), torch.randn(k, 32, 1)
    solo = [torch.nn.ModuleDict({"rnn": torch.nn.LSTM(1, 16, batch_first=True),
                                 "out": torch.nn.Linear(16, 1)}) for _ in range(k)]
    optimizers = [torch.optim.Adam(m.parameters(), lr=0.01) for m in solo]

    def solo_step(i: int) -> None:
        _out, (h, _c) = solo[i]["rnn"](x[i])
        loss = torch.nn.functional.mse_loss(solo[i]["out"](h[-1]), y[i])
        optimizers[i].zero_grad()
        loss.backward()
        optimizers[i].step()

    w_ih = torch.randn(k, 64, 1).mul_(0.25).requires_grad_()
    w_hh = torch.randn(k, 64, 16).mul_(0.25).requires_grad_()
    bias = torch.zeros(k, 1, 64, requires_grad=True)
    w_out = torch.randn(k, 16, 1).mul_(0.25).requires_grad_()
    stacked = torch.optim.Adam([w_ih, w_hh, bias, w_out], lr=0.01)

    def stacked_step() -> None:
        h = torch.zeros(k, 32, 16)
        c = torch.zeros(k, 32, 16)
        for t in range(20):
            gates = torch.baddbmm(bias, x[:, :, t], w_ih.transpose(1, 2)) + torch.bmm(
                h, w_hh.transpose(1, 2))
            i, f, g, o = gates.chunk(4, -1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        loss = ((torch.bmm(h, w_out) - y) ** 2).mean((1, 2)).sum()
        stacked.zero_grad()
        loss.backward()
        stacked.step()

    rates = []
    for run in (lambda: [solo_step(i) for i in range(k)], stacked_step):
        run()
        start = time.perf_counter()
        for _ in range(steps):
            run()
        rates.append(k * steps / (time.perf_counter() - start))
    return rates[0], rates[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--sizes", default="1,8,30")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the engine: 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; steps {args.steps}")
    with tempfile.TemporaryDirectory() as tmp:
        registry = DataRegistry(Path(tmp), Settings(data_dir=Path(tmp)))
        for kind in args.kinds.split(","):
            for k in sizes:
                made = specs(KINDS[kind], k)
                probe = Trainer(made[0], registry.load(made[0].dataset))
                if vmap_key(probe) is None:
                    alone, stacked = lstm_estimate(k, args.steps)
                    print(f"{kind:9s} K={k:3d}: not a vmap family (torch.func.vmap has no "
                          "batching rule for aten::lstm); steps only, no evaluation: solo "
                          f"loop {alone:8.1f} steps/s, hand-written stacked LSTM "
                          f"{stacked:8.1f} steps/s, ratio {stacked / alone:5.2f}x", flush=True)
                    continue
                alone, fam = best(registry, made, args.steps, args.repeats)
                print(f"{kind:9s} K={k:3d}: solo loop {alone:8.1f} steps/s, "
                      f"vmap family {fam:8.1f} steps/s, ratio {fam / alone:5.2f}x", flush=True)

if __name__ == "__main__":
    main()
