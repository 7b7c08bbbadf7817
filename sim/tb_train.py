"""cocotb testbench of on-chip learning: TRAIN samples through the host interface, every weight
and bias compared with :class:`golden_model.onchip.OnChipLearner` after every sample.

Launched by :func:`sim.runner.run_train` (never imported by pytest directly); the job JSON named
by ``EQSPIKE_COSIM_JOB`` says what to run:

``config``        config with a ``learning`` section (the Verilog was built from it)
``codes``         npz of the initial learning-format weight codes ``W0..`` and bias codes ``b1..``
``samples``       npz with ``x`` (samples, n0) and ``y`` (samples, nk) codes
``read_every``    also read every parameter back through host READ commands after samples
                  0, K, 2K, ... and the last one (0: never)
``stop_file``     stop before the next sample once this file exists

Per sample (the scoreboard): beta's sign answered by TRAIN equals the learner's; both stored
copies of every weight (``w_below`` and the transposed ``w_above``) and every bias, read from
the memories (VPI), equal the learner's codes; the TRAIN command's cycles equal
:func:`rtl.learning.train_cycles` of the model's spike counts. The first mismatch fails the
cocotb test with a readable report (also in the result JSON).
"""

from __future__ import annotations

import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock

from golden_model.config import EqSpikeConfig
from golden_model.onchip import OnChipLearner
from rtl.learning import train_cycles

from sim.driver import CLOCK_NS, HostDriver, ParamReader
from sim.rtl_harness import train_tick_cycles
from sim.tb_network import _npz, job_progress, run_job


class ParamMismatch(AssertionError):
    """A stored parameter, the sign or the cycle count differs from the golden model."""

    def __init__(self, info: dict):
        self.info = info
        super().__init__(info["message"])


def compare_params(sample: int, got: dict, lrn: OnChipLearner, source: str) -> int:
    """Raise :class:`ParamMismatch` on the first differing parameter; returns values compared."""
    checks = [(f"W{l}", w) for l, w in enumerate(got.get("w_below", []))]
    checks += [(f"W{l} (w_above copy in core {l})", w) for l, w in sorted(got.get("w_above", {}).items())]
    checks += [(f"b{l + 1}", b) for l, b in enumerate(got.get("bias", []))]
    compared = 0
    for name, arr in checks:
        l = int(name[1:].split()[0]) if name[0] == "W" else int(name[1:]) - 1
        want = lrn.weights[l] if name[0] == "W" else lrn.biases[l]
        bad = np.argwhere(arr != want)
        compared += arr.size
        if bad.size:
            idx = tuple(int(v) for v in bad[0])
            raise ParamMismatch({
                "sample": sample, "parameter": name.split()[0], "where": name, "index": list(idx),
                "expected": int(want[idx]), "got": int(arr[idx]), "differing": int(len(bad)), "source": source,
                "message": (f"sample {sample}: {name}{list(idx)} ({source}) = {int(arr[idx])}, golden model "
                            f"{int(want[idx])} ({len(bad)} of {arr.size} differ)")})
    return compared


@cocotb.test()
async def train_samples(dut):
    """TRAIN every sample of the job; compare every parameter with the learner after each."""
    await run_job(dut, _run, {"compared_values": 0, "host_read_values": 0})


async def _run(dut, job: dict, result: dict):
    cfg = EqSpikeConfig.from_dict(job["config"])
    codes = _npz(job["codes"])
    n_mat = cfg.n_layers - 1
    lrn = OnChipLearner(cfg, [codes[f"W{i}"] for i in range(n_mat)], [codes[f"b{i + 1}"] for i in range(n_mat)])
    samples = _npz(job["samples"])
    xs, ys = samples["x"], samples["y"]
    read_every = int(job.get("read_every", 0))
    Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start()
    drv = HostDriver(dut, cfg)
    await drv.start()
    params = ParamReader(dut, cfg)

    t0 = time.perf_counter()
    await drv.load(lrn)
    result["load_seconds"] = time.perf_counter() - t0
    result["compared_values"] += compare_params(-1, params.read(), lrn, "memories after the host load")
    t_samples = time.perf_counter()
    try:
        for i, (x, y) in enumerate(zip(xs, ys)):
            if job.get("stop_file") and os.path.exists(job["stop_file"]):
                result["stopped"] = f"stopped before sample {i}"
                break
            sign = await drv.train_sample(x, y)
            cycles = drv.latency
            ticks = await drv.status("tick")
            tick_cyc = await drv.status("cycles")
            expected_cycles = train_cycles(cfg, train_tick_cycles(lrn, x, y, sign))
            res = lrn.train_sample(x, y)
            if sign != res.sign:
                raise ParamMismatch({"sample": i, "parameter": "sign", "expected": res.sign, "got": sign,
                                     "message": f"sample {i}: TRAIN answered sign {sign}, golden model {res.sign}"})
            if ticks != cfg.n_steps:
                raise AssertionError(f"sample {i}: tick counter {ticks}, expected {cfg.n_steps}")
            if cycles != expected_cycles:
                raise ParamMismatch({"sample": i, "parameter": "cycles", "expected": expected_cycles, "got": cycles,
                                     "message": f"sample {i}: TRAIN took {cycles} cycles, formula "
                                                f"rtl.learning.train_cycles gives {expected_cycles}"})
            compared = compare_params(i, params.read(), lrn, "memories")
            host = 0
            if read_every and (i % read_every == 0 or i == len(xs) - 1):
                w, b = await drv.read_params()
                host = compare_params(i, {"w_below": w, "bias": b}, lrn, "host READ")
            result["compared_values"] += compared
            result["host_read_values"] += host
            result["samples"].append({"sign": sign, "cycles": cycles, "expected_cycles": expected_cycles,
                                      "tick_cycles": tick_cyc, "compared": compared, "host_read": host,
                                      "prediction": res.prediction, "saturations": lrn.saturations})
            job_progress(job, f"sample {i}: bit-exact (sign {sign:+d}, {compared} values"
                              f"{f', {host} host reads' if host else ''}), {cycles} cycles = formula, "
                              f"{time.perf_counter() - t_samples:.1f} s")
    except ParamMismatch as e:
        result["mismatch"] = e.info
        result["failure"] = e.info["message"]
        raise AssertionError(e.info["message"]) from None
    finally:
        result["sample_seconds"] = time.perf_counter() - t_samples
        result["commands"] = drv.commands
