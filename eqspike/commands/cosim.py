"""``eqspike cosim``: data-set samples through the generated Verilog (cocotb), checked against
the golden model every tick, with trained weights from ``eqspike train``; with ``--train``,
on-chip learning: training samples through the RTL's TRAIN command, every weight and bias
compared with the golden model (OnChipLearner) after every sample."""

from __future__ import annotations

import os
from pathlib import Path

NAME = "cosim"
HELP = "co-simulate the generated Verilog (Verilator or Icarus) on data-set samples against the golden model"


def add_arguments(p) -> None:
    from ._common import nonneg_int, positive_int
    p.add_argument("--weights", default=None, metavar="DIR",
                   help="checkpoint folder of `eqspike train` (weights.npz + config.json) or a weights "
                        ".npz (default: out/train-DATASET-binary)")
    p.add_argument("--dataset", default="digits", help="digits (default), fashion-mnist, or idx/mnist with --data-dir")
    p.add_argument("--data-dir", default=None, help="directory of MNIST-format IDX files")
    p.add_argument("--samples", type=positive_int, default=200,
                   help="test samples to run, or training samples with --train (default 200)")
    p.add_argument("--first", type=nonneg_int, default=0, help="index of the first test sample (default 0)")
    p.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator")
    p.add_argument("--waves", action="store_true",
                   help="record a waveform (Verilator: VCD, Icarus: FST) of every run")
    p.add_argument("--json", default=None, metavar="PATH",
                   help="write samples, bit_exact_samples, rtl_accuracy, golden_accuracy, float_accuracy, "
                        "cycles_per_sample")
    p.add_argument("--lanes", type=int, default=None,
                   help="synapse lanes of the RTL (default: the checkpoint config's); results must not change")
    p.add_argument("--rtl-config", default=None, metavar="CFG.json",
                   help="generate the Verilog from this config instead of the checkpoint's (same layers): "
                        "checks a modified design against the checkpoint's golden model")
    p.add_argument("--registers-every", type=int, default=1, metavar="K",
                   help="compare every register every K ticks (default 1: every tick); spikes every tick")
    p.add_argument("--jobs", type=int, default=None,
                   help="simulator processes, each a Ray task over a contiguous slice of the samples (default: "
                        "one per core, at most 4; 1 runs in this process)")
    p.add_argument("--address", default=None, metavar="HOST:PORT",
                   help="run the simulator processes on the Ray cluster at this address (default: $RAY_ADDRESS, "
                        "else a local Ray); each node builds the model once")
    p.add_argument("--quiet", action="store_true", help="no progress bar over the samples")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of the host-side idle/backpressure pattern")
    p.add_argument("--idle", type=float, default=0.0, help="probability of idle cycles before a host command")
    p.add_argument("--backpressure", type=float, default=0.0,
                   help="probability of holding a host response (rsp.ready low)")
    g = p.add_argument_group("on-chip learning (--train)")
    g.add_argument("--train", action="store_true",
                   help="train the RTL on the first --samples training samples (TRAIN command) from Glorot "
                        "weights (seed 0); every weight and bias is compared with the golden model's "
                        "OnChipLearner after every sample (config: learning_config((n_in, 100, n_classes)) "
                        "or --config)")
    p.add_argument("--config", default=None, metavar="CFG.json",
                   help="the hardware config: with --weights, the checkpoint's float weights are quantised "
                        "into it and golden model and RTL both come from it (e.g. the config.json of an "
                        "`eqspike synth --weights` build); with --train, the config trained on (needs a "
                        "'learning' section)")
    g.add_argument("--read-every", type=int, default=50, metavar="K",
                   help="--train: also read every parameter back by host READ commands after samples 0, K, "
                        "2K, ... and the last (default 50; 0: memories only)")
    g.add_argument("--fast-build", action="store_true",
                   help="--train: compile the Verilator model at -O0 (quicker build, slower run: small networks)")
    g.add_argument("--fault", choices=("learn_round",), default=None,
                   help="--train: build the RTL with a planted bug (learn_round: weight update rounding "
                        "offset dropped); the run must report a mismatch")


