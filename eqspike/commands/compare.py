"""``eqspike compare``: trained weights in float and fixed point, side by side, with plots."""

from __future__ import annotations

import time
from pathlib import Path

NAME = "compare"
HELP = ("compare trained weights in float (continuous, binary, binary with the config's dynamics) "
        "and fixed point: accuracy, agreement, state differences, spikes, register ranges")


def add_arguments(p, plots: bool = True) -> None:
    from ._common import add_data_arguments, positive_int
    p.add_argument("--weights", required=True,
                   help="output folder of 'eqspike train' (weights.npz, config.json, training.json) or a .npz")
    add_data_arguments(p)
    p.add_argument("--config", default=None,
                   help="fixed-point config JSON (default: the folder's config.json, else the default config)")
    p.add_argument("--no-fit", action="store_true",
                   help="use the config's weight formats as given (default: fit fraction bits per matrix)")
    p.add_argument("--batch", type=positive_int, default=500, help="inference batch size (default 500)")
    p.add_argument("--json", default=None,
                   help="write float_accuracy, binary_accuracy, binary_hw_accuracy, fixed_accuracy, "
                        "agreement and spikes_per_inference (per layer) here")
    if plots:
        p.add_argument("--out", default=None,
                       help="folder for the report and plots (default: WEIGHTS/compare)")


def prepare(args):
    """Load checkpoint, data and config; check they fit together."""
    from eqspike.cli import CLIError
    from golden_model.config import ConfigError, EqSpikeConfig
    from golden_model.float_model import Dynamics
    from experiments.training import dynamics_from_dict, load_checkpoint

    from ._common import load_data

    ckpt = load_checkpoint(args.weights)
    if args.dataset is None and not args.data_dir:
        args.dataset = ckpt.training.get("dataset", "digits")
    data = load_data(args)
    layers = tuple(ckpt.params.layers)
    if layers[0] != data.n_inputs:
        raise CLIError(f"weights have {layers[0]} inputs but {data.name} has {data.n_inputs}")
    if layers[-1] < data.n_classes:
        raise CLIError(f"weights have {layers[-1]} outputs but {data.name} has {data.n_classes} classes")
    cfg = EqSpikeConfig.load(args.config) if args.config else ckpt.config
    if cfg.layers != layers:
        raise ConfigError(f"weights are for layers {list(layers)}, config has {list(cfg.layers)}")
    dyn = dynamics_from_dict(ckpt.training["dynamics"]) if "dynamics" in ckpt.training else Dynamics()
    return ckpt, data, cfg, dyn


def run(args, plots: bool = True) -> int:
    from experiments.evaluation import JSON_KEYS, compare

    from ._common import check_output_dir, check_output_file, write_json

    check_output_file(args.json, "--json")
    if plots:
        check_output_dir(args.out, "--out")
    ckpt, data, cfg, dyn = prepare(args)
    t0 = time.perf_counter()
    res = compare(ckpt.params, data.x_test, data.y_test, cfg, dyn, fit=not args.no_fit, batch=args.batch)
    print(f"{data.name}, weights {args.weights} ({'-'.join(map(str, cfg.layers))}), "
          f"{res.n_samples} test samples, {time.perf_counter() - t0:.1f} s")
    print(res.table())
    out_json = res.to_json()
    if plots:
        from experiments.training_plots import register_histogram_plot, register_profile_plot
        out = Path(args.out) if args.out else ckpt.path / "compare"
        out.mkdir(parents=True, exist_ok=True)
        print("\nregisters (fixed point, free phase, all test samples):")
        print(res.register_table())
        register_profile_plot(res.registers, out / "registers.png",
                              f"{data.name}: fixed-point registers vs representable range")
        register_histogram_plot(res.registers, out / "register_histograms.png",
                                f"{data.name}: fixed-point register values (sampled) vs representable range")
        res.config.save(out / "config_fitted.json")
        (out / "report.txt").write_text(res.table() + "\n\n" + res.register_table() + "\n")
        write_json(out / "compare.json", out_json)
        print(f"\nplots and report in {out}/ (registers.png, register_histograms.png, report.txt, compare.json, config_fitted.json)")
    # --json holds exactly the six documented keys; the full statistics are in OUT/compare.json
    write_json(args.json, {k: out_json[k] for k in JSON_KEYS})
    return 0
