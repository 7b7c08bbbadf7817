"""cocotb testbench of the verification campaign (:mod:`sim.verify`): one random design.

Launched by :func:`sim.verify.run.run_design` through :func:`sim.runner.run_job` (never
imported by pytest directly). The job JSON (``EQSPIKE_COSIM_JOB``) names a design folder
(:meth:`sim.verify.design.Design.save`) and the host stream pattern. The run:

1. loads every weight and bias through the host port (learning designs: the learning-format
   codes; the memories are then compared with the learner's);
2. per inference sample: RESET, inputs, targets, then one RUN per tick; after every tick every
   bus spike and every per-neuron register is compared with the golden model
   (:class:`sim.scoreboard.Scoreboard` over a :class:`sim.verify.coverage.CoverageModel`),
   and the tick's coverage bins are counted; per sample the tick and overflow counters, one
   host READ against the state memory, and a command offered while a response is held (the
   ``cmd`` and ``rsp`` handshakes under backpressure);
3. per TRAIN sample (learning designs): beta's sign, the cycle count
   (``rtl.learning.train_cycles``: equal without bus stalls; a design built with
   ``bus_stall`` throttles its spike links, which only adds cycles, so there it is the least
   count) and every stored weight copy and bias against
   :class:`sim.verify.coverage.CoverageLearner`.

The first difference fails the cocotb test; the result JSON says which sample of which kind
(``failing``) it was, for shrinking.
"""

from __future__ import annotations

import time
from collections import Counter

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge, with_timeout

from golden_model.config import EqSpikeConfig
from rtl.learning import train_cycles
from rtl.network import Op, Space, Status

from sim.driver import CLOCK_NS, HostDriver, ParamReader
from sim.monitor import SpikeMonitor
from sim.rtl_harness import train_tick_cycles
from sim.scoreboard import Mismatch, Scoreboard
from sim.tb_network import _npz, job_progress, run_job
from sim.tb_train import ParamMismatch, compare_params
from sim.verify.coverage import CoverageLearner, CoverageModel, snapshot, tick_bins


@cocotb.test()
async def verify_design(dut):
    """Every inference sample tick by tick, then every TRAIN sample, against the golden model."""
    await run_job(dut, _run, {"checked_registers": 0, "checked_spikes": 0, "ticks": 0, "train_values": 0,
                              "train_ticks": 0, "hits": {}, "failing": None})


async def _take_command(dut):
    """Hold ``cmd.valid`` until the handshake (a rising edge with ready high)."""
    while True:
        await ReadOnly()
        taken = bool(dut.cmd__ready.value)
        await RisingEdge(dut.clk)
        if taken:
            return


async def _take_response(dut, limit: int) -> int:
    if not dut.rsp__valid.value:
        await with_timeout(RisingEdge(dut.rsp__valid), limit * CLOCK_NS, "ns")
    dut.rsp__ready.value = 1
    await ReadOnly()
    value = dut.rsp__payload.value.to_signed()
    await RisingEdge(dut.clk)
    dut.rsp__ready.value = 0
    return value


async def command_while_pending(drv: HostDriver, hits: Counter, hold: int = 3) -> tuple:
    """Two STATUS TICK reads, the second offered while the first's response is held.

    The top must keep ``cmd.ready`` low while a response is pending (``bp:cmd``) and hold
    the response while ``rsp.ready`` is low (``bp:rsp``); both reads must answer.
    """
    dut = drv.dut
    word = drv.packer.pack(op=Op.READ, space=Space.STATUS, reg=Status.TICK)
    dut.cmd__payload.value = word
    dut.cmd__valid.value = 1
    await _take_command(dut)
    held = 0
    for _ in range(drv.response_limit(Op.READ)):       # second command offered, first response held
        await ReadOnly()
        ready, pending = bool(dut.cmd__ready.value), bool(dut.rsp__valid.value)
        await RisingEdge(dut.clk)
        if ready:
            raise AssertionError("the top accepted a command while a response was pending")
        hits["bp:cmd"] += 1
        held += pending
        if held >= hold:
            break
    else:
        raise AssertionError("no response to a STATUS read: the design hangs")
    hits["bp:rsp"] += 1
    first = await _take_response(dut, drv.response_limit(Op.READ))
    await _take_command(dut)
    dut.cmd__valid.value = 0
    second = await _take_response(dut, drv.response_limit(Op.READ))
    drv.commands += 2
    return first, second


