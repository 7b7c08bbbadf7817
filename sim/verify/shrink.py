"""Shrinking a failing design to a small one that still fails, and the replay folder.

:func:`shrink` first cuts the design down to the failing sample (for an inference mismatch
also the ticks after the failing one; for a TRAIN sample, the golden learner's weights, biases
and LFSR state before it become the design's starting point), then greedily tries smaller
designs, keeping each that still fails: drop a hidden layer, halve a layer, one lane, no host
idle/backpressure and no bus stalls. Every try is a Verilator build and run, so the number of
tries is capped.

:func:`write_replay` saves the design (:meth:`Design.save`), the failure, the command that
replays it (``eqspike verify --replay FOLDER``) and a VCD waveform of the failing run.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np

from golden_model.config import ConfigError
from golden_model.onchip import OnChipLearner

from .design import Design
from .run import run_design

__all__ = ["failing_sample", "candidates", "shrink", "write_replay"]


def _sub(d: Design, **changes) -> Design | None:
    """``d`` with ``changes`` (``cfg`` changes in ``changes["cfg"]``); None if the config is refused."""
    try:
        cfg = d.cfg.replace(**changes.pop("cfg", {}))
    except ConfigError:
        return None
    return d.replace(cfg=cfg, **changes)


def failing_sample(d: Design, res: dict) -> Design | None:
    """The design cut down to the sample that failed (see the module docstring); None when the
    failure is not in a sample (weight load)."""
    f = res.get("failing") or {}
    i = f.get("sample")
    if f.get("kind") == "inference":
        sign = int(d.nudge[i])
        cfg_changes = {}
        t = (res.get("mismatch") or {}).get("tick") or f.get("tick")
        if t:        # the schedules' entries up to t do not depend on the phase lengths
            if t <= d.cfg.n_free:
                cfg_changes, sign = {"n_free": t, "n_nudged": 0}, 0
            elif sign:
                cfg_changes = {"n_nudged": t - d.cfg.n_free}
        empty = np.zeros((0, d.cfg.layers[0]), dtype=np.int64)
        out = _sub(d, cfg=cfg_changes, x=d.x[i:i + 1], y=d.y[i:i + 1], nudge=[sign], train_x=empty,
                   train_y=np.zeros((0, d.cfg.layers[-1]), dtype=np.int64))
        if out is not None and out.cfg.learning is not None:
            out = out.replace(train_x=out.train_x[:0], train_y=out.train_y[:0])
        return out
    if f.get("kind") == "train":
        lrn = OnChipLearner(d.cfg, d.weights, d.biases)
        for k in range(i):
            lrn.train_sample(d.train_x[k], d.train_y[k])
        lrn_cfg = dataclasses.replace(d.cfg.learning, seed=int(lrn.draws.state))
        return _sub(d, cfg={"learning": lrn_cfg}, weights=[w.copy() for w in lrn.weights],
                    biases=[b.copy() for b in lrn.biases], x=d.x[:0], y=d.y[:0], nudge=[],
                    train_x=d.train_x[i:i + 1], train_y=d.train_y[i:i + 1])
    return None


def _keep_neurons(d: Design, l: int, m: int) -> Design | None:
    """Keep the first ``m`` neurons of layer ``l`` (weights, biases, inputs, targets sliced)."""
    k = d.cfg.n_layers - 1
    w, b = [x.copy() for x in d.weights], [x.copy() for x in d.biases]
    if l >= 1:
        w[l - 1] = w[l - 1][:, :m]
        b[l - 1] = b[l - 1][:m]
    if l < k:
        w[l] = w[l][:m, :]
    layers = list(d.cfg.layers)
    layers[l] = m
    ch = {}
    if l == 0:
        ch.update(x=d.x[:, :m], train_x=d.train_x[:, :m])
    if l == k:
        ch.update(y=d.y[:, :m], train_y=d.train_y[:, :m])
    return _sub(d, cfg={"layers": tuple(layers)}, weights=w, biases=b, **ch)


def _drop_layer(d: Design, l: int) -> Design | None:
    """Remove hidden layer ``l``; layer l-1 feeds l+1 through rows of ``W_l`` (repeated)."""
    cfg = d.cfg
    n_prev = cfg.layers[l - 1]
    rows = np.arange(n_prev) % cfg.layers[l]
    w = list(d.weights[:l - 1]) + [d.weights[l][rows, :]] + list(d.weights[l + 1:])
    b = list(d.biases[:l - 1]) + list(d.biases[l:])
    ch = {"layers": cfg.layers[:l] + cfg.layers[l + 1:], "weights": cfg.weights[:l - 1] + cfg.weights[l:],
          "biases": cfg.biases[:l - 1] + cfg.biases[l:]}
    if cfg.learning is not None:
        lr = cfg.learning
        ch["learning"] = dataclasses.replace(lr, rate_mult=lr.rate_mult[:l - 1] + lr.rate_mult[l:],
                                             rate_shift=lr.rate_shift[:l - 1] + lr.rate_shift[l:])
    return _sub(d, cfg=ch, weights=w, biases=b)


def candidates(d: Design):
    """Smaller variants of ``d``, most reducing first (each may be None: refused config)."""
    k = d.cfg.n_layers - 1
    for l in range(1, k):
        yield f"drop layer {l}", _drop_layer(d, l)
    for l in sorted(range(k + 1), key=lambda l: -d.cfg.layers[l]):
        n = d.cfg.layers[l]
        if n > 1:
            yield f"layer {l}: {n} -> {(n + 1) // 2} neurons", _keep_neurons(d, l, (n + 1) // 2)
    if d.cfg.lanes != 1:
        yield "1 lane", _sub(d, cfg={"lanes": 1, "update_lanes": 1})
    if d.bus_stall is not None or d.idle or d.backpressure:
        yield "no stalls", d.replace(bus_stall=None, idle=0.0, backpressure=0.0)


def shrink(d: Design, res: dict, max_runs: int = 8, optimise: bool = False, log=print) -> tuple:
    """Smallest failing design found from ``d`` (which failed with ``res``) in ``max_runs``
    runs; returns ``(design, result, runs, steps)`` (steps: what was accepted)."""
    cur, cur_res, runs, steps = d, res, 0, []

    def attempt(what, cand):
        nonlocal cur, cur_res, runs
        if cand is None:
            return False
        runs += 1
        r = run_design(cand, optimise=optimise, log=lambda *a: None)
        log(f"  shrink try {runs}: {what}: {'still fails' if not r['ok'] else 'passes'}")
        if r["ok"]:
            return False
        cur, cur_res = cand, r
        steps.append(what)
        return True

    attempt("failing sample only", failing_sample(cur, cur_res))
    improved = True
    while improved and runs < max_runs:
        improved = False
        for what, cand in candidates(cur):
            if runs >= max_runs:
                break
            if attempt(what, cand):
                improved = True
                break
    if steps and steps[-1] != "failing sample only" and runs < max_runs + 1:
        attempt("failing sample only", failing_sample(cur, cur_res))
    return cur, cur_res, runs, steps


def write_replay(folder, d: Design, res: dict, waves: bool = True, optimise: bool = False, log=print) -> dict:
    """Write the replay folder of failing design ``d``; returns what was written.

    With ``waves`` the design is rerun in a tracing build: ``waves.vcd`` is its waveform and
    ``reproduced`` says whether that rerun failed too.
    """
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    d.save(folder)
    info = {"design": d.describe(), "failure": res.get("failure"), "mismatch": res.get("mismatch"),
            "failing": res.get("failing"), "command": f"eqspike verify --replay {folder.resolve()}",
            "planted": d.plant, "waves": None, "reproduced": None}
    if waves:
        r = run_design(d, waves=True, optimise=optimise, log=lambda *a: None)
        info["reproduced"] = not r["ok"]
        info["waves_failure"] = r["failure"]
        if r.get("waves") and Path(r["waves"]).is_file():
            shutil.copy2(r["waves"], folder / "waves.vcd")
            info["waves"] = str(folder / "waves.vcd")
    (folder / "failure.json").write_text(json.dumps(info, indent=1, default=str) + "\n")
    (folder / "command.txt").write_text(info["command"] + "\n")
    log(f"replay folder: {folder} ({'waveform ' + info['waves'] if info['waves'] else 'no waveform'}); "
        f"replay: {info['command']}")
    return info
