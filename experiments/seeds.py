"""Multi-seed training: one recipe trained with seeds S0..Sn-1, per-seed accuracies, mean, min, max.

Each seed is one task of a :class:`runtime.executor.Executor` that runs the single-run training
function (``eqspike train``'s, passed in by the caller) with that seed and its own output
folder ``OUT/seed-S`` (its printed lines in ``OUT/seed-S/train.log``). Everything random in a
run derives from its seed (experiments.training) and each task limits BLAS to one thread, so
seed S gives exactly the accuracies of a single run with ``--seed S``, wherever it runs.
"""

from __future__ import annotations

import argparse
import copy
import json
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np

from runtime.executor import Executor, source_digest

__all__ = ["train_seed", "run_seeds", "summarise", "seeds_table", "METRICS"]

#: Per-seed figures reported (from the run's metrics.json).
METRICS = ("test_accuracy", "train_accuracy")


def train_seed(seed: int, shared: dict) -> dict:
    """One seed (an executor task): ``shared["train"](args)`` with ``args.seed = seed`` and
    ``args.out = OUT/seed-S``; returns the seed's accuracies, epochs and seconds."""
    args = copy.copy(shared["args"])
    out = Path(shared["out"]) / f"seed-{seed}"
    out.mkdir(parents=True, exist_ok=True)
    args.seed, args.out, args.json, args.no_progress, args.seeds = int(seed), str(out), None, True, None
    with open(out / "train.log", "w") as log, redirect_stdout(log):
        rc = shared["train"](args)
    if rc:
        raise RuntimeError(f"training seed {seed} exited with status {rc}; see {out / 'train.log'}")
    m = json.loads((out / "metrics.json").read_text())
    row = {"seed": int(seed)}
    row.update({k: m.get(k) for k in METRICS})
    row.update({"epochs": m.get("epochs"), "seconds": round(float(m.get("seconds", 0.0)), 1), "out": str(out)})
    return row


def run_seeds(train, args: argparse.Namespace, seeds, out, executor: Executor | None = None,
              resume: bool = True, progress=None) -> list:
    """Train ``seeds`` (one task each); rows in seed order, a failed seed as ``{"seed", "error"}``.

    ``train(args) -> exit status`` is the single-run training function; ``args`` its parsed
    options (copied per seed). Finished seeds are saved in ``OUT/seeds`` and reused by a rerun
    of the same recipe and code (``resume``). ``progress(row)`` is called as seeds finish.
    """
    seeds = [int(s) for s in seeds]
    args = copy.copy(args)
    for k in ("seeds", "jobs", "address", "json", "no_progress", "quiet"):   # not part of the recipe
        if hasattr(args, k):
            setattr(args, k, None)
    shared = {"train": train, "args": args, "out": str(out)}
    rows = [None] * len(seeds)

    def done(i, o):
        rows[i] = o.value if o.ok else {"seed": seeds[i], "error": o.error}
        if progress:
            progress(rows[i])

    root = Path(__file__).resolve().parents[1]
    with (executor or Executor()) as ex:
        ex.map(train_seed, seeds, keys=[f"seed-{s}" for s in seeds], shared=shared, results_dir=Path(out) / "seeds",
               resume=resume, desc="seeds", unit="run", on_result=done,
               fingerprint=source_digest(root / "golden_model", root / "experiments"))
    return rows


def summarise(rows: list) -> dict:
    """``{metric: {"mean", "min", "max", "std"}}`` over the seeds that finished, plus their count."""
    ok = [r for r in rows if "error" not in r]
    out = {"seeds": [r["seed"] for r in ok], "failed": [r["seed"] for r in rows if "error" in r]}
    for k in METRICS:
        vals = np.array([r[k] for r in ok if r.get(k) is not None], dtype=float)
        if len(vals):
            out[k] = {"mean": float(vals.mean()), "min": float(vals.min()), "max": float(vals.max()),
                      "std": float(vals.std())}
    return out


def seeds_table(rows: list, summary: dict) -> str:
    """Markdown table: one line per seed, then mean, min and max."""
    pct = lambda v: "-" if v is None else f"{100 * v:.2f}%"
    lines = ["| seed | test accuracy | train accuracy | epochs | seconds |", "|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['seed']} | failed: {r['error']} | | | |")
        else:
            lines.append(f"| {r['seed']} | {pct(r['test_accuracy'])} | {pct(r['train_accuracy'])} | {r['epochs']} | "
                         f"{r['seconds']} |")
    for stat in ("mean", "min", "max"):
        lines.append(f"| {stat} | " + " | ".join(pct(summary.get(k, {}).get(stat)) for k in METRICS) + " | | |")
    return "\n".join(lines)
