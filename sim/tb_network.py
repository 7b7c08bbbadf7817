"""cocotb testbench of the network top: samples through the host interface, checked tick by tick.

Launched by :func:`sim.runner.run_job` (never imported by pytest directly); the job JSON named
by ``EQSPIKE_COSIM_JOB`` says what to run:

``config``          config the golden model uses (normally the one the Verilog was built from)
``codes``           npz of integer weight/bias codes ``W0.., b1..`` (loaded through the host port)
``float_weights``   optional npz of float weights for the float binary reference
``samples``         npz with ``x`` (samples, n0) and ``y`` (samples, nk) codes, optional ``label``
``nudge``           nudge sign per sample (+1/-1; 0 = free phase only)
``registers_every`` compare every register every K ticks (1 = every tick); spikes every tick
``idle``, ``backpressure``, ``max_gap``, ``seed``   host-side stream pattern
``float_bound``     optional bound on mean |s_rtl - s_float| per layer and tick
``read_checks``     host READ commands per sample cross-checked against the backdoor

``EQSPIKE_COSIM_PROFILE=FILE`` in the environment writes a cProfile of the testbench's Python.

Per tick it compares every bus spike (monitor) and, on register ticks, every per-neuron register
with the golden model (:class:`sim.scoreboard.Scoreboard`). The first mismatch fails the cocotb
test with a readable report, also written to the result JSON.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock

from golden_model.config import EqSpikeConfig
from golden_model.fixed_model import FixedModel
from golden_model.float_model import Params

from rtl.network import tick_cycles
from sim.driver import CLOCK_NS, HostDriver
from sim.monitor import SpikeMonitor
from sim.scoreboard import Mismatch, Scoreboard


def _load_job() -> dict:
    path = os.environ.get("EQSPIKE_COSIM_JOB")
    if not path:
        raise RuntimeError("EQSPIKE_COSIM_JOB is not set (run this testbench through sim.runner)")
    with open(path) as f:
        return json.load(f)


def _npz(path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def job_progress(job: dict, line: str) -> None:
    """Append ``line`` to the job's progress file (``job["progress"]``, read by the launcher's
    progress bar), if it names one."""
    if job.get("progress"):
        with open(job["progress"], "a") as f:
            f.write(line + "\n")


def _write(job: dict, result: dict) -> None:
    with open(job["result"], "w") as f:
        json.dump(result, f, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o))


async def run_job(dut, run, result: dict) -> None:
    """Load the job, ``await run(dut, job, result)``, record the first failure in ``result``
    and write it to the job's result file whatever happens (the runner reads it back)."""
    job = _load_job()
    result.update({"samples": [], "failure": None, "mismatch": None, "load_seconds": 0.0,
                   "sample_seconds": 0.0, "commands": 0})
    try:
        await run(dut, job, result)
    except Exception as e:
        if not result["failure"]:
            result["failure"] = f"{type(e).__name__}: {e}"
        raise
    finally:
        _write(job, result)


@cocotb.test()
async def run_samples(dut):
    """Every sample of the job: free (and nudged) phase, compared with the golden model each tick."""
    await run_job(dut, _run, {"checked_registers": 0, "checked_spikes": 0, "load_commands": 0})


async def _run_ticks(drv, sb, mon, cfg, n_steps: int, sign: int, every: int, where: str, hw_cfg=None) -> tuple:
    """RUN one sample's ``n_steps`` ticks, ``every`` ticks per command (never across the phase
    boundary), checking every tick's spikes and, after each command, every register
    (:meth:`Scoreboard.check_tick`). Returns the RTL's, golden model's and float model's
    predictions at the end of the free phase, and the cycles the sample's ticks should take
    (``rtl.network.tick_cycles`` of the checked spikes under ``hw_cfg``, the config the design
    was built from, default ``cfg``; exact without bus stalls)."""
    hw_cfg = hw_cfg or cfg
    preds = (None, None, None)
    t, formula = 0, 0
    prev = [0] * cfg.n_layers
    while t < n_steps:
        phase_end = cfg.n_free if t < cfg.n_free else n_steps
        chunk = min(every, phase_end - t)
        s_sign = 0 if t < cfg.n_free else sign
        done = await drv.run_ticks(chunk, s_sign)
        if done != t + chunk:
            raise AssertionError(f"{where}: RUN of {chunk} ticks from tick {t} answered tick counter {done}, "
                                 f"expected {t + chunk}")
        regs = drv.registers()
        for c in range(chunk):
            t += 1
            spikes = mon.spikes(t)
            sb.check_tick(s_sign, spikes, regs if c == chunk - 1 else None)
            formula += tick_cycles(hw_cfg, prev, spikes)
            prev = [int(q.sum()) for q in spikes]
        if t == cfg.n_free:
            preds = (int(np.argmax(regs[-1]["s"])), *sb.predictions())
    return preds, formula


