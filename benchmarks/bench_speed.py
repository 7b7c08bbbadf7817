"""Model speed on the CPU: today's code against a reference checkout, in one run (issue 16).

The paper's network 784-500-10, float32, OSA (nu_bar 0.0346) + lambda 0.275, 100/50 steps:

* ``binary_train``: one binary training step (free, nudged phase and update), minibatch 20;
* ``binary_infer``: binary inference, 100 steps, minibatch 20;
* ``continuous_train``: one continuous training step (20/4 steps), minibatch 20;
* ``onchip_sample``: one on-chip training sample (``--mode onchip``, integer, minibatch 1);
* ``fixed_minibatch``: one fixed-point training step (``--mode fixed``, the default config's
  dynamics), minibatch 20.

Inputs are the first Fashion-MNIST training images when the data set is installed (real spike
rates), otherwise uniform noise on half the pixels. Each figure is the median over repeated
calls after a warm-up call, in CPU time (``time.process_time``, every thread of the process) and
wall time, at each BLAS thread count (threadpoolctl); ``best`` is the ratio of the fastest
calls' CPU times, the least disturbed by other jobs. CPU speed differs between machines of the
same kind by up to 2x, so the figures that matter are the RATIOS: the reference and today's code
run in alternating subprocesses of this one run (``--rounds`` times each; the best round counts,
the least disturbed by other load). The reference is a checkout of the code before the speed
work (``REFERENCE_COMMIT``), extracted with ``git archive`` unless ``--reference DIR`` names one.

    .venv/bin/python benchmarks/bench_speed.py [--threads 1 2] [--rounds 2] [--json out/speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: main before issue 16's speed work (and before the continuous-dynamics correction of issue 15).
REFERENCE_COMMIT = "21efcd10877f9c4edd98208f31fd7e144fabb303"
FIGURES = ("binary_train", "binary_infer", "continuous_train", "onchip_sample", "fixed_minibatch")
UNITS = {"binary_train": "ms per minibatch", "binary_infer": "ms per minibatch (100 steps)",
         "continuous_train": "ms per minibatch", "onchip_sample": "ms per sample",
         "fixed_minibatch": "ms per minibatch"}
#: issue 16's targets: CPU time at 1 thread, reference / today.
TARGETS = {"binary_train": 1.5, "binary_infer": 1.5, "continuous_train": 1.2, "onchip_sample": 5.0}
PACKAGES = ("golden_model", "experiments", "runtime")


# -- worker: runs inside a subprocess with one source tree first on sys.path ----------------------
def _data(n: int):
    import numpy as np
    try:
        from experiments.data import load_dataset
        d = load_dataset("fashion-mnist")
        return np.asarray(d.x_train[:n], dtype=np.float32), np.asarray(d.y_train[:n]), "fashion-mnist"
    except Exception:       # noqa: BLE001 - any failure: synthetic data of the same shape
        rng = np.random.default_rng(0)
        x = (rng.uniform(0, 1, (n, 784)) * (rng.random((n, 784)) < 0.5)).astype(np.float32)
        return x, rng.integers(0, 10, n), "synthetic"


def _measure(fn, min_calls: int, min_seconds: float) -> dict:
    """Median CPU and wall seconds per call of ``fn(i)`` after one warm-up call."""
    import numpy as np
    fn(0)
    cpu, wall = [], []
    i = 1
    start = time.perf_counter()
    while len(cpu) < min_calls or time.perf_counter() - start < min_seconds:
        c, w = time.process_time(), time.perf_counter()
        fn(i)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
        i += 1
    return {"cpu_ms": 1e3 * float(np.median(cpu)), "wall_ms": 1e3 * float(np.median(wall)),
            "cpu_min_ms": 1e3 * float(np.min(cpu)), "calls": len(cpu)}


def _bench_one(name: str, x, y, scale: float) -> dict:
    import numpy as np
    from experiments.training import Trainer, TrainSettings
    from golden_model.float_model import Dynamics, FloatModel
    eye = np.eye(10, dtype=np.float32)
    layers = (784, 500, 10)
    if name == "onchip_sample":
        tr = Trainer(TrainSettings(layers=layers, mode="onchip", batch=1, seed=0))
        return _measure(lambda i: tr.step(x[i % len(x)][None], eye[y[i % len(x)]][None]), 5, 1.0 * scale)
    if name == "binary_infer":
        tr = Trainer(TrainSettings(layers=layers, mode="binary", dynamics=Dynamics(n_free=100, n_nudged=50), seed=0))
        model = FloatModel(tr.params, Dynamics(n_free=100, n_nudged=50), dtype=np.float32)
        return _measure(lambda i: model.predict(x[20 * (i % 10):20 * (i % 10) + 20]), 5, 1.0 * scale)
    mode, dyn = {"binary_train": ("binary", Dynamics(n_free=100, n_nudged=50)),
                 "continuous_train": ("continuous", Dynamics.continuous(20, 4)),
                 "fixed_minibatch": ("fixed", None)}[name]
    kw = {} if dyn is None else {"dynamics": dyn}
    tr = Trainer(TrainSettings(layers=layers, mode=mode, lr=(0.1, 0.05), batch=20, seed=0, **kw))
    return _measure(lambda i: tr.step(x[20 * (i % 10):20 * (i % 10) + 20], eye[y[20 * (i % 10):20 * (i % 10) + 20]]),
                    5, 1.0 * scale)


def worker(root: str, threads: int, figures: list, scale: float) -> None:
    """Measure ``figures`` with the packages of ``root`` and print one JSON object."""
    sys.path.insert(0, root)
    from threadpoolctl import threadpool_limits
    threadpool_limits(threads)
    import golden_model
    if not Path(golden_model.__file__).resolve().is_relative_to(Path(root).resolve()):
        raise SystemExit(f"golden_model imported from {golden_model.__file__}, not from {root}")
    x, y, source = _data(200)
    out = {"data": source}
    for name in figures:
        out[name] = _bench_one(name, x, y, scale)
    print(json.dumps(out))


# -- driver ----------------------------------------------------------------------------------------
def reference_tree(arg: str | None, keep: list) -> str:
    """A directory holding the reference packages: ``arg``, or REFERENCE_COMMIT extracted."""
    if arg:
        if not all((Path(arg) / p).is_dir() for p in PACKAGES[:2]):
            raise SystemExit(f"--reference {arg}: needs the folders {', '.join(PACKAGES)}")
        return arg
    tmp = tempfile.TemporaryDirectory(prefix="eqspike-ref-")
    keep.append(tmp)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", REFERENCE_COMMIT, *PACKAGES],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        raise SystemExit(f"cannot extract the reference commit {REFERENCE_COMMIT[:10]} "
                         f"({archive.stderr.decode().strip()}); pass --reference DIR")
    subprocess.run(["tar", "-x", "-C", tmp.name], input=archive.stdout, check=True)
    return tmp.name


def run_worker(root: str, threads: int, figures: list, scale: float) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", root, "--threads", str(threads),
           "--scale", str(scale), "--figures", *figures]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir(), check=False)
    if res.returncode != 0:
        raise SystemExit(f"worker for {root} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=2, help="alternating runs of each tree (the best counts)")
    p.add_argument("--figures", nargs="+", choices=FIGURES, default=list(FIGURES))
    p.add_argument("--reference", default=None, help="a checkout holding the reference packages")
    p.add_argument("--scale", type=float, default=1.0, help="seconds of calls per figure (at least 5 calls)")
    p.add_argument("--json", default=None)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.worker, args.threads[0], args.figures, args.scale)
        return 0
    keep = []
    trees = {"reference": reference_tree(args.reference, keep), "today": str(REPO)}
    best = {}
    for threads in args.threads:
        for r in range(args.rounds):
            for label, root in trees.items():
                print(f"  {threads} thread(s), round {r + 1}/{args.rounds}: {label} ...", file=sys.stderr, flush=True)
                res = run_worker(root, threads, args.figures, args.scale)
                best.setdefault("data", res["data"])
                for name in args.figures:
                    key = (threads, label, name)
                    cur = best.get(key)
                    best[key] = res[name] if cur is None else {
                        m: min(cur[m], res[name][m]) for m in ("cpu_ms", "wall_ms", "cpu_min_ms")}
    print(f"784-500-10, float32, OSA + lambda 0.275, 100/50 steps (continuous 20/4); data: {best['data']}; "
          f"reference {REFERENCE_COMMIT[:10] if not args.reference else args.reference}; best of {args.rounds} rounds, "
          f"median per call; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    head = (f"{'figure':<18}{'thr':>4}{'ref CPU':>10}{'CPU':>9}{'ratio':>7}{'ref wall':>10}{'wall':>9}{'ratio':>7}"
            f"{'best':>7}  unit / target")
    print(head)
    rows = []
    for threads in args.threads:
        for name in args.figures:
            ref, new = best[(threads, "reference", name)], best[(threads, "today", name)]
            rc, rw = ref["cpu_ms"] / new["cpu_ms"], ref["wall_ms"] / new["wall_ms"]
            rb = ref["cpu_min_ms"] / new["cpu_min_ms"]
            target = TARGETS.get(name) if threads == 1 else None
            mark = "" if target is None else f" / >= {target}x CPU: {'met' if rc >= target else 'MISSED'}"
            print(f"{name:<18}{threads:>4}{ref['cpu_ms']:>10.2f}{new['cpu_ms']:>9.2f}{rc:>6.2f}x"
                  f"{ref['wall_ms']:>10.2f}{new['wall_ms']:>9.2f}{rw:>6.2f}x{rb:>6.2f}x  {UNITS[name]}{mark}")
            rows.append({"figure": name, "threads": threads, "reference": ref, "today": new,
                         "cpu_ratio": rc, "wall_ratio": rw, "best_call_cpu_ratio": rb, "target": target})
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"data": best["data"], "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
