"""``eqspike run-fpga``: load weights into a board over its UART host link and run inferences,
each checked against the bit-accurate golden model."""

from __future__ import annotations

import time

NAME = "run-fpga"
HELP = ("drive a board built by 'eqspike synth' over serial: load weights, run inferences on a "
        "data set and compare every prediction with the fixed-point golden model")


def add_arguments(p) -> None:
    p.add_argument("--port", required=True,
                   help="serial port (e.g. /dev/ttyUSB0), or 'sim' for the board top simulated in "
                        "Amaranth (slow: small networks and few samples)")
    p.add_argument("--baud", type=int, default=115200,
                   help="baud rate, as the bitstream was built with 'eqspike synth --baud' (default %(default)s; "
                        "the ULX3S FT231X runs up to 3000000)")
    p.add_argument("--config", default=None,
                   help="config the bitstream was built from (default: the weights folder's, else the default)")
    p.add_argument("--weights", default=None,
                   help="output folder of 'eqspike train' or a .npz (default: Glorot random weights, --seed)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    p.add_argument("--dataset", default="digits", help="digits (default), fashion-mnist, or idx with --data-dir")
    p.add_argument("--data-dir", default=None, help="directory of MNIST-format IDX files")
    p.add_argument("--samples", type=int, default=10, help="test samples to run (default 10)")
    p.add_argument("--ticks", type=int, default=None, help="free-phase ticks per sample (default: the config's n_free)")
    p.add_argument("--no-load", action="store_true", help="the board already holds the weights")
    p.add_argument("--timeout", type=_timeout, default=5.0, help="serial read timeout in seconds (default 5)")
    p.add_argument("--json", default=None, help="write predictions, agreement and timing here")


def _timeout(text):
    from ._common import float_in
    return float_in(0.0, 3600.0, lo_open=True)(text)


def _model(args, cfg_arg):
    import numpy as np

    from golden_model.config import EqSpikeConfig, default_config
    from golden_model.fixed_model import FixedModel, quantise_params
    from golden_model.float_model import glorot_params

    if args.weights:
        from experiments.training import load_checkpoint
        ckpt = load_checkpoint(args.weights)
        cfg = EqSpikeConfig.load(cfg_arg) if cfg_arg else ckpt.config
        if cfg.layers != tuple(ckpt.params.layers):
            raise ValueError(f"weights are for layers {list(ckpt.params.layers)}, config has {list(cfg.layers)}")
        params = ckpt.params
    else:
        cfg = EqSpikeConfig.load(cfg_arg) if cfg_arg else default_config()
        params = glorot_params(cfg.layers, np.random.default_rng(args.seed))
    w, b, _ = quantise_params(cfg, params)
    return cfg, FixedModel(cfg, w, b)


def run(args) -> int:
    import numpy as np

    from eqspike.cli import CLIError
    from experiments.data import load_dataset
    from synth.driver import Board, HostLinkError, LinkTimeout, open_serial
    from synth.protocol import link_inferences_per_s

    from ._common import check_output_file, write_json

    check_output_file(args.json, "--json")
    if args.samples < 1:
        raise ValueError(f"samples must be >= 1, not {args.samples}")
    cfg, model = _model(args, args.config)
    ticks = cfg.n_free if args.ticks is None else args.ticks
    if not 1 <= ticks <= cfg.n_steps:
        raise ValueError(f"ticks must be in 1..{cfg.n_steps}, not {ticks}")
    data = load_dataset(args.dataset, args.data_dir)
    if data.n_inputs != cfg.layers[0]:
        raise CLIError(f"{data.name} has {data.n_inputs} inputs, the network {cfg.layers[0]}")
    if args.port == "sim":
        from sim.simuart import SimTransport
        transport = SimTransport(cfg)
    else:
        transport = open_serial(args.port, args.baud, args.timeout)
    board = Board(transport, cfg)
    try:
        info = board.check()
        t0 = time.time()
        if not args.no_load:
            board.load(model)
        t_load = time.time() - t0
        x = model.encode_inputs(data.x_test[:args.samples])
        y = data.y_test[:args.samples]
        rows = []
        t1 = time.time()
        for i in range(len(x)):
            pred = board.infer(x[i], ticks)
            cycles = board.status("cycles")
            st = model.reset(x[i:i + 1])
            model.run(st, ticks)
            want = int(np.argmax(st.s[-1][0]))
            rows.append({"sample": i, "label": int(y[i]), "board": pred, "model": want, "cycles": cycles})
            print(f"sample {i}: label {y[i]}, board {pred}, model {want}, {cycles} cycles"
                  + ("" if pred == want else "  MISMATCH"))
        t_run = time.time() - t1
    except (HostLinkError, LinkTimeout) as e:
        raise CLIError(str(e)) from None
    finally:
        close = getattr(transport, "close", None)
        if close:
            close()
    agree = sum(r["board"] == r["model"] for r in rows)
    correct = sum(r["board"] == r["label"] for r in rows)
    mean_cycles = float(np.mean([r["cycles"] for r in rows]))
    clk = info["clk_hz"]
    print(f"{len(rows)} samples: board agrees with the golden model on {agree}, accuracy {correct / len(rows):.3f}; "
          + (f"{mean_cycles:.0f} cycles per inference = {clk / mean_cycles:.0f} inferences/s at "
             if mean_cycles else "no cycle counter in this build (--no-counters); ")
          + f"{clk / 1e6:g} MHz (link: load {t_load:.1f} s, {t_run / len(rows):.2f} s per sample; "
          + f"the serial line alone allows {link_inferences_per_s(cfg, info['baud']):.1f} inferences/s "
          + f"at {info['baud']} baud)")
    write_json(args.json, {"port": args.port, "layers": list(cfg.layers), "ticks": ticks, "samples": rows,
                           "agreement": agree / len(rows), "accuracy": correct / len(rows),
                           "cycles_per_inference": mean_cycles, "clk_hz": clk,
                           "inferences_per_s_core": clk / mean_cycles if mean_cycles else None,
                           "load_seconds": t_load, "baud": info["baud"],
                           "inferences_per_s_link": link_inferences_per_s(cfg, info["baud"]),
                           "seconds_per_sample": t_run / len(rows)})
    return 0 if agree == len(rows) else 1
