"""``eqspike sweep``: fixed-point accuracy of trained weights versus weight bits and state bits."""

from __future__ import annotations

import time
from pathlib import Path

NAME = "sweep"
HELP = ("accuracy of trained weights vs weight bits (3..12) and state fraction bits, "
        "one Ray task per variant (local, or a cluster with --address); writes a CSV and a PNG")


def _int_list(text: str, what: str, hi: int = 64) -> list:
    """Integers like ``3-12`` or ``4,6,8``, each in ``1..hi`` (bit counts: at most 64)."""
    out = []
    try:
        for part in str(text).split(","):
            if "-" in part:
                a, b = part.split("-")
                out += list(range(max(int(a), 0), min(int(b), hi + 1) + 1))
            elif part:
                out.append(int(part))
    except ValueError:
        raise ValueError(f"{what} must be integers like 3-12 or 4,6,8, not {text!r}") from None
    if not out or min(out) < 1 or max(out) > hi:
        raise ValueError(f"{what} must be integers in 1..{hi}, not {text!r}")
    return out


def add_arguments(p) -> None:
    from ._common import add_data_arguments, positive_int
    p.add_argument("--weights", required=True, help="output folder of 'eqspike train' or a .npz")
    add_data_arguments(p)
    p.add_argument("--config", default=None, help="base fixed-point config JSON (default: the folder's)")
    p.add_argument("--weight-bits", default="3-12", help="weight widths to try (default 3-12)")
    p.add_argument("--state-fracs", default="4,5,6,7,8,10,12,14,16",
                   help="fraction bits of s, v, x, a, phi to try (default 4,5,6,7,8,10,12,14,16)")
    p.add_argument("--batch", type=positive_int, default=500)
    p.add_argument("--out", default=None, help="folder for sweep.csv and sweep.png (default WEIGHTS/sweep); "
                                               "each variant's result is kept in OUT/points as it finishes")
    from ._executor import add_executor_arguments, add_resume_argument
    add_resume_argument(p, "OUT/points", "the same weights and samples")
    add_executor_arguments(p, "variants")


def run(args) -> int:
    import numpy as np

    from golden_model.float_model import Dynamics
    from experiments.sweep import run_sweep, smallest_within, sweep_variants
    from experiments.training import predict
    from runtime.progress import write

    from ._common import check_output_dir, write_rows_csv
    from ._executor import executor_from
    from .compare import prepare

    check_output_dir(args.out, "--out")
    executor = executor_from(args)
    ckpt, data, cfg, dyn = prepare(args)
    wb = _int_list(args.weight_bits, "--weight-bits")
    sf = _int_list(args.state_fracs, "--state-fracs")
    t0 = time.perf_counter()
    x, y = data.x_test, data.y_test
    variants = sweep_variants(cfg, ckpt.params, wb, sf)
    hw_pred = predict(ckpt.params, Dynamics.from_config(cfg), x)
    ref = {"binary_hw": float(np.mean(hw_pred == y))}
    if dyn.mode == "binary":
        ref["binary (training dynamics)"] = float(np.mean(predict(ckpt.params, dyn, x) == y))
    print(f"{data.name}: {len(x)} test samples, {len(variants)} variants on {executor.describe()}; float binary "
          f"with the config's dynamics {100 * ref['binary_hw']:.2f}%")
    print(f"{'sweep':<12}{'bits':>5}  {'accuracy':>9}  {'agreement':>9}  formats")

    def show(r):
        if "error" in r:
            write(f"{r['sweep']:<12}{r['bits']:>5}  FAILED: {r['error']}")
            return
        write(f"{r['sweep']:<12}{r['bits']:>5}  {100 * r['fixed_accuracy']:>8.2f}%  {100 * r['agreement']:>8.2f}%  "
              f"W {r['weight_formats']}, s {r['state_format']}, {r['weights_clipped']} weights clipped, "
              f"{r['overflows']} overflows")

    out = Path(args.out) if args.out else ckpt.path / "sweep"
    out.mkdir(parents=True, exist_ok=True)
    rows = run_sweep(ckpt.params, x, y, cfg, hw_pred, variants, executor=executor, batch=args.batch,
                     progress=show, results_dir=out / "points", resume=not args.no_resume)
    failed = write_rows_csv(out / "sweep.csv", rows, ["sweep", "bits"])
    from experiments.training_plots import sweep_plot
    sweep_plot([r for r in rows if "error" not in r], out / "sweep.png", ref, f"{data.name}: fixed point vs formats ({len(x)} test samples)",
               defaults={"weight_bits": cfg.weights[0].width, "state_frac": cfg.s.frac})
    for kind in ("weight_bits", "state_frac"):
        b = smallest_within(rows, kind, ref["binary_hw"])
        print(f"smallest {kind} within 0.5 point of binary_hw: {b if b is not None else 'none'}")
    print(f"{time.perf_counter() - t0:.1f} s; wrote {out / 'sweep.csv'} and {out / 'sweep.png'}")
    for r in failed:
        print(f"FAILED: {r['sweep']} {r['bits']}: {r['error']}")
    return 1 if failed else 0