async def _run(dut, job: dict, result: dict):
    result["registers_every"] = int(job.get("registers_every", 1))
    cfg = EqSpikeConfig.from_dict(job["config"])
    hw_cfg = EqSpikeConfig.from_dict(job["rtl_config"]) if job.get("rtl_config") else cfg   # the cycle formula's
    codes = _npz(job["codes"])
    n_mat = cfg.n_layers - 1
    model = FixedModel(cfg, [codes[f"W{i}"] for i in range(n_mat)], [codes[f"b{i + 1}"] for i in range(n_mat)])
    float_params = None
    if job.get("float_weights"):
        fw = _npz(job["float_weights"])
        float_params = Params([fw[f"W{i}"] for i in range(n_mat)], [fw[f"b{i + 1}"] for i in range(n_mat)])
    samples = _npz(job["samples"])
    xs, ys = samples["x"], samples["y"]
    labels = samples.get("label")
    nudge = job.get("nudge") or [0] * len(xs)
    every = max(1, int(job.get("registers_every", 1)))
    rng = np.random.default_rng(int(job.get("seed", 0)))
    profile = None
    if os.environ.get("EQSPIKE_COSIM_PROFILE"):
        import cProfile
        profile = cProfile.Profile()
        profile.enable()

    Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start()
    drv = HostDriver(dut, cfg, rng, idle=job.get("idle", 0.0), backpressure=job.get("backpressure", 0.0),
                     max_gap=job.get("max_gap", 4))
    await drv.start()
    mon = SpikeMonitor(dut, cfg).start()
    sb = Scoreboard(cfg, model, float_params, job.get("float_bound"), track_float=job.get("track_float", True))

    t_start = time.perf_counter()
    await drv.load(model)
    result["load_seconds"] = time.perf_counter() - t_start
    result["load_commands"] = drv.commands
    t_samples = time.perf_counter()
    cpu_samples = time.process_time()
    try:
        offset = int(job.get("sample_offset", 0))
        for i, (x, y) in enumerate(zip(xs, ys)):
            if job.get("stop_file") and os.path.exists(job["stop_file"]):
                result["stopped"] = f"stopped before sample {offset + i}: another job failed"
                break
            sign = int(nudge[i])
            n_steps = cfg.n_free + (cfg.n_nudged if sign else 0)
            await drv.reset(x, y)
            mon.forget()
            sb.start(x, y, sample=offset + i)
            ovf_before = sum(model.overflows.values())
            (rtl_pred, golden_pred, float_pred), formula = await _run_ticks(drv, sb, mon, cfg, n_steps, sign,
                                                                             every, f"sample {offset + i}", hw_cfg)
            # host-port cross-checks: READ of a few registers equals the backdoor; counters
            regs = drv.registers()
            for _ in range(int(job.get("read_checks", 0))):
                await drv.check_random_read(rng, regs, f"sample {offset + i}")
            ticks = await drv.status("tick")
            cycles = await drv.status("cycles")
            rtl_ovf = 0
            for l in range(cfg.n_layers):
                rtl_ovf += await drv.status("overflows", l)
            model_ovf = sum(model.overflows.values()) - ovf_before
            stalled = sum(mon.stalls) > 0     # bus stalls only add cycles: then a least count
            if cycles != formula and (not stalled or cycles < formula):
                raise AssertionError(f"sample {offset + i}: {cycles} cycles, the formula rtl.network.tick_cycles "
                                     f"gives {formula}" + (" (at least: bus stalls)" if stalled else ""))
            if ticks != n_steps or rtl_ovf != model_ovf:
                raise AssertionError(f"sample {offset + i}: counters: tick {ticks} (expected {n_steps}), overflows "
                                     f"{rtl_ovf} (model {model_ovf})")
            result["samples"].append({
                "ticks": ticks, "cycles": cycles, "formula_cycles": formula, "spikes": sb.stats.spikes,
                "bit_exact": True,
                "rtl_pred": rtl_pred, "golden_pred": golden_pred, "float_pred": float_pred,
                "label": None if labels is None else int(labels[i]),
                "float_diff_max": sb.stats.float_diff_max, "overflows": rtl_ovf,
                "bus_stalls": list(mon.stalls),
            })
            job_progress(job, f"sample {offset + i}: bit-exact, {ticks} ticks, {cycles} cycles, "
                              f"prediction RTL {rtl_pred} golden {golden_pred} float {float_pred}, "
                              f"{time.perf_counter() - t_samples:.1f} s")
    except Mismatch as e:
        e.waves = job.get("waves")
        result["mismatch"] = e.to_json()
        result["failure"] = e.describe()
        raise AssertionError(e.describe()) from None
    except AssertionError as e:
        result["failure"] = str(e)
        raise
    finally:
        mon.stop()
        result["sample_seconds"] = time.perf_counter() - t_samples
        result["sample_cpu_seconds"] = time.process_time() - cpu_samples
        result["checked_registers"] = sb.checked_registers
        result["checked_spikes"] = sb.checked_spikes
        result["commands"] = drv.commands
        result["registers_every"] = every
        if profile is not None:
            profile.disable()
            profile.dump_stats(os.environ["EQSPIKE_COSIM_PROFILE"])
