"""Learning-format sweep: on-chip (integer, minibatch-1) training accuracy versus the width of
the learning weight format and the rounding of the updates.

Each variant is :func:`golden_model.config.learning_config` with ``extra_frac = width -
weight width`` and one rounding mode. It trains from the same quantised Glorot start for the
same samples and epochs (:class:`~golden_model.onchip.OnChipLearner`), then measures test
accuracy (free-phase readout of the inference weights ``W >> extra_frac``). Variants are tasks
of a :class:`runtime.executor.Executor` (local Ray, a cluster, or in this process); every
variant starts from the same seed, so results do not depend on where or in which order they run.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from golden_model.config import ConfigError, EqSpikeConfig
from golden_model.float_model import glorot_params
from golden_model.onchip import OnChipLearner
from runtime.executor import Executor, map_rows, source_digest

__all__ = ["learn_variants", "run_learn_sweep", "cheapest_learning"]


def learn_variants(base: EqSpikeConfig, widths, roundings=("stochastic", "nearest")) -> list:
    """``[(width, rounding, config), ...]``: ``base`` (with a learning section) per learning width
    (bits of every matrix's learning format) and rounding."""
    if base.learning is None:
        raise ConfigError("the base config needs a 'learning' section")
    out = []
    for width in widths:
        extra = [int(width) - f.width for f in base.weights]
        if len(set(extra)) != 1 or not 0 <= extra[0] <= 16:
            raise ConfigError(f"learning width {width} must be 0..16 bits wider than every weight format "
                              f"({', '.join(str(f.width) for f in base.weights)} bits)")
        for rounding in roundings:
            lrn = dataclasses.replace(base.learning, extra_frac=extra[0], rounding=rounding)
            out.append((int(width), rounding, base.replace(learning=lrn)))
    return out


def _run_variant(job, shared):
    width, rounding, cfg = job
    x, y, xt, yt, epochs, seed = (shared[k] for k in ("x", "y", "xt", "yt", "epochs", "seed"))
    t0 = time.perf_counter()
    ln = OnChipLearner.from_float(cfg, glorot_params(cfg.layers, np.random.default_rng(seed)))
    xc, yc, xtc = ln.encode(x), ln.encode(np.eye(cfg.layers[-1])[y]), ln.encode(xt)
    history = []
    for _ in range(epochs):
        for i in range(len(xc)):
            ln.train_sample(xc[i], yc[i])
        history.append(float(np.mean(ln.predict(xtc) == yt)))
    return {"width": width, "rounding": rounding, "test_accuracy": history[-1],
            "history": " ".join(f"{a:.4f}" for a in history),
            "learn_format": cfg.learn_format(0).describe(), "saturations": ln.saturations,
            "seconds": round(time.perf_counter() - t0, 1)}


def run_learn_sweep(variants: list, x, y, x_test, y_test, epochs: int, seed: int = 0,
                    executor: Executor | None = None, progress=None, results_dir=None,
                    resume: bool = True) -> list:
    """Train every variant, one task each on ``executor`` (default: a local Ray on every CPU).

    Rows in variant order; a variant whose task failed gives ``{"width", "rounding", "error"}``.
    ``progress(row)`` is called as rows finish. ``results_dir``: rows saved as they finish and
    reused by a rerun with the same inputs and code (``resume``).
    """
    shared = dict(x=np.asarray(x), y=np.asarray(y), xt=np.asarray(x_test), yt=np.asarray(y_test),
                  epochs=int(epochs), seed=int(seed))
    root = Path(__file__).resolve().parents[1]
    return map_rows(executor, _run_variant, variants, error_row=lambda v: {"width": v[0], "rounding": v[1]},
                    progress=progress, keys=[f"{w}-{r}" for w, r, _ in variants], shared=shared,
                    results_dir=results_dir, resume=resume, desc="learn-sweep", unit="variant",
                    fingerprint=source_digest(root / "golden_model", root / "experiments" / "learn_sweep.py"))


def cheapest_learning(rows: list, tolerance: float = 0.01) -> dict | None:
    """The narrowest (width, rounding) row within ``tolerance`` of the best accuracy."""
    rows = [r for r in rows if "error" not in r]
    if not rows:
        return None
    best = max(r["test_accuracy"] for r in rows)
    ok = [r for r in rows if r["test_accuracy"] >= best - tolerance]
    return min(ok, key=lambda r: (r["width"], r["rounding"] != "stochastic"))