def run(args) -> int:
    from sim.cosim import cosim_dataset

    if args.train:
        return run_train(args)

    weights = args.weights
    if weights is None:
        weights = Path("out") / f"train-{args.dataset}-binary"
        if not weights.exists():
            raise ValueError(f"no --weights given and {weights} does not exist; run "
                             f"`eqspike train --dataset {args.dataset}` first or pass --weights DIR")
    if not Path(weights).exists():
        raise ValueError(f"weights path {str(weights)!r} does not exist")
    if args.registers_every < 1:
        raise ValueError(f"--registers-every must be >= 1, not {args.registers_every}")
    if args.jobs is not None and args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, not {args.jobs}")
    for name in ("idle", "backpressure"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            raise ValueError(f"--{name} must be in [0, 1], not {getattr(args, name)}")
    if args.config and args.rtl_config:
        raise ValueError("--config and --rtl-config together: --config sets both the golden model's and the "
                         "RTL's config; --rtl-config alone checks a modified RTL against the checkpoint's")
    rtl_config = _checked_common(args, args.rtl_config or args.config)
    config, rtl_config = (rtl_config, None) if args.config else (None, rtl_config)
    if args.lanes is not None:
        from experiments.training import load_checkpoint
        _check_lanes(args, rtl_config or config or load_checkpoint(weights).config)
    rep, status = _report_of(lambda: cosim_dataset(
        weights, args.dataset, args.samples, args.simulator, waves=args.waves,
        lanes=args.lanes, registers_every=args.registers_every, data_dir=args.data_dir,
        first=args.first, seed=args.seed, idle=args.idle, backpressure=args.backpressure,
        jobs=args.jobs, rtl_config=rtl_config, log=_write, executor=_executor(args), quiet=args.quiet,
        config=config))
    print(rep.table())
    if rep.mismatch is not None:
        m = rep.mismatch
        print(f"FIRST MISMATCH: {args.dataset} test sample {m['sample']}, tick {m['tick']}, "
              f"layer {m['layer']}, neuron {m['neuron']}, register {m['register']}: "
              f"expected {m['expected']}, got {m['got']} ({m['differing']} neuron(s) of the layer differ)")
        print(f"waveform: {m.get('waves') or 'none recorded'}")
        print(f"simulator logs: {', '.join(p for p in rep.extra.get('logs', []) if p)}")
    elif status:   # a failure other than a register mismatch (cycle formula, counters, host read)
        print(f"FAILED: {rep.error}")
        print(f"simulator logs: {', '.join(p for p in rep.extra.get('logs', []) if p)}")
    _write_json(args.json, rep)
    return status


def _write(line: str) -> None:
    """A line on stdout above the progress bar."""
    from runtime.progress import write
    write(line)


def _executor(args):
    """The executor of the simulator jobs: None (cosim_dataset's own: a local Ray sized to
    --jobs) unless --address or RAY_ADDRESS names a cluster."""
    if args.address is None and not os.environ.get("RAY_ADDRESS"):
        return None
    from ._executor import executor_from
    return executor_from(args, jobs=1 if args.jobs is None else args.jobs)


def _checked_common(args, config_path):
    """Checks shared by both modes (``--lanes``, ``--json`` writable, the simulator installed);
    returns the config loaded from ``config_path`` (None without one)."""
    from sim.runner import require_simulator

    from ._common import check_output_file

    check_output_file(args.json, "--json")

    if args.lanes is not None and args.lanes < 1:
        raise ValueError(f"--lanes must be >= 1, not {args.lanes}")
    require_simulator(args.simulator)
    if not config_path:
        return None
    from golden_model.config import EqSpikeConfig
    return EqSpikeConfig.load(config_path)


def _check_lanes(args, cfg) -> None:
    """--lanes above every layer size is refused before the simulator builds (as verilog does)."""
    from ._common import check_lanes
    check_lanes(cfg.replace(lanes=args.lanes))


def _report_of(call):
    """Run a co-simulation; (report, 0), or (the failure's report, 1) when it raised one (the
    error's message then in ``report.error``)."""
    from sim.runner import CosimError
    try:
        return call(), 0
    except CosimError as e:
        rep = getattr(e, "report", None)
        if rep is None:
            raise
        rep.error = str(e).splitlines()[0] if str(e) else type(e).__name__
        return rep, 1


def _write_json(path, rep) -> None:
    from ._common import write_json
    write_json(path, rep.to_json())


def run_train(args) -> int:
    """``eqspike cosim --train``."""
    from sim.cosim import cosim_train

    for name in ("weights", "rtl_config"):
        if getattr(args, name):
            raise ValueError(f"--{name.replace('_', '-')} does not apply to --train (it starts from Glorot "
                             "weights; use --config for the hardware config)")
    if args.read_every < 0:
        raise ValueError(f"--read-every must be >= 0, not {args.read_every}")
    cfg = _checked_common(args, args.config)
    if args.lanes is not None and cfg is not None:
        _check_lanes(args, cfg)
    rep, status = _report_of(lambda: cosim_train(
        args.samples, args.simulator, cfg=cfg, dataset=args.dataset, data_dir=args.data_dir,
        first=args.first, lanes=args.lanes, fault=args.fault, read_every=args.read_every,
        optimise=not args.fast_build, log=lambda m: print(m, flush=True), quiet=args.quiet))
    print(rep.table())
    if rep.mismatch is not None:
        m = rep.mismatch
        print(f"FIRST MISMATCH: {m['message']}")
        print(f"simulator log: {rep.log}")
    elif status:
        print(f"FAILED: {rep.error}")
        print(f"simulator log: {rep.log}")
    _write_json(args.json, rep)
    return status
