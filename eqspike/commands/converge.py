"""``eqspike converge``: the convergence study of spec section 6 (paper Figure 2)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

NAME = "converge"
HELP = "Convergence of the spiking dynamics to the continuous fixed point (paper Figure 2)."


def _nonneg_int(text):
    from ._common import nonneg_int
    return nonneg_int(text)


def add_arguments(p):
    p.add_argument("--runs", type=int, default=20, help="independent runs (fresh network each; default 20)")
    p.add_argument("--samples", type=int, default=20, help="samples per run (default 20)")
    p.add_argument("--steps", type=int, default=500, help="steps per run, nudge from the midpoint (default 500)")
    p.add_argument("--config", help="fixed-point config JSON whose formats the fixed curve uses "
                                    "(layers and schedules are the study's); default: the shipped default")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="first run's seed; run i uses seed+i")
    p.add_argument("--plot", default="out/convergence.png", help="PNG path (default out/convergence.png)")
    p.add_argument("--json", help="write per-curve mean_error and objective to this path")
    p.add_argument("--no-resume", action="store_true",
                   help="rerun runs already saved beside the plot (PLOT stem + .runs/; default: a rerun of the "
                        "same study reuses them)")
    from ._executor import add_executor_arguments
    add_executor_arguments(p, "runs (one BLAS thread each)")


def run(args) -> int:
    from golden_model.config import EqSpikeConfig
    from experiments.convergence import ConvergenceStudy, run_study
    from experiments.plots import convergence_plot

    from ..cli import CLIError
    from ._common import check_output_file, write_json
    from ._executor import executor_from

    for name in ("runs", "samples"):
        if getattr(args, name) < 1:
            raise CLIError(f"--{name} must be >= 1, not {getattr(args, name)}")
    executor = executor_from(args)
    if not 4 <= args.steps <= 1 << 16 or args.steps % 2:
        raise CLIError(f"--steps must be an even number in 4..65536, not {args.steps}")
    check_output_file(args.plot, "--plot")
    check_output_file(args.json, "--json")
    base = EqSpikeConfig.load(args.config) if args.config else None
    study = ConvergenceStudy(samples=args.samples, n_steps=args.steps, n_free=args.steps // 2, config=base)
    t0 = time.time()
    plot = Path(args.plot)
    try:
        per_curve = run_study(study, range(args.seed, args.seed + args.runs), executor,
                              results_dir=plot.with_name(plot.stem + ".runs"), resume=not args.no_resume)
    except RuntimeError as e:       # failed runs: the finished ones are kept for a rerun
        print(f"eqspike converge: {e}", file=sys.stderr)
        return 1
    seconds = time.time() - t0

    i_free, i_end = study.n_free - 1, study.n_steps - 1
    result = {}
    print(f"Convergence study: {'-'.join(map(str, study.layers))} net, {args.runs} runs x "
          f"{args.samples} samples, {study.n_steps} steps (nudged from step {study.n_free}), {seconds:.1f} s "
          f"on {executor.describe()}")
    print(f"{'curve':<24} {'t=' + str(i_free):>10} {'t=' + str(i_end):>10} {'objective':>10}")
    for name, runs in per_curve.items():
        mean = np.mean(runs, axis=0)
        obj = study.objective(mean)
        result[name] = {"mean_error": mean.tolist(), "std_error": np.std(runs, axis=0).tolist(),
                        "objective": obj}
        print(f"{name:<24} {mean[i_free]:>10.5f} {mean[i_end]:>10.5f} {obj:>10.5f}")
    best = min((n for n in result if not n.startswith("fixed")), key=lambda n: result[n]["objective"])
    print(f"best float objective: {best}")
    convergence_plot(per_curve, args.plot, study.n_free,
                     f"Convergence to the continuous fixed point ({args.runs} runs, mean $\\pm$ std)")
    print(f"plot written to {args.plot}")
    if args.json:
        write_json(args.json, result)
        print(f"json written to {args.json}")
    return 0
