"""``eqspike learn-sweep``: on-chip training accuracy versus learning-weight width and rounding."""

from __future__ import annotations

import time
from pathlib import Path

NAME = "learn-sweep"
HELP = ("on-chip (integer, minibatch-1) training accuracy vs learning-weight width and "
        "stochastic/nearest rounding; writes CSV, markdown table and PNG")


def add_arguments(p) -> None:
    from ._common import add_data_arguments, int_at_least, nonneg_int, positive_int
    add_data_arguments(p)
    p.add_argument("--widths", default="8,10,12,14,16",
                   help="learning-weight widths in bits (default 8,10,12,14,16; the inference width is "
                        "the config's, 8)")
    p.add_argument("--roundings", default="stochastic,nearest", help="default stochastic,nearest")
    p.add_argument("--epochs", type=positive_int, default=3, help="training epochs per variant (default 3)")
    p.add_argument("--lr", default="0.1,0.05",
                   help="paper-equivalent rates at minibatch 20, one per matrix (default 0.1,0.05)")
    p.add_argument("--config", default=None, help="base config JSON with a learning section "
                                                  "(default: learning_config for the data set)")
    p.add_argument("--hidden", type=int_at_least(1, 1 << 20), default=100, help="hidden units (default 100)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="Glorot initialisation seed (default 0)")
    p.add_argument("--out", default="out/learn-sweep",
                   help="output folder (default out/learn-sweep); each variant's result is kept in OUT/points "
                        "as it finishes")
    from ._executor import add_executor_arguments, add_resume_argument
    add_resume_argument(p, "OUT/points")
    add_executor_arguments(p, "variants")


def run(args) -> int:
    from eqspike.cli import CLIError
    from golden_model.config import EqSpikeConfig, learning_config
    from experiments.learn_sweep import cheapest_learning, learn_variants, run_learn_sweep

    from runtime.progress import write

    from ._common import check_output_dir, load_data, parse_rates, write_rows_csv
    from ._executor import executor_from
    from .sweep import _int_list

    check_output_dir(args.out, "--out")
    executor = executor_from(args)
    data = load_data(args)
    if args.epochs < 1:
        raise CLIError(f"--epochs must be >= 1, not {args.epochs}")
    roundings = [r for r in args.roundings.split(",") if r]
    bad = [r for r in roundings if r not in ("stochastic", "nearest")]
    if bad or not roundings:
        raise CLIError(f"--roundings must be stochastic and/or nearest, not {args.roundings!r}")
    layers = (data.n_inputs, args.hidden, data.n_classes)
    if args.config:
        base = EqSpikeConfig.load(args.config)
        if base.layers[0] != data.n_inputs:
            raise CLIError(f"config has {base.layers[0]} inputs but {data.name} has {data.n_inputs}")
    else:
        base = learning_config(layers, parse_rates(args.lr, "--lr"))
    variants = learn_variants(base, _int_list(args.widths, "--widths"), roundings)
    print(f"{data.name}: {len(data.x_train)} train / {len(data.x_test)} test samples, "
          f"{'-'.join(map(str, base.layers))}, {args.epochs} epochs per variant, {len(variants)} variants on "
          f"{executor.describe()}; "
          f"inference weights {', '.join(f.describe() for f in base.weights)}")
    print(f"{'width':>5}  {'rounding':<10}  {'format':<8}  {'test acc':>8}  per epoch")
    t0 = time.perf_counter()

    def show(r):
        if "error" in r:
            write(f"{r['width']:>5}  {r['rounding']:<10}  FAILED: {r['error']}")
            return
        write(f"{r['width']:>5}  {r['rounding']:<10}  {r['learn_format']:<8}  {100 * r['test_accuracy']:>7.2f}%  "
              f"{r['history']}  ({r['saturations']} saturations, {r['seconds']} s)")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = run_learn_sweep(variants, data.x_train, data.y_train, data.x_test, data.y_test, args.epochs,
                           args.seed, executor, show, results_dir=out / "points", resume=not args.no_resume)
    failed = write_rows_csv(out / "learn_sweep.csv", rows, ["width", "rounding"])
    widths = sorted({r["width"] for r in rows})
    lines = ["| learning width | " + " | ".join(roundings) + " |", "|---" * (len(roundings) + 1) + "|"]
    for wd in widths:
        cells = [next(("failed" if "error" in r else f"{100 * r['test_accuracy']:.2f}%" for r in rows
                       if r["width"] == wd and r["rounding"] == rd), "-") for rd in roundings]
        lines.append(f"| {wd} | " + " | ".join(cells) + " |")
    (out / "learn_sweep.md").write_text("\n".join(lines) + "\n")
    from experiments.training_plots import learn_sweep_plot
    learn_sweep_plot([r for r in rows if "error" not in r], out / "learn_sweep.png",
                     f"{data.name} {'-'.join(map(str, base.layers))}: on-chip training, {args.epochs} epochs")
    best = cheapest_learning(rows)
    print("\n".join(lines))
    if best is not None:
        print(f"cheapest learning format within 1 point of the best: {best['width']} bits, {best['rounding']} "
              f"rounding ({100 * best['test_accuracy']:.2f}%)")
    print(f"{time.perf_counter() - t0:.1f} s; wrote {out}/learn_sweep.csv, .md and .png")
    for r in failed:
        print(f"FAILED: {r['width']} bits {r['rounding']}: {r['error']}")
    return 1 if failed else 0
