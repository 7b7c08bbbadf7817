"""``eqspike synth``: FPGA bitstream with resource/timing summary, or a resource/Fmax sweep."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "synth"
HELP = ("build an FPGA bitstream (iCEBreaker, ULX3S-85F) with amaranth-boards and YoWASP; report "
        "utilisation, Fmax, cycles per tick and inferences/s; --sweep builds a grid of configs")


def add_arguments(p) -> None:
    from synth.build import BOARDS

    from ._common import float_in, int_at_least, nonneg_int, positive_int, update_lanes_arg
    p.add_argument("--board", choices=sorted(BOARDS), default="icebreaker", help="target board (default icebreaker)")
    p.add_argument("--config", default=None,
                   help="config JSON (default: the --weights checkpoint's, else the default config)")
    p.add_argument("--layers", default=None, help="override the config's layer sizes, e.g. 64,100,10")
    p.add_argument("--lanes", type=positive_int, default=None, help="override the config's lane count")
    p.add_argument("--update-lanes", type=update_lanes_arg, default=None, metavar="U[,U,...]",
                   help="override the config's update parallelism U (neurons updated per cycle; divides "
                        "--lanes): one value for every core, or one per layer, input first (e.g. 10,5,1)")
    p.add_argument("--mul-stages", type=int_at_least(1, 3), default=None,
                   help="pipeline stages per neuron multiply (cfg.mul_stages; default: the board's, 3 on "
                        "ULX3S, 1 on iCEBreaker); cycles only, never results")
    p.add_argument("--weight-bits", type=int_at_least(2, 32), default=None,
                   help="every weight matrix this many bits wide (integer bits kept; with --weights the "
                        "fraction bits are fitted to the checkpoint's range). 6 with --lanes 500 puts "
                        "784-500-10 in 167 of the ECP5-85F's EBRs (docs/fpga.md)")
    p.add_argument("--weights", default=None, metavar="DIR",
                   help="trained checkpoint (eqspike train --out DIR, or its weights.npz): the inferences/s "
                        "estimate uses its spikes on --dataset (default: Glorot weights)")
    p.add_argument("--clock-mhz", type=float_in(0.0, 1000.0, lo_open=True), default=None,
                   help="core clock (default: 12 MHz oscillator on iCEBreaker, 50 MHz PLL on ULX3S)")
    p.add_argument("--seed", type=nonneg_int, default=1, help="nextpnr placement seed (default 1)")
    p.add_argument("--small-ram-depth", type=nonneg_int, default=None,
                   help="memories of at most this many words go to LUT RAM (ECP5) or logic instead of "
                        "block RAM (default: 1024 on ECP5, 0 = Yosys decides on iCE40)")
    p.add_argument("--counters", action=argparse.BooleanOptionalAction, default=None,
                   help="build the performance counters (STATUS reads; default: on, off on iCEBreaker)")
    p.add_argument("--baud", type=int_at_least(300, 12_000_000), default=115200, help="UART baud rate (default %(default)s)")
    p.add_argument("--dataset", default="digits",
                   help="data set for the cycles-per-tick and inferences/s estimate (default digits; "
                        "'none' skips it); its input count must match the network")
    p.add_argument("--data-dir", default=None, help="directory of MNIST-format IDX files")
    p.add_argument("--samples", type=positive_int, default=None,
                   help="test images of that estimate (default 20: the first of the test split, the ones "
                        "`eqspike cosim --samples 20` runs)")
    p.add_argument("--out", default=None, help="build folder (default build/synth-BOARD, or build/sweep-BOARD)")
    p.add_argument("--json", default=None, help="also write the summary (sweep: every summary) here")
    p.add_argument("--sweep", action="store_true",
                   help="build a one-factor-at-a-time grid around the config: --sweep-lanes, "
                        "--sweep-weight-bits, --sweep-layers; writes sweep.csv, sweep.md, sweep.png")
    p.add_argument("--sweep-lanes", default="4,10", help="lane counts (default %(default)s)")
    p.add_argument("--sweep-update-lanes", default="",
                   help="update parallelism U, paired with every swept lane count it divides (default none)")
    p.add_argument("--sweep-weight-bits", default="4,6", help="weight widths (default %(default)s)")
    p.add_argument("--sweep-layers", default="64-32-10;64-200-10",
                   help="layer lists separated by ';' (default %(default)s)")
    p.add_argument("--no-resume", action="store_true", help="sweep: rebuild points already built")
    from ._executor import add_executor_arguments
    add_executor_arguments(p, "sweep builds (each reserves 1 CPU and the board's build memory)")


def _ints(text: str, what: str) -> tuple:
    try:
        vals = tuple(int(v) for v in str(text).replace(" ", "").split(",") if v)
    except ValueError:
        raise ValueError(f"{what} must be comma-separated integers, not {text!r}") from None
    return vals


def _config(args, checkpoint=None):
    from golden_model.config import EqSpikeConfig, default_config

    from ._common import check_lanes, parse_layers

    if args.config:
        cfg = EqSpikeConfig.load(args.config)
    else:       # a checkpoint's config holds the weight formats fitted to its weights
        cfg = checkpoint.config if checkpoint is not None else default_config()
    if args.layers:
        cfg = cfg.with_layers(parse_layers(args.layers))
    preset = _board_defaults(args, cfg)
    if preset:
        print(f"{args.board} defaults for {'-'.join(map(str, cfg.layers))}: lanes {preset['lanes']}, update lanes "
              f"{','.join(map(str, preset['update_lanes']))}, {preset['weight_bits']}-bit weights "
              f"(--lanes, --update-lanes, --weight-bits or --config override them)")
        args.weight_bits = preset["weight_bits"]
        args.lanes, args.update_lanes = preset["lanes"], preset["update_lanes"]
    if getattr(args, "weight_bits", None) is not None:
        cfg = cfg.with_weight_bits(args.weight_bits)
        if checkpoint is not None:
            from golden_model.fixed_model import fit_weight_formats
            cfg = fit_weight_formats(cfg, checkpoint.params)
    if args.lanes is not None or args.update_lanes is not None:
        cfg = cfg.replace(lanes=cfg.lanes if args.lanes is None else args.lanes,
                          update_lanes=cfg.update_lanes if args.update_lanes is None else args.update_lanes)
    if getattr(args, "board", None) is not None:
        from synth.build import BOARDS
        cfg = cfg.replace(mul_stages=BOARDS[args.board].mul_stages if args.mul_stages is None else args.mul_stages)
    check_lanes(cfg)
    return cfg


def _board_defaults(args, cfg):
    """The board's defaults for a network of ``cfg.layers`` (``synth.build.Board.network_defaults``)
    when the command names none of the settings they cover (and builds one design, not a sweep);
    else None."""
    from synth.build import BOARDS
    board = getattr(args, "board", None)
    if board is None or args.config or getattr(args, "sweep", False):
        return None
    if any(getattr(args, k, None) is not None for k in ("lanes", "update_lanes", "weight_bits")):
        return None
    return dict(BOARDS[board].network_defaults).get(tuple(cfg.layers))


def _print_summary(s: dict) -> None:
    fit = "fits" if s.get("fits") else ("DOES NOT FIT" if s.get("fits") is False else "DID NOT FINISH")
    res = ", ".join(f"{k} {s[k]}/{s[k + '_available']}" for k in ("logic_cells", "luts", "ffs", "brams", "spram", "dsp")
                    if s.get(k + "_available") is not None)
    res = res or f"luts {s.get('luts')}, ffs {s.get('ffs')}"
    print(f"{s['board']} {'-'.join(map(str, s['layers']))}, {s['lanes']} lane(s): {fit}; {res}")
    if s.get("fmax_mhz") is not None:
        print(f"  Fmax {s['fmax_mhz']} MHz, target {s['target_mhz']} MHz: "
              + ("meets timing" if s.get("meets_timing") else "FAILS timing"))
    if s.get("over"):
        print(f"  needs more than the device has: {', '.join(s['over'])}")
    if s.get("error"):
        print(f"  {s['error']}")
    if s.get("cycles_per_tick") is not None:
        line = f"  {s['cycles_per_tick']} cycles per tick ({s['activity']['dataset']}, mean)"
        if s.get("inferences_per_s"):
            clock = min(s["fmax_mhz"], s["target_mhz"]) if s.get("fmax_mhz") else None
            line += (f"; {s['inferences_per_s']} inferences/s" + (f" at {clock:g} MHz" if clock else "")
                     + (f" ({s['inferences_per_s_at_fmax']} at Fmax)" if s.get("inferences_per_s_at_fmax") else "")
                     + f" ({s['activity']['samples']} samples, {s['activity'].get('weights', 'glorot')} weights)")
        print(line)
    if s.get("bitstream"):
        print(f"  bitstream {s['bitstream']}")


def run(args) -> int:
    from synth.build import build

    from ._common import check_output_dir, check_output_file, parse_layers, write_json

    check_output_dir(args.out, "--out")
    check_output_file(args.json, "--json")
    checkpoint = None
    if args.weights:
        from experiments.training import load_checkpoint
        checkpoint = load_checkpoint(args.weights)
    params = None if checkpoint is None else checkpoint.params
    cfg = _config(args, checkpoint)
    dataset = None if args.dataset in (None, "none") else args.dataset
    if not args.sweep:
        out = Path(args.out or f"build/synth-{args.board}")
        s = build(cfg, args.board, out, clk_mhz=args.clock_mhz, seed=args.seed, baud=args.baud,
                  dataset=dataset, data_dir=args.data_dir, small_ram_depth=args.small_ram_depth,
                  counters=args.counters, progress=not args.quiet, params=params, weights_name=args.weights,
                  **({} if args.samples is None else {"samples": args.samples}))
        _print_summary(s)
        print(f"  wrote {out / 'summary.json'}, {out / 'report.json'}, {out / 'config.json'}")
        if args.weights:    # the same design, tick by tick against the golden model
            print(f"  co-simulate it: eqspike cosim --weights {args.weights} --config {out / 'config.json'}"
                  + (f" --dataset {dataset}" if dataset else "") + (f" --data-dir {args.data_dir}" if args.data_dir else ""))
        write_json(args.json, s)
        return 0 if s.get("fits") else 1

    from synth.sweep import plot_sweep, run_sweep, sweep_points

    from ._executor import executor_from

    layers = [parse_layers(t) for t in args.sweep_layers.split(";") if t.strip()]
    points = sweep_points(cfg, _ints(args.sweep_lanes, "sweep lanes"), _ints(args.sweep_weight_bits, "sweep weight bits"),
                          layers, _ints(args.sweep_update_lanes, "sweep update lanes"))
    out = Path(args.out or f"build/sweep-{args.board}")
    rows = run_sweep(points, args.board, out, dataset=dataset, resume=not args.no_resume, seed=args.seed,
                     clk_mhz=args.clock_mhz, small_ram_depth=args.small_ram_depth, executor=executor_from(args),
                     log=_write, params=params, weights_name=args.weights, samples=args.samples)
    plot_sweep(rows, out / "sweep.png")
    print((out / "sweep.md").read_text())
    print(f"wrote {out / 'sweep.csv'}, {out / 'sweep.md'}, {out / 'sweep.png'}")
    write_json(args.json, rows)
    if args.json is None:
        write_json(out / "sweep.json", rows)
    return 1 if any(r.get("failed") for r in rows) else 0


def _write(line: str) -> None:
    from runtime.progress import write
    write(line)
