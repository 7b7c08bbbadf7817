"""cocotb benchmark of the network top (launched by benchmarks/bench_sim.py through sim.runner).

Job keys as :mod:`sim.tb_network` (``config``, ``codes``, ``samples``) plus ``ticks``. Two
measurements on the first sample, each from a fresh RESET:

``free``     one RUN command of ``ticks`` ticks: the simulator runs with no Python in the loop
             (the clock is cocotb's C++ GPI clock), so this is the simulator's own speed;
``checked``  the co-simulation testbench's loop: one RUN per tick, the bus monitor, every
             register read back and compared with the golden model every tick.

Writes simulated cycles (the RTL's cycle counter), wall and process CPU seconds of each.
"""

from __future__ import annotations

import time

import cocotb
from cocotb.clock import Clock

from golden_model.config import EqSpikeConfig
from golden_model.fixed_model import FixedModel

from sim.driver import CLOCK_NS, HostDriver
from sim.monitor import SpikeMonitor
from sim.scoreboard import Scoreboard
from sim.tb_network import _load_job, _npz, _write


@cocotb.test()
async def bench(dut):
    job = _load_job()
    cfg = EqSpikeConfig.from_dict(job["config"])
    codes = _npz(job["codes"])
    n_mat = cfg.n_layers - 1
    model = FixedModel(cfg, [codes[f"W{i}"] for i in range(n_mat)], [codes[f"b{i + 1}"] for i in range(n_mat)])
    smp = _npz(job["samples"])
    x, y = smp["x"][0], smp["y"][0]
    ticks = int(job["ticks"])
    Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start()
    drv = HostDriver(dut, cfg)
    await drv.start()
    await drv.load(model)
    result = {}

    await drv.reset(x, y)
    w0, c0 = time.perf_counter(), time.process_time()
    await drv.run_ticks(ticks)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    result["free"] = {"cycles": await drv.status("cycles"), "wall": wall, "cpu": cpu}

    mon = SpikeMonitor(dut, cfg).start()
    sb = Scoreboard(cfg, model)
    await drv.reset(x, y)
    mon.forget()
    sb.start(x, y)
    w0, c0 = time.perf_counter(), time.process_time()
    for t in range(1, ticks + 1):
        await drv.run_ticks(1)
        sb.check_tick(0, mon.spikes(t), drv.registers())
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    mon.stop()
    result["checked"] = {"cycles": await drv.status("cycles"), "wall": wall, "cpu": cpu}
    _write(job, result)
