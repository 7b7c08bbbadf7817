"""Simulated cycles per second of the network testbench: Verilator and Icarus (cocotb) and
Amaranth's simulator, on the same network, sample and ticks, in one run, with ratios.

Two figures per simulator (see sim/tb_bench.py):
  free     one RUN command of T ticks, no Python in the loop (the simulator's own speed);
  checked  the co-simulation loop: one RUN per tick, bus monitor (cocotb), every register read
           and compared with the golden model every tick.
Cycles come from the RTL's cycle counter. Wall seconds depend on the machine's load; process CPU
seconds of the simulator process are also reported (Amaranth: the Python process).

    python benchmarks/bench_sim.py [--layers 64,100,10] [--lanes 1] [--ticks 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from golden_model.config import default_config  # noqa: E402
from sim.rtl_harness import RTLHarness, diff_registers, digits_network  # noqa: E402
from sim.runner import available_simulators, build, network_job, run_job, run_lock  # noqa: E402


def bench_cocotb(cfg, model, x, y, simulator, ticks):
    t0 = time.perf_counter()
    b = build(cfg, simulator, log=lambda m: print(m, flush=True))
    build_s = time.perf_counter() - t0
    with run_lock(b, f"bench-{ticks}"):
        job = network_job(b, model, x[None], y[None], f"bench-{ticks}")
        job["ticks"] = ticks
        res = run_job(b, job, "sim.tb_bench", name=f"bench-{ticks}")
    return {"build_seconds": build_s, "built_now": b.built_now, "free": res["free"], "checked": res["checked"]}


def bench_amaranth(cfg, model, x, y, ticks):
    h = RTLHarness(cfg)
    out = {}

    async def body(h):
        h.load_backdoor(model)
        await h.reset(x, y)
        w0, c0 = time.perf_counter(), time.process_time()
        await h.run_ticks(ticks)
        out["free"] = {"wall": time.perf_counter() - w0, "cpu": time.process_time() - c0,
                       "cycles": await h.status("cycles")}
        st = model.reset(x[None], y[None])
        await h.reset(x, y)
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(ticks):
            model.tick(st)
            await h.tick()
            assert diff_registers(h.registers(), st) == []
        out["checked"] = {"wall": time.perf_counter() - w0, "cpu": time.process_time() - c0,
                          "cycles": await h.status("cycles")}

    h.run(body)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", default="64,100,10")
    p.add_argument("--lanes", type=int, default=1)
    p.add_argument("--ticks", type=int, default=20)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    layers = tuple(int(v) for v in args.layers.split(","))
    cfg = default_config(layers).replace(lanes=args.lanes)
    model, x, y = digits_network(cfg, sample=0)
    rows = {}
    for sim in ("verilator", "icarus"):
        if sim in available_simulators():
            rows[sim] = bench_cocotb(cfg, model, x, y, sim, args.ticks)
        else:
            print(f"{sim}: not available (skipped)")
    rows["amaranth"] = bench_amaranth(cfg, model, x, y, args.ticks)
    print(f"network {'-'.join(map(str, layers))}, lanes {args.lanes}, digits sample 0, {args.ticks} free ticks")
    print(f"{'simulator':<10} {'mode':<8} {'cycles':>9} {'wall s':>8} {'cyc/s wall':>11} {'cpu s':>7} "
          f"{'cyc/s cpu':>10} {'vs amaranth (cpu)':>18}")
    ref = {m: rows["amaranth"][m]["cycles"] / max(rows["amaranth"][m]["cpu"], 1e-9) for m in ("free", "checked")}
    summary = {}
    for sim, r in rows.items():
        for mode in ("free", "checked"):
            m = r[mode]
            wall_rate = m["cycles"] / max(m["wall"], 1e-9)
            cpu_rate = m["cycles"] / max(m["cpu"], 1e-9)
            summary[f"{sim}_{mode}"] = {"cycles": m["cycles"], "wall_s": m["wall"], "cpu_s": m["cpu"],
                                        "cycles_per_s_wall": wall_rate, "cycles_per_s_cpu": cpu_rate,
                                        "ratio_vs_amaranth_cpu": cpu_rate / ref[mode]}
            print(f"{sim:<10} {mode:<8} {m['cycles']:>9} {m['wall']:>8.2f} {wall_rate:>11,.0f} {m['cpu']:>7.2f} "
                  f"{cpu_rate:>10,.0f} {cpu_rate / ref[mode]:>17.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"config": cfg.to_dict(), "ticks": args.ticks, "results": summary},
                                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
