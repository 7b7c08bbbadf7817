"""Real data-set samples through the generated Verilog with trained weights (``eqspike cosim``).

:func:`cosim_dataset` loads a checkpoint (``eqspike train``'s folder: ``weights.npz`` float
weights, ``config.json`` hardware config), quantises the weights to the config
(:func:`golden_model.fixed_model.quantise_params`), builds the Verilog for the config (cached),
and runs test samples through it, each a free phase and a nudged phase (nudge sign alternating
+1/-1 by sample), checked tick by tick against the golden model (:mod:`sim.tb_network`). The
float binary reference is :class:`~golden_model.float_model.FloatModel` with the checkpoint's
float weights and ``Dynamics.from_config(cfg)``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golden_model.config import ConfigError, EqSpikeConfig
from golden_model.fixed_model import FixedModel, quantise_params
from runtime.executor import Executor, emit

from .runner import Build, CosimError, build, run_samples

__all__ = ["JSON_KEYS", "CosimReport", "cosim_dataset", "load_weights", "TRAIN_JSON_KEYS", "TrainReport",
           "train_start", "cosim_train"]

#: Keys of ``eqspike cosim --json`` (exactly these).
JSON_KEYS = ("samples", "bit_exact_samples", "rtl_accuracy", "golden_accuracy", "float_accuracy",
             "cycles_per_sample", "formula_cycles_per_sample")


@dataclass
class CosimReport:
    """What one ``eqspike cosim`` run measured."""

    cfg: EqSpikeConfig
    simulator: str
    samples: int
    bit_exact_samples: int
    ticks: list
    cycles: list
    spikes: list
    rtl_pred: list
    golden_pred: list
    float_pred: list
    labels: list
    float_diff_max: list
    checked_registers: int
    checked_spikes: int
    registers_every: int
    build_seconds: float
    built_now: bool
    run_seconds: float
    sim_seconds: float
    load_seconds: float
    quant: str
    mismatch: dict | None = None
    waves: str | None = None
    extra: dict = field(default_factory=dict)
    formula_cycles: list = field(default_factory=list)

    def accuracy(self, pred) -> float:
        return float(np.mean(np.asarray(pred) == np.asarray(self.labels))) if self.labels else 0.0

    @staticmethod
    def agreement(a, b) -> float:
        return float(np.mean(np.asarray(a) == np.asarray(b))) if len(a) else 0.0

    def to_json(self) -> dict:
        return {
            "samples": self.samples,
            "bit_exact_samples": self.bit_exact_samples,
            "rtl_accuracy": self.accuracy(self.rtl_pred),
            "golden_accuracy": self.accuracy(self.golden_pred),
            "float_accuracy": self.accuracy(self.float_pred),
            "cycles_per_sample": float(np.mean(self.cycles)) if self.cycles else 0.0,
            "formula_cycles_per_sample": float(np.mean(self.formula_cycles)) if self.formula_cycles else 0.0,
        }

    def table(self) -> str:
        n = len(self.rtl_pred)
        pct = lambda v: f"{100 * v:.2f}%"
        cyc = np.asarray(self.cycles or [0], dtype=float)
        tk = np.asarray(self.ticks or [0], dtype=float)
        rate = cyc.sum() / self.sim_seconds if self.sim_seconds else 0.0
        lines = [
            f"co-simulation: {self.simulator}, {'-'.join(map(str, self.cfg.layers))}, lanes {self.cfg.lanes}, "
            f"update lanes {self.cfg.update_lanes}, mul_stages {self.cfg.mul_stages}, weights "
            f"{'/'.join(str(f.width) for f in self.cfg.weights)}-bit, "
            f"{self.cfg.n_free} free + {self.cfg.n_nudged} nudged ticks per sample",
            f"samples: {n} of {self.samples} run, {self.bit_exact_samples} bit-exact "
            f"(every spike every tick; every register of every neuron "
            f"{'every tick' if self.registers_every == 1 else f'every {self.registers_every} ticks'})",
            f"ticks: {int(tk.sum())} ({tk.mean():.0f} per sample); cycles: {int(cyc.sum())} "
            f"({cyc.mean():.0f} per sample, {cyc.sum() / max(tk.sum(), 1):.1f} per tick); formula "
            f"rtl.network.tick_cycles of the spikes: {np.mean(self.formula_cycles or [0]):.0f} per sample, equal on "
            f"{sum(int(a == b) for a, b in zip(self.cycles, self.formula_cycles))}/{n} samples",
            f"spike-train agreement with the golden model: {self.bit_exact_samples}/{n} samples, "
            f"{sum(self.spikes)} spikes, {self.checked_spikes} spike slots and {self.checked_registers} "
            "register values compared",
            f"prediction agreement: RTL vs golden {pct(self.agreement(self.rtl_pred, self.golden_pred))}, "
            f"RTL vs float binary {pct(self.agreement(self.rtl_pred, self.float_pred))}, "
            f"golden vs float binary {pct(self.agreement(self.golden_pred, self.float_pred))}",
            f"accuracy: RTL {pct(self.accuracy(self.rtl_pred))}, golden {pct(self.accuracy(self.golden_pred))}, "
            f"float binary {pct(self.accuracy(self.float_pred))}",
            f"max mean |s_rtl - s_float| per layer: "
            + ", ".join(f"L{l + 1} {max(d[l] for d in self.float_diff_max):.4f}"
                        for l in range(self.cfg.n_layers - 1)) if self.float_diff_max else "",
            f"quantisation: {self.quant}",
            f"time: build {self.build_seconds:.1f} s ({'built now' if self.built_now else 'cached'}), "
            f"weight load {self.load_seconds:.1f} s, samples {self.sim_seconds:.1f} s "
            f"({self.sim_seconds / max(n, 1):.2f} s per sample, {rate:,.0f} simulated cycles/s), "
            f"total {self.run_seconds:.1f} s",
            f"simulator processes' CPU: {self.extra.get('cpu_seconds', 0.0):.1f} s "
            f"({self.extra.get('cpu_seconds', 0.0) / max(n, 1):.2f} s per sample, "
            f"{cyc.sum() / max(self.extra.get('cpu_seconds', 0.0), 1e-9):,.0f} simulated cycles per CPU second; "
            f"{self.extra.get('jobs', 1)} parallel job(s))",
        ]
        if self.extra.get("waves_files"):
            lines.append("waveforms: " + ", ".join(self.extra["waves_files"]))
        return "\n".join(line for line in lines if line)


def load_weights(path):
    """``(params, cfg)`` from a checkpoint folder or weights .npz (``eqspike train``'s layout)."""
    from experiments.training import load_checkpoint
    ck = load_checkpoint(path)
    return ck.params, ck.config


def check_same_widths(model_cfg: EqSpikeConfig, rtl_cfg: EqSpikeConfig) -> None:
    """Raises :class:`ConfigError` unless the RTL config keeps the golden model config's widths
    (weight, bias and state formats, hence every state memory's layout): the testbench loads the
    model's codes into the RTL and reads its registers back by those layouts. Roundings,
    pipelining, lanes and update lanes may differ."""
    from rtl.layer import state_memories

    for name in ("weights", "biases"):
        a, b = getattr(model_cfg, name), getattr(rtl_cfg, name)
        for i, (fa, fb) in enumerate(zip(a, b)):
            if (fa.width, fa.frac, fa.signed) != (fb.width, fb.frac, fb.signed):
                raise ConfigError(
                    f"the RTL config's {name}[{i}] format is {fb.width} bits (frac {fb.frac}), the checkpoint "
                    f"config's {fa.width} bits (frac {fa.frac}): the golden model's codes do not fit that "
                    "design; to check a build made from the checkpoint (eqspike synth --weights), pass its "
                    "config.json as --config (the checkpoint is quantised into it)")
    for l in range(model_cfg.n_layers):
        ma, mb = state_memories(model_cfg, l), state_memories(rtl_cfg, l)
        if {k: v.size for k, v in ma.items()} != {k: v.size for k, v in mb.items()}:
            raise ConfigError(f"the RTL config's layer {l} state registers differ in width from the checkpoint "
                              "config's; pass a build's config.json as --config to check the build")


def cosim_dataset(weights, dataset: str = "digits", samples: int = 200, simulator: str = "verilator",
                  waves: bool = False, lanes: int | None = None, registers_every: int = 1, data_dir=None,
                  first: int = 0, seed: int = 0, idle: float = 0.0, backpressure: float = 0.0,
                  jobs: int | None = None, float_bound: float | None = None, record_waves: bool = True,
                  rtl_config: EqSpikeConfig | None = None, log=print, executor=None,
                  quiet: bool = False, config: EqSpikeConfig | None = None) -> CosimReport:
    """Run ``samples`` test samples of ``dataset`` (test split, from sample ``first``) through the
    RTL in ``jobs`` simulator processes (contiguous slices of the samples), each a task of
    ``executor`` (default: a local Ray with ``jobs`` CPUs; ``jobs=1`` runs in this process).
    One progress bar counts the samples as the simulators finish them (with an ETA; ``quiet``:
    none).

    Raises :class:`CosimError` (``.report`` holds the partial :class:`CosimReport`) on the first
    mismatch; every job stops at its next sample then. Without ``waves`` the failing sample is
    rerun alone in a tracing build (``record_waves``) so the report can name a waveform.
    ``rtl_config`` generates the Verilog from another config than the checkpoint's (same layers):
    a modified design checked against the checkpoint config's golden model; it must keep the
    checkpoint's register and parameter widths (:func:`check_same_widths`). ``config`` replaces
    the checkpoint's config altogether (same layers): the checkpoint's float weights are quantised
    into its formats and both the golden model and the RTL come from it, as ``eqspike synth
    --weights`` builds them (pass that build's ``config.json``).
    """
    from experiments.data import load_dataset

    t0 = time.perf_counter()
    params, cfg = load_weights(weights)
    if config is not None:
        if config.layers != cfg.layers:
            raise ConfigError(f"the config has layers {list(config.layers)}, the checkpoint {list(cfg.layers)}")
        cfg = config
    if lanes is not None:
        cfg = cfg.replace(lanes=lanes)
    if tuple(params.layers) != cfg.layers:
        raise ConfigError(f"weights are for layers {list(params.layers)}, config has {list(cfg.layers)}")
    data = load_dataset(dataset, data_dir)
    if data.n_inputs != cfg.layers[0]:
        raise ValueError(f"{dataset} has {data.n_inputs} inputs, the network {cfg.layers[0]}")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, not {samples}")
    if first < 0 or first + samples > len(data.x_test):
        raise ValueError(f"samples {first}..{first + samples - 1} are outside the {len(data.x_test)} test samples")
    w, b, qrep = quantise_params(cfg, params)
    model = FixedModel(cfg, w, b)
    x = data.x_test[first:first + samples]
    labels = data.y_test[first:first + samples]
    x_codes = model.encode_inputs(x)
    y_codes = np.zeros((samples, cfg.layers[-1]), dtype=np.int64)
    y_codes[np.arange(samples), labels] = 1 << cfg.s.frac
    nudge = [1 if (first + i) % 2 == 0 else -1 for i in range(samples)]

    rtl_cfg = cfg
    if rtl_config is not None:
        rtl_cfg = rtl_config if lanes is None else rtl_config.replace(lanes=lanes)
        if rtl_cfg.layers != cfg.layers:
            raise ConfigError(f"the RTL config has layers {list(rtl_cfg.layers)}, the checkpoint {list(cfg.layers)}")
        check_same_widths(cfg, rtl_cfg)
    b_: Build = build(rtl_cfg, simulator, waves=waves, log=log)
    log(f"{simulator} model: {b_.directory} ({'built in %.1f s' % b_.build_seconds if b_.built_now else 'cached'})")
    jobs = max(1, min(jobs or default_jobs(), samples))
    bounds = np.linspace(0, samples, jobs + 1).round().astype(int)
    stop_file = b_.directory / "runs" / f"{dataset}-{first}-{samples}.stop"
    stop_file.unlink(missing_ok=True)
    shared = {"rtl_cfg": rtl_cfg, "simulator": simulator, "waves": waves, "model": model, "cfg": cfg,
              "x": x_codes, "y": y_codes, "nudge": nudge, "labels": labels, "params": params,
              "dataset": dataset, "first": first, "registers_every": registers_every, "idle": idle,
              "backpressure": backpressure, "seed": seed, "float_bound": float_bound, "stop_file": str(stop_file)}
    slices = [(j, int(bounds[j]), int(bounds[j + 1])) for j in range(jobs)]
    t_run = time.perf_counter()
    ex = executor if executor is not None else Executor(jobs=jobs, quiet=quiet)
    lines = _InOrder(first, log)
    with ex:
        outs = ex.map(_run_slice, slices, shared=shared, desc="cosim", unit="sample", progress_total=samples,
                      keys=[f"{first + lo}-{hi - lo}" for _, lo, hi in slices], on_event=lines.add)
    lines.flush()
    wall = time.perf_counter() - t_run
    stop_file.unlink(missing_ok=True)
    res, err = _merge_slices(slices, outs, first, registers_every)
    res["sample_seconds"] = wall
    rows = res["samples"]
    rep = CosimReport(
        cfg=rtl_cfg, simulator=simulator, samples=samples, bit_exact_samples=sum(r["bit_exact"] for r in rows),
        ticks=[r["ticks"] for r in rows], cycles=[r["cycles"] for r in rows], spikes=[r["spikes"] for r in rows],
        formula_cycles=[r["formula_cycles"] for r in rows],
        rtl_pred=[r["rtl_pred"] for r in rows], golden_pred=[r["golden_pred"] for r in rows],
        float_pred=[r["float_pred"] for r in rows], labels=[int(v) for v in labels[:len(rows)]],
        float_diff_max=[r["float_diff_max"] for r in rows], checked_registers=res["checked_registers"],
        checked_spikes=res["checked_spikes"], registers_every=res["registers_every"],
        build_seconds=b_.build_seconds, built_now=b_.built_now, run_seconds=time.perf_counter() - t0,
        sim_seconds=res["sample_seconds"], load_seconds=res["load_seconds"], quant=qrep.describe(),
        mismatch=res.get("mismatch"), waves=res.get("waves"),
        extra={"first": first, "build_dir": str(b_.directory), "logs": res["log"], "jobs": jobs,
               "waves_files": res.get("waves_files", []), "cpu_seconds": res.get("cpu_seconds", 0.0)})
    if err is not None:
        if rep.mismatch is not None and not waves and record_waves:
            k = rep.mismatch["sample"]
            log(f"first mismatch in sample {k}: {rep.mismatch['message']}")
            log(f"recording the waveform of sample {k} (building {simulator} with tracing) ...")
            try:
                wrep = cosim_dataset(weights, dataset, 1, simulator, waves=True, lanes=lanes,
                                     registers_every=registers_every, data_dir=data_dir, first=k, seed=seed,
                                     jobs=1, record_waves=False, rtl_config=rtl_config, log=log, quiet=True,
                                     config=config)
                log(f"warning: sample {k} matched when rerun alone with tracing ({wrep.bit_exact_samples}/1)")
            except CosimError as e2:
                r2 = getattr(e2, "report", None)
                if r2 is not None and r2.mismatch is not None:
                    rep.mismatch["waves"] = r2.mismatch.get("waves")
                    rep.waves = r2.waves
        err.report = rep
        raise err
    return rep


def _merge_slices(slices, outs, first: int, registers_every: int):
    """The simulator jobs' results as one (samples in order, counts summed) and the first
    :class:`CosimError` a job reported (None when every sample matched)."""
    err, res = None, {"samples": [], "checked_registers": 0, "checked_spikes": 0, "load_seconds": 0.0,
                      "registers_every": registers_every, "mismatch": None, "waves": None, "log": []}
    for (j, lo, hi), o in zip(slices, outs):
        if not o.ok:
            raise CosimError(f"simulator job for samples {first + lo}..{first + hi - 1} failed: {o.error}")
        r = o.value
        if "cosim_error" in r:
            e = CosimError(r["cosim_error"])
            e.result = r["result"]
            r = e.result
            if not r or "samples" not in r:
                raise e
            if err is None:
                err = e
        res["samples"] += r["samples"]
        res["checked_registers"] += r["checked_registers"]
        res["checked_spikes"] += r["checked_spikes"]
        res["load_seconds"] = max(res["load_seconds"], r["load_seconds"])
        res["cpu_seconds"] = res.get("cpu_seconds", 0.0) + r.get("sample_cpu_seconds", 0.0)
        res["log"].append(r.get("log"))
        if r.get("waves"):
            res.setdefault("waves_files", []).append(r["waves"])
        if r.get("mismatch") and res["mismatch"] is None:
            res["mismatch"], res["waves"] = r["mismatch"], r.get("waves")
        if len(res["samples"]) < hi:
            break             # a job that stopped early ends the contiguous run of checked samples
    return res, err


class _InOrder:
    """Per-sample lines (``sample N: ...``) passed to ``log`` in sample order: the jobs finish
    samples of different slices at once, so a line waits until every earlier sample's has come."""

    def __init__(self, first: int, log):
        import re
        self.next, self.log, self.waiting = first, log, {}
        self.pattern = re.compile(r"^sample (\d+):")

    def add(self, line: str) -> None:
        m = self.pattern.match(str(line))
        if m is None:
            self.log(line)
            return
        self.waiting[int(m.group(1))] = line
        while self.next in self.waiting:
            self.log(self.waiting.pop(self.next))
            self.next += 1

    def flush(self) -> None:
        """The lines left after a job stopped early (a gap before them), in order."""
        for k in sorted(self.waiting):
            self.log(self.waiting.pop(k))


def _run_slice(job, shared: dict) -> dict:
    """Samples ``lo..hi-1`` on one simulator process (an executor task). The build comes from the
    cache (:func:`sim.runner.build`: the driver built it; a cluster node builds its own once).
    Each finished sample is sent to the driver's progress bar (:func:`runtime.executor.emit`).
    A mismatch comes back as ``{"cosim_error", "result"}`` (the partial result) and makes the
    other jobs on this machine stop at their next sample (``stop_file``)."""
    j, lo, hi = job
    sh = shared
    b_ = build(sh["rtl_cfg"], sh["simulator"], waves=sh["waves"], log=lambda m: None)
    try:
        return run_samples(
            b_, sh["model"], sh["x"][lo:hi], sh["y"][lo:hi], nudge=sh["nudge"][lo:hi], labels=sh["labels"][lo:hi],
            float_params=sh["params"], name=f"{sh['dataset']}-{sh['first'] + lo}-{hi - lo}",
            registers_every=sh["registers_every"], idle=sh["idle"], backpressure=sh["backpressure"],
            seed=sh["seed"] + j, read_checks=2, progress=emit, float_bound=sh["float_bound"],
            stop_file=Path(sh["stop_file"]), sample_offset=sh["first"] + lo, model_cfg=sh["cfg"])
    except CosimError as e:
        Path(sh["stop_file"]).touch()         # the other jobs stop at their next sample
        return {"cosim_error": str(e), "result": getattr(e, "result", None)}


def default_jobs() -> int:
    """Parallel simulator processes: one per core, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


# -- on-chip learning: `eqspike cosim --train` ------------------------------------------------------

#: Keys of ``eqspike cosim --train --json`` (exactly these).
TRAIN_JSON_KEYS = ("samples", "bit_exact_samples", "values_compared", "host_read_values",
                   "cycles_per_sample", "formula_cycles_per_sample", "wall_seconds")


@dataclass
class TrainReport:
    """What one ``eqspike cosim --train`` run measured."""

    cfg: EqSpikeConfig
    simulator: str
    samples: int
    rows: list
    values_compared: int
    host_read_values: int
    build_seconds: float
    built_now: bool
    wall_seconds: float
    sim_seconds: float
    load_seconds: float = 0.0
    sample_seconds: float = 0.0
    fault: str | None = None
    mismatch: dict | None = None
    log: str | None = None

    @property
    def bit_exact_samples(self) -> int:
        return len(self.rows)

    def to_json(self) -> dict:
        cyc = [r["cycles"] for r in self.rows]
        exp = [r["expected_cycles"] for r in self.rows]
        return {"samples": self.samples, "bit_exact_samples": self.bit_exact_samples,
                "values_compared": self.values_compared, "host_read_values": self.host_read_values,
                "cycles_per_sample": float(np.mean(cyc)) if cyc else 0.0,
                "formula_cycles_per_sample": float(np.mean(exp)) if exp else 0.0,
                "wall_seconds": self.wall_seconds}

    def table(self) -> str:
        cfg, n = self.cfg, len(self.rows)
        cyc = np.asarray([r["cycles"] for r in self.rows] or [0])
        exp = np.asarray([r["expected_cycles"] for r in self.rows] or [0])
        ticks = np.asarray([r["tick_cycles"] for r in self.rows] or [0])
        from rtl.learning import train_update_cycles
        signs = [r["sign"] for r in self.rows]
        lines = [
            f"on-chip learning co-simulation: {self.simulator}, {'-'.join(map(str, cfg.layers))}, lanes {cfg.lanes}, "
            f"{cfg.learning.rounding} rounding, {cfg.n_free} free + {cfg.n_nudged} nudged ticks per sample"
            + (f", PLANTED FAULT {self.fault}" if self.fault else ""),
            f"samples bit-exact: {self.bit_exact_samples} / {self.samples} (every weight copy and bias after every "
            f"sample; beta sign + {signs.count(1)}, - {signs.count(-1)})",
            f"values compared: {self.values_compared} from the memories, {self.host_read_values} by host READ",
            (f"cycles per training sample: measured {cyc.mean():.1f} (min {cyc.min()}, max {cyc.max()}), "
             f"formula rtl.learning.train_cycles {exp.mean():.1f}: "
             f"{'equal for every sample' if (cyc == exp).all() else 'DIFFERENT'}; "
             f"of which ticks {ticks.mean():.1f}, update/copy/bias passes {train_update_cycles(cfg)}") if n else
            f"cycles per training sample: no sample completed (update/copy/bias passes {train_update_cycles(cfg)})",
            f"time: build {self.build_seconds:.1f} s ({'built now' if self.built_now else 'cached'}), "
            f"simulation {self.sim_seconds:.1f} s: weight load {self.load_seconds:.1f} s, samples "
            f"{self.sample_seconds:.1f} s ({self.sample_seconds / max(n, 1):.2f} s per sample, scoreboard "
            f"included); wall {self.wall_seconds:.1f} s",
        ]
        return "\n".join(lines)


def train_start(cfg: EqSpikeConfig, seed: int = 0):
    """Initial learning codes: Glorot weights (``seed``) quantised by ``learning_codes``
    (what ``eqspike train --mode onchip`` starts from)."""
    from golden_model.float_model import glorot_params
    from golden_model.onchip import learning_codes
    w, b, _ = learning_codes(cfg, glorot_params(cfg.layers, np.random.default_rng(seed)))
    return w, b


def cosim_train(samples: int = 200, simulator: str = "verilator", cfg: EqSpikeConfig | None = None,
                dataset: str = "digits", data_dir=None, first: int = 0, lanes: int | None = None,
                fault: str | None = None, read_every: int = 50, init_seed: int = 0, optimise: bool = True,
                log=print, quiet: bool = False) -> TrainReport:
    """Train the RTL on ``samples`` training samples of ``dataset`` (from ``first``, in the data
    set's order) through the generated Verilog; the scoreboard compares every weight and bias
    with :class:`~golden_model.onchip.OnChipLearner` after every sample.

    ``cfg`` defaults to ``learning_config((n_inputs, 100, n_classes))``; the initial weights are
    :func:`train_start` (Glorot, ``init_seed``). ``fault="learn_round"`` builds the RTL with the
    planted rounding bug (the run must fail). Raises :class:`CosimError` (``.report`` holds the
    partial :class:`TrainReport`) on the first mismatch. ``optimise=False``: quicker Verilator
    build, slower run (small test networks). A progress bar counts the samples (``quiet``: none).
    """
    from experiments.data import load_dataset
    from golden_model.config import learning_config
    from golden_model.fixedpoint import quantise_real

    from .runner import run_train

    t0 = time.perf_counter()
    data = load_dataset(dataset, data_dir)
    if cfg is None:
        cfg = learning_config((data.n_inputs, 100, data.n_classes))
    if lanes is not None:
        cfg = cfg.replace(lanes=lanes)
    if cfg.learning is None:
        raise ConfigError("on-chip learning co-simulation needs a config with a 'learning' section")
    if cfg.layers[0] != data.n_inputs or cfg.layers[-1] != data.n_classes:
        raise ConfigError(f"{dataset} has {data.n_inputs} inputs and {data.n_classes} classes, the network "
                          f"{'-'.join(map(str, cfg.layers))}")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, not {samples}")
    if first < 0 or first + samples > len(data.x_train):
        raise ValueError(f"samples {first}..{first + samples - 1} are outside the {len(data.x_train)} training samples")
    w, b = train_start(cfg, init_seed)
    x = quantise_real(np.asarray(data.x_train[first:first + samples], dtype=np.float64), cfg.s.frac)
    y = np.zeros((samples, cfg.layers[-1]), dtype=np.int64)
    y[np.arange(samples), data.y_train[first:first + samples]] = 1 << cfg.s.frac
    b_: Build = build(cfg, simulator, fault=fault, optimise=optimise, log=log)
    log(f"{simulator} model: {b_.directory} ({'built in %.1f s' % b_.build_seconds if b_.built_now else 'cached'})")
    t_run = time.perf_counter()
    err, res = None, None
    from runtime.progress import progress as progress_bar
    bar = progress_bar(total=samples, desc="cosim train", unit="sample", disable=quiet)
    try:
        res = run_train(b_, w, b, x, y, name=f"train-{dataset}-{first}-{samples}", read_every=read_every,
                        progress=lambda line: bar.update(1))     # the testbench writes a line per sample
    except CosimError as e:
        err = e
        res = getattr(e, "result", None) or {}
    finally:
        bar.close()
    rep = TrainReport(cfg=cfg, simulator=simulator, samples=samples, rows=res.get("samples", []),
                      values_compared=res.get("compared_values", 0), host_read_values=res.get("host_read_values", 0),
                      build_seconds=b_.build_seconds, built_now=b_.built_now,
                      wall_seconds=time.perf_counter() - t0, sim_seconds=time.perf_counter() - t_run,
                      load_seconds=res.get("load_seconds", 0.0), sample_seconds=res.get("sample_seconds", 0.0),
                      fault=fault,
                      mismatch=res.get("mismatch"), log=res.get("log"))
    if err is not None:
        err.report = rep
        raise err
    return rep
