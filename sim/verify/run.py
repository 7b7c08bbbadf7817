"""Build one design's Verilog in Verilator and run :mod:`sim.tb_verify` on it.

Builds go through :func:`sim.runner.build` (cached per config and RTL variant; a planted bug
builds under its own root, :func:`sim.verify.planted.planted`), runs through
:func:`sim.runner.run_job`. The outcome is a plain dict (JSON-able), so the same function can
run in another process or on a Ray worker.
"""

from __future__ import annotations

import hashlib
import time

from sim.runner import CosimError, build, run_job

from .design import Design
from .planted import planted

__all__ = ["run_design", "design_key"]


def design_key(d: Design) -> str:
    """Short hash of everything that decides a run (run directory name)."""
    h = hashlib.sha256()
    h.update(d.cfg.to_json(indent=None).encode())
    for arr in list(d.weights) + list(d.biases) + [d.x, d.y, d.train_x, d.train_y]:
        h.update(arr.tobytes())
    h.update(repr((d.nudge, d.idle, d.backpressure, d.max_gap, d.bus_stall, d.host_seed, d.plant)).encode())
    return h.hexdigest()[:12]


def run_design(d: Design, waves: bool = False, optimise: bool = True, log=print) -> dict:
    """Run design ``d``; returns ``{"ok", "failure", "mismatch", "failing", "ticks", ...}``.

    ``ok`` is False on any mismatch, hang or simulator failure; ``failing`` then names the
    sample (``{"kind": "inference"|"train"|"load", "sample": i}``) that was running.
    """
    t0 = time.perf_counter()
    with planted(d.plant):
        b = build(d.cfg, "verilator", waves=waves, bus_stall=d.bus_stall, optimise=optimise, log=log)
    t_build = time.perf_counter() - t0
    name = f"verify-{design_key(d)}"
    run_dir = (b.directory / "runs" / name).resolve()
    d.save(run_dir / "design")
    job = {"config": d.cfg.to_dict(), "params": str(run_dir / "design" / "params.npz"),
           "samples": str(run_dir / "design" / "samples.npz"), "nudge": [int(s) for s in d.nudge],
           "idle": d.idle, "backpressure": d.backpressure, "max_gap": d.max_gap, "seed": d.host_seed,
           "bus_stall": d.bus_stall}
    try:
        res = run_job(b, job, "sim.tb_verify", name=name, seed=d.host_seed)
        ok, failure = True, None
    except CosimError as e:
        res = dict(getattr(e, "result", None) or {})
        ok, failure = False, res.get("failure") or str(e)
    return {"ok": ok, "failure": failure, "mismatch": res.get("mismatch"), "failing": res.get("failing"),
            "ticks": int(res.get("ticks", 0)), "train_ticks": int(res.get("train_ticks", 0)),
            "checked_registers": int(res.get("checked_registers", 0)),
            "checked_spikes": int(res.get("checked_spikes", 0)), "train_values": int(res.get("train_values", 0)),
            "hits": res.get("hits", {}), "build_seconds": b.build_seconds if b.built_now else 0.0,
            "built_now": b.built_now, "wall_seconds": time.perf_counter() - t0, "build_wall": t_build,
            "waves": res.get("waves"), "log": res.get("log"), "build_dir": str(b.directory)}
