"""Per-epoch training time of binary EqProp on Fashion-MNIST (784-500-10, OSA, 100/50 steps).

Times ``--minibatches`` minibatches of 20 (the first images of the training set, the real
workload: free phase, nudged phase and update) and extrapolates to one 60,000-image epoch.
Issue 6 asks for under 3 minutes per epoch on 2 cores.

    .venv/bin/python benchmarks/bench_training.py [--minibatches 100] [--threads 1|2] [--mode binary]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minibatches", type=int, default=100)
    p.add_argument("--threads", type=int, default=None, help="BLAS threads (default: library default)")
    p.add_argument("--mode", choices=("binary", "continuous"), default="binary")
    p.add_argument("--float64", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.threads:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)

    from experiments.data import load_dataset
    from golden_model.float_model import Dynamics
    from experiments.training import Trainer, TrainSettings

    try:
        data = load_dataset("fashion-mnist")
        x, y, source = data.x_train, data.y_train, "fashion-mnist"
    except FileNotFoundError:
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 1, (20 * args.minibatches, 784)).astype(np.float32) * (rng.random((20 * args.minibatches, 784)) < 0.5)
        y, source = rng.integers(0, 10, len(x)), "synthetic (fashion-mnist not installed)"
    dyn = Dynamics() if args.mode == "binary" else Dynamics.continuous()
    s = TrainSettings(layers=(784, 500, 10), mode=args.mode, dynamics=dyn, lr=(0.05, 0.025),
                      dtype=np.float64 if args.float64 else np.float32)
    tr = Trainer(s)
    n = 20 * args.minibatches
    eye = np.eye(10, dtype=np.float32)
    tr.step(x[:20], eye[y[:20]])                       # warm-up (allocations, BLAS init)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(20, n + 20, 20):
        tr.step(x[i:i + 20], eye[y[i:i + 20]])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    steps = args.minibatches * (dyn.n_free + dyn.n_nudged)
    epoch = wall * 60000 / n
    load = os.getloadavg()[0]
    res = {"mode": args.mode, "data": source, "minibatches": args.minibatches, "threads": args.threads,
           "dtype": "float64" if args.float64 else "float32", "seconds": wall, "cpu_seconds": cpu,
           "ms_per_step": 1e3 * wall / steps, "epoch_seconds": epoch,
           "epoch_cpu_seconds": cpu * 60000 / n, "load_average": load}
    print(f"{args.mode} 784-500-10, {dyn.n_free}/{dyn.n_nudged} steps, minibatch 20, {res['dtype']}, "
          f"BLAS threads {args.threads or 'default'}: {1e3 * wall / steps:.3f} ms per network step, "
          f"{1e3 * cpu / steps:.3f} ms CPU; one 60,000-image epoch = {epoch:.0f} s wall "
          f"({epoch / 60:.2f} min), {cpu * 60000 / n:.0f} s CPU (load average {load:.1f} on "
          f"{os.cpu_count()} cores: on a busy machine the CPU time is the better estimate)")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