async def _inference(dut, job, result, cfg, drv, model, mon, sb, hits, rng, x, y, nudge):
    for i in range(len(x)):
        result["failing"] = {"kind": "inference", "sample": i}
        sign = int(nudge[i])
        n_steps = cfg.n_free + (cfg.n_nudged if sign else 0)
        await drv.reset(x[i], y[i])
        mon.forget()
        sb.start(x[i], y[i], sample=i)
        ovf_before = sum(model.overflows.values())
        for t in range(1, n_steps + 1):
            result["failing"]["tick"] = t        # a hang names the tick it hung in
            s_sign = 0 if t <= cfg.n_free else sign
            done = await drv.run_ticks(1, s_sign)
            if done != t:
                raise AssertionError(f"sample {i}: RUN of tick {t} answered tick counter {done}")
            regs = drv.registers()
            prev = snapshot(sb.st)
            sb.check_tick(s_sign, mon.spikes(t), regs)
            tick_bins(cfg, model, prev, sb.st, s_sign, hits)
        await drv.check_random_read(rng, regs, f"sample {i}")
        rtl_ovf = 0
        for l in range(cfg.n_layers):
            rtl_ovf += await drv.status("overflows", l)
        model_ovf = sum(model.overflows.values()) - ovf_before
        ticks = await drv.status("tick")
        pending = await command_while_pending(drv, hits)
        if ticks != n_steps or rtl_ovf != model_ovf or pending != (n_steps, n_steps):
            raise AssertionError(f"sample {i}: counters: tick {ticks} and {pending} (expected {n_steps}), "
                                 f"overflows {rtl_ovf} (model {model_ovf})")
        if sum(mon.stalls):
            hits["bp:bus"] += sum(mon.stalls)
        result["ticks"] += n_steps
        job_progress(job, f"sample {i}: bit-exact, {n_steps} ticks")


async def _train(dut, job, result, cfg, drv, lrn, hits, tx, ty):
    params = ParamReader(dut, cfg)
    for i in range(len(tx)):
        result["failing"] = {"kind": "train", "sample": i}
        sign = await drv.train_sample(tx[i], ty[i])
        cycles = drv.latency
        expected = train_cycles(cfg, train_tick_cycles(lrn, tx[i], ty[i], sign))
        res = lrn.train_sample(tx[i], ty[i])
        if sign != res.sign:
            raise ParamMismatch({"sample": i, "parameter": "sign", "expected": res.sign, "got": sign,
                                 "message": f"TRAIN sample {i}: sign {sign}, golden model {res.sign}"})
        stalled = job.get("bus_stall") is not None
        if cycles < expected if stalled else cycles != expected:
            bound = "at least " if stalled else ""
            raise ParamMismatch({"sample": i, "parameter": "cycles", "expected": expected, "got": cycles,
                                 "message": f"TRAIN sample {i}: {cycles} cycles, rtl.learning.train_cycles "
                                            f"gives {bound}{expected}"})
        result["train_values"] += compare_params(i, params.read(), lrn, "memories")
        result["train_ticks"] += cfg.n_steps
        if cfg.n_nudged:
            hits[f"nudge:{sign:+d}"] += 1
        if cfg.n_steps:
            hits["schedule:last_index"] += 1
        job_progress(job, f"TRAIN sample {i}: bit-exact (sign {sign:+d}), {cycles} cycles")


async def _run(dut, job: dict, result: dict):
    cfg = EqSpikeConfig.from_dict(job["config"])
    params, smp = _npz(job["params"]), _npz(job["samples"])
    n_mat = cfg.n_layers - 1
    w, b = [params[f"W{i}"] for i in range(n_mat)], [params[f"b{i + 1}"] for i in range(n_mat)]
    lrn = None
    if cfg.learning is not None:
        lrn = CoverageLearner(cfg, w, b)
        model = CoverageModel(cfg, lrn.inference_weights(), b)
    else:
        model = CoverageModel(cfg, w, b)
    hits = Counter()
    rng = np.random.default_rng(int(job.get("seed", 0)))
    Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start()
    drv = HostDriver(dut, cfg, rng, idle=job.get("idle", 0.0), backpressure=job.get("backpressure", 0.0),
                     max_gap=job.get("max_gap", 4))
    await drv.start()
    mon = SpikeMonitor(dut, cfg).start()
    sb = Scoreboard(cfg, model, track_float=False)
    t0 = time.perf_counter()
    try:
        result["failing"] = {"kind": "load", "sample": None}
        await drv.load(lrn if lrn is not None else model)
        if lrn is not None:
            result["train_values"] += compare_params(-1, ParamReader(dut, cfg).read(), lrn, "memories after load")
        await _inference(dut, job, result, cfg, drv, model, mon, sb, hits, rng, smp["x"], smp["y"], job["nudge"])
        if lrn is not None:
            await _train(dut, job, result, cfg, drv, lrn, hits, smp["train_x"], smp["train_y"])
        result["failing"] = None
    except Mismatch as e:
        e.waves = job.get("waves")
        result["mismatch"] = dict(e.to_json(), kind="inference")
        result["failure"] = e.describe()
        raise AssertionError(e.describe()) from None
    except ParamMismatch as e:
        result["mismatch"] = dict(e.info, kind="train")
        result["failure"] = e.info["message"]
        raise AssertionError(e.info["message"]) from None
    finally:
        mon.stop()
        if lrn is not None:
            hits.update(lrn.hits)
        hits.update(model.hits)
        result["hits"] = dict(hits)
        result["checked_registers"] = sb.checked_registers
        result["checked_spikes"] = sb.checked_spikes
        result["commands"] = drv.commands
        result["sample_seconds"] = time.perf_counter() - t0
