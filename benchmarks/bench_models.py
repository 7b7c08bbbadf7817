"""Neuron updates per second: float binary model vs bit-accurate fixed-point model.

784-500-10 network, batch 20, the default config's dynamics (constant eps, scheduled lambda,
sigma-delta) in both; the float model also with the paper's OSA dynamics. One process, one run,
so the ratio is measured under the same machine load. Run: ``make bench`` or
``.venv/bin/python benchmarks/bench_models.py [--steps N]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from golden_model.config import default_config
from golden_model.fixed_model import FixedModel, fit_weight_formats
from golden_model.float_model import Dynamics, FloatModel, glorot_params
from threadpoolctl import threadpool_limits


def _rate(model, st, steps, tick_args, n_neurons, batch, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        s = st()
        t0 = time.perf_counter()
        for _ in range(steps):
            model.tick(s, *tick_args)
        best = min(best, time.perf_counter() - t0)
    return n_neurons * batch * steps / best, best / steps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1: one core each)")
    args = ap.parse_args(argv)
    threadpool_limits(args.threads)
    layers = (784, 500, 10)
    rng = np.random.default_rng(0)
    params = glorot_params(layers, rng)
    cfg = fit_weight_formats(default_config(layers).replace(n_free=args.steps, n_nudged=0), params)
    x = rng.uniform(0, 1, (args.batch, layers[0]))
    n = sum(layers[1:])
    rows = []
    for name, dtype, dyn in [("float64 binary (config dynamics)", np.float64, Dynamics.from_config(cfg)),
                             ("float32 binary (config dynamics)", np.float32, Dynamics.from_config(cfg)),
                             ("float32 binary (OSA, lambda 0.275)", np.float32,
                              Dynamics(n_free=args.steps, n_nudged=0))]:
        m = FloatModel(params, dyn, dtype=dtype)
        rows.append((name, *_rate(m, lambda: m.reset(x), args.steps, (0.0,), n, args.batch)))
    fm = FixedModel.from_float(cfg, params)
    xc = fm.encode_inputs(x)
    rows.append(("fixed point (default config)", *_rate(fm, lambda: fm.reset(xc), args.steps, (0,), n, args.batch)))
    print(f"784-500-10, batch {args.batch}, {args.steps} steps, best of 3, {args.threads} BLAS thread(s)")
    print(f"{'model':<36} {'neuron updates/s':>18} {'ms/step':>9}")
    for name, rate, sec in rows:
        print(f"{name:<36} {rate:>18,.0f} {sec * 1e3:>9.3f}")
    ref = rows[0][1]
    print(f"ratio fixed / float64 binary: {rows[-1][1] / ref:.2f}x; "
          f"fixed / float32 binary: {rows[-1][1] / rows[1][1]:.2f}x (target >= 0.5x)")


if __name__ == "__main__":
    main()
