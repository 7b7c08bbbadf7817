"""Throughput in one run: FPGA inferences/s per configuration against the golden model's on the CPU.

For each RTL configuration of the paper's network 784-500-10 (lanes, update lanes U, weight
bits) and of the digits network 64-100-10 on the iCEBreaker:

* ``cycles/tick``: the exact cycle formula (``rtl.network.tick_cycles``, checked tick by tick
  against simulation in the test suite) on the fixed-point model's spikes, 100 free ticks, the
  first ``--samples`` test images, from ``--weights`` (a trained checkpoint, quantised to each
  configuration's weight width with fitted fraction bits) or Glorot weights;
* the board's multiply stages (``Board.mul_stages``: 3 on the ULX3S), as ``eqspike synth``
  builds it;
* ``inf/s @ clock``: inferences (100 free ticks) per second at the board's clock (50 MHz on the
  ULX3S, 12 MHz on the iCEBreaker), and at the measured Fmax of a synthesis summary of the same
  configuration when ``--summaries`` lists one (``eqspike synth --json``; matched on board,
  layers, lanes, U, weight bits and multiply stages).

Then the golden model on this machine's CPU: float binary inference, minibatch 20, 100 ticks,
1 BLAS thread, CPU time per minibatch (median after a warm-up call) -> inferences per second.

    .venv/bin/python benchmarks/bench_throughput.py [--weights out/fashion-88] [--samples 20]
        [--summaries build/*/summary.json] [--json out/throughput.json]
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

#: (board, layers, lanes, update lanes (one, or one per layer), weight bits)
CONFIGS = [
    ("ulx3s-85f", (784, 500, 10), 1, 1, 8),
    ("ulx3s-85f", (784, 500, 10), 100, 10, 8),
    ("ulx3s-85f", (784, 500, 10), 250, 10, 6),
    ("ulx3s-85f", (784, 500, 10), 500, 10, 6),
    ("ulx3s-85f", (784, 500, 10), 500, 20, 6),
    ("ulx3s-85f", (784, 500, 10), 500, (10, 5, 1), 6),     # one U per core: the same pass, fewer DSPs
    ("ulx3s-85f", (784, 500, 10), 500, (5, 4, 1), 6),      # the board's default (spike queue: U 5 suffices)
    ("icebreaker", (64, 100, 10), 10, 1, 8),
]
CLOCK_MHZ = {"ulx3s-85f": 50.0, "icebreaker": 12.0}


def config_for(board, layers, lanes, U, bits, params):
    """The configuration as ``eqspike synth --board BOARD`` builds it (the board's multiply
    stages, which add cycles per tick)."""
    from golden_model.config import default_config
    from golden_model.fixed_model import fit_weight_formats
    from synth.build import BOARDS
    cfg = default_config(layers).with_weight_bits(bits).replace(lanes=lanes, update_lanes=U,
                                                                mul_stages=BOARDS[board].mul_stages)
    return fit_weight_formats(cfg, params) if params is not None else cfg


def _u(value):
    """``update_lanes`` as the config holds it (a JSON list is one U per layer)."""
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _u_text(value) -> str:
    return "/".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def fpga_rows(args) -> list:
    from experiments.training import load_checkpoint
    from synth.build import activity
    summaries = []
    for pattern in args.summaries or []:
        for path in glob.glob(pattern):
            summaries.append(json.loads(Path(path).read_text()))
    ckpt = load_checkpoint(args.weights) if args.weights else None
    rows = []
    for board, layers, lanes, U, bits in CONFIGS:
        params = ckpt.params if ckpt is not None and tuple(ckpt.params.layers) == layers else None
        cfg = config_for(board, layers, lanes, U, bits, params)
        dataset = "fashion-mnist" if layers[0] == 784 else "digits"
        try:
            act = activity(cfg, dataset, samples=args.samples, params=params,
                           weights_name=args.weights if params is not None else None)
        except (OSError, FileNotFoundError) as e:       # Fashion-MNIST not installed
            print(f"  {board} {layers}: skipped ({e})", file=sys.stderr)
            continue
        cyc = act["cycles_per_tick_mean"] * cfg.n_free
        match = [s for s in summaries if s.get("board") == board and tuple(s.get("layers", ())) == layers
                 and s.get("lanes") == lanes and _u(s.get("update_lanes", 1)) == U
                 and s.get("weight_bits", [None])[0] == bits and s.get("mul_stages", 1) == cfg.mul_stages
                 and s.get("fmax_mhz")]
        fmax = max(s["fmax_mhz"] for s in match) if match else None
        rows.append({"board": board, "layers": "-".join(map(str, layers)), "lanes": lanes,
                     "update_lanes": list(U) if isinstance(U, tuple) else U,
                     "mul_stages": cfg.mul_stages,
                     "weight_bits": bits, "weights": act["weights"], "samples": act["samples"],
                     "cycles_per_tick": round(act["cycles_per_tick_mean"], 1),
                     "clock_mhz": CLOCK_MHZ[board], "inferences_per_s": round(CLOCK_MHZ[board] * 1e6 / cyc, 1),
                     "fmax_mhz": fmax, "inferences_per_s_at_fmax": round(fmax * 1e6 / cyc, 1) if fmax else None})
    return rows


def cpu_figure(args) -> dict:
    from threadpoolctl import threadpool_limits

    from experiments.data import load_dataset
    from experiments.training import load_checkpoint
    from golden_model.float_model import Dynamics, FloatModel, glorot_params
    try:
        x = np.asarray(load_dataset("fashion-mnist").x_test[:200], dtype=np.float32)
    except Exception:       # noqa: BLE001 - synthetic inputs of the same shape
        rng = np.random.default_rng(0)
        x = (rng.uniform(0, 1, (200, 784)) * (rng.random((200, 784)) < 0.5)).astype(np.float32)
    ckpt = load_checkpoint(args.weights) if args.weights else None
    params = ckpt.params if ckpt is not None else glorot_params((784, 500, 10), np.random.default_rng(0))
    model = FloatModel(params, Dynamics(n_free=100, n_nudged=50), dtype=np.float32)
    cpu = []
    with threadpool_limits(1):
        model.predict(x[:20])
        for i in range(args.cpu_calls):
            c = time.process_time()
            model.predict(x[20 * (i % 10):20 * (i % 10) + 20])
            cpu.append(time.process_time() - c)
    ms = 1e3 * float(np.median(cpu))
    return {"what": "float binary inference, 784-500-10, minibatch 20, 100 ticks, 1 thread",
            "cpu_ms_per_minibatch": round(ms, 1), "inferences_per_s": round(20 / (ms / 1e3), 1),
            "calls": len(cpu)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", help="trained 784-500-10 checkpoint (default: Glorot weights)")
    ap.add_argument("--samples", type=int, default=20, help="test images for the spike counts (default 20)")
    ap.add_argument("--summaries", nargs="*", help="synthesis summary.json files (globs) for measured Fmax")
    ap.add_argument("--cpu-calls", type=int, default=10)
    ap.add_argument("--json", help="write every figure here")
    args = ap.parse_args(argv)
    rows = fpga_rows(args)
    head = f"{'board':<11} {'layers':<11} {'lanes':>5} {'U':>6} {'bits':>4} {'cycles/tick':>11} " \
           f"{'clock':>6} {'inf/s':>8} {'Fmax':>7} {'inf/s@Fmax':>10}"
    print(head)
    print("-" * len(head))
    for r in rows:
        fmax = f"{r['fmax_mhz']:.1f}" if r["fmax_mhz"] else "-"
        at = f"{r['inferences_per_s_at_fmax']:.0f}" if r["inferences_per_s_at_fmax"] else "-"
        print(f"{r['board']:<11} {r['layers']:<11} {r['lanes']:>5} {_u_text(r['update_lanes']):>6} {r['weight_bits']:>4} "
              f"{r['cycles_per_tick']:>11.1f} {r['clock_mhz']:>6.1f} {r['inferences_per_s']:>8.1f} {fmax:>7} {at:>10}")
    weights = rows[0]["weights"] if rows else "-"
    print(f"(spikes: {weights}, {args.samples} test images, 100 free ticks)")
    cpu = cpu_figure(args)
    print(f"CPU golden model: {cpu['what']}: {cpu['cpu_ms_per_minibatch']} ms CPU per minibatch "
          f"-> {cpu['inferences_per_s']} inferences/s")
    best = max((r for r in rows if r["layers"] == "784-500-10"), key=lambda r: r["inferences_per_s"], default=None)
    if best:
        print(f"best 784-500-10 configuration: {best['inferences_per_s']:.0f} inferences/s at {best['clock_mhz']} MHz, "
              f"{best['inferences_per_s'] / cpu['inferences_per_s']:.1f}x the CPU's")
    if args.json:
        Path(args.json).write_text(json.dumps({"fpga": rows, "cpu": cpu}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
