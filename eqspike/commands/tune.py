"""``eqspike tune``: hyper-parameter search of binary EqProp training recipes with Ray Tune (ASHA)."""

from __future__ import annotations

import shlex
from pathlib import Path

NAME = "tune"
HELP = ("search training recipes (learning rates, beta, decay, epochs, hidden width, OSA nu_bar, lambda) "
        "with Ray Tune and ASHA early stopping; prints the best recipe as an `eqspike train` command")


def add_arguments(p) -> None:
    from ._common import add_data_arguments, int_at_least, nonneg_int, positive_int
    from ._executor import add_executor_arguments
    add_data_arguments(p)
    p.add_argument("--trials", type=int, default=16, help="recipes to try (default 16)")
    p.add_argument("--metric", choices=("fixed", "float"), default="fixed",
                   help="test accuracy to maximise: fixed (the bit-accurate fixed-point model, default config, "
                        "weight fractions fitted; default) or float (the training dynamics)")
    p.add_argument("--epochs", default=None,
                   help="epoch counts to choose from, e.g. 3,5,8 (default: the data set's, 30 digits, 3 fashion-mnist); "
                        "the largest is ASHA's horizon")
    p.add_argument("--hidden", default=None, help="hidden widths to choose from, e.g. 300,500,800 (default: the data set's)")
    p.add_argument("--lr0", default=None, metavar="LO,HI",
                   help="range of the first matrix's learning rate, log-uniform (default: the data set's rate /3 .. x3)")
    p.add_argument("--beta", default="0.2,1.0", metavar="LO,HI", help="beta range (default 0.2,1.0)")
    p.add_argument("--nu-bar", default="0.015,0.08", metavar="LO,HI", help="OSA nu_bar range (default 0.015,0.08)")
    p.add_argument("--lam", default="0.1,0.5", metavar="LO,HI", help="lambda range (default 0.1,0.5)")
    p.add_argument("--lr-decay", default="0.6,1.0", metavar="LO,HI", help="per-epoch decay range (default 0.6,1.0)")
    p.add_argument("--free-steps", type=int_at_least(1, 1 << 16), default=None, help="free-phase steps of every trial (default: train's, 100)")
    p.add_argument("--nudged-steps", type=int_at_least(1, 1 << 16), default=None, help="nudged-phase steps (default: train's, 50)")
    p.add_argument("--grace", type=positive_int, default=1, help="ASHA: epochs before a trial can be stopped (default 1)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of the recipe sampling and of every trial's training")
    p.add_argument("--out", default=None, help="output folder (default out/tune-DATASET)")
    add_executor_arguments(p, "trials (one CPU each)")


def make_settings(argv, data):
    """``eqspike train``'s settings for ``argv`` (its parser and build_settings): what a trial trains."""
    import argparse

    from . import train
    p = argparse.ArgumentParser(prog="eqspike train", exit_on_error=False)
    train.add_arguments(p)
    args = p.parse_args(list(argv))
    args.dataset = args.dataset or data.name
    return train.build_settings(args, data)


def _range(text: str, what: str) -> tuple:
    from ._common import parse_floats
    v = parse_floats(text, what)
    if len(v) != 2 or not 0 < v[0] <= v[1]:
        raise ValueError(f"{what} must be LO,HI with 0 < LO <= HI, not {text!r}")
    return v


def _ints(text: str, what: str) -> tuple:
    try:
        v = tuple(int(t) for t in str(text).split(",") if t)
    except ValueError:
        v = ()
    if not v or min(v) < 1:
        raise ValueError(f"{what} must be positive integers like 3,5,8, not {text!r}")
    return v


def run(args) -> int:
    from experiments.tune import SearchSpace, run_search, trials_plot, trials_table

    from ._common import DATASET_DEFAULTS, check_output_dir, load_data, write_json
    from ._executor import executor_from

    if args.trials < 1:
        raise ValueError(f"--trials must be >= 1, not {args.trials}")
    if args.grace < 1:
        raise ValueError(f"--grace must be >= 1, not {args.grace}")
    check_output_dir(args.out, "--out")
    executor = executor_from(args)
    data = load_data(args)
    d = DATASET_DEFAULTS.get(data.name, DATASET_DEFAULTS["idx"])
    lr = d["lr"][0]
    space = SearchSpace(
        lr0=_range(args.lr0, "--lr0") if args.lr0 else (lr / 3, lr * 3),
        beta=_range(args.beta, "--beta"), nu_bar=_range(args.nu_bar, "--nu-bar"), lam=_range(args.lam, "--lam"),
        lr_decay=_range(args.lr_decay, "--lr-decay"),
        epochs=_ints(args.epochs, "--epochs") if args.epochs else (d["epochs"],),
        hidden=_ints(args.hidden, "--hidden") if args.hidden else tuple(d["hidden"]))
    base = ["--dataset", data.name, "--seed", str(args.seed)]
    for opt in ("data_dir", "n_train", "n_test", "free_steps", "nudged_steps"):
        if getattr(args, opt) is not None:
            base += [f"--{opt.replace('_', '-')}", str(getattr(args, opt))]
    make_settings(base + ["--layers", f"{data.n_inputs},{space.hidden[0]},{data.n_classes}"], data)  # bad options: now
    metric = f"{args.metric}_accuracy"
    out = Path(args.out or f"out/tune-{data.name}")
    print(f"{data.name}: {len(data.x_train)} train / {len(data.x_test)} test samples; {args.trials} trials on "
          f"{executor.describe()}, ASHA on {metric} (grace {args.grace} epoch(s), horizon {max(space.epochs)})")
    res = run_search(data, make_settings, space, out, args.trials, metric, base_argv=base, seed=args.seed,
                     grace=args.grace, executor=executor, quiet=args.quiet)
    rows = res["trials"]
    table = trials_table(rows, metric)
    (out / "trials.md").write_text(table + "\n")
    trials_plot(rows, out / "trials.png", metric, f"{data.name}: {len(rows)} trials, ASHA on {metric}")
    print(table)
    best = res["best"]
    if best is None:
        print("no trial finished")
        return 1
    cmd = "eqspike train " + " ".join(shlex.quote(a) for a in base + best["argv"])
    write_json(out / "best.json", {"command": cmd, "argv": base + best["argv"], **best})
    print(f"best recipe ({best['trial']}): fixed point {100 * best['fixed_accuracy']:.2f}%, float "
          f"{100 * best['float_accuracy']:.2f}% after {best['epochs_run']} epochs:\n  {cmd}")
    print(f"wrote {out / 'trials.md'}, {out / 'trials.png'}, {out / 'best.json'}, {out / 'tune.json'}")
    return 0
