"""Random designs for the verification campaign: a config, its parameters, samples and the
stream pattern, all from one seed; and the folder format they are saved in (replay folders).

A design is drawn in one of :data:`FLAVOURS`, taken in turn (design ``i`` has flavour
``FLAVOURS[i % 5]``), so every kind of stress appears within any five consecutive designs:

``saturate``  narrow formats, every register's overflow rule ``saturate``, full-range weights
              and biases (1-bit weights sometimes): v, x, a, phi hit both ends;
``all_on``    inputs at 1, weights and biases at their top codes: every neuron spikes every tick
              once the states reach 1, so every spike queue fills;
``default``   default-like formats (random widths, fractions, rounding, sometimes very wide
              registers that the int64 guard may refuse), Glorot weights;
``train``     a ``learning`` section with large gains: inference samples, then TRAIN samples
              whose updates saturate the learning-format weights;
``wrap``      narrow formats whose overflow rule is ``wrap`` (v, x, a, phi each with
              probability 3/4), full-range parameters.

Every flavour also draws layers (2-4), sizes, lanes (1, a count dividing no layer size, or
any), update lanes (half the designs: a divisor > 1 of lanes, when there is one), schedules (constant or power), phase lengths (``n_nudged = 0`` a quarter of the time),
the host's idle and backpressure probabilities and (half the time) a seed for random stalls on
every spike-bus link (``rtl.network.Network(cfg, bus_stall=seed)``). A drawn config that
:class:`~golden_model.config.EqSpikeConfig` refuses (the int64 guard, a schedule that rounds to
zero, ...) is redrawn; :attr:`Design.rejected` counts the refusals.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golden_model.config import (ConfigError, EqSpikeConfig, Learning, RegFormat, Schedule, TableFormats)

__all__ = ["FLAVOURS", "Design", "draw_design", "design_rng", "MAX_REDRAWS"]

FLAVOURS = ("saturate", "all_on", "default", "train", "wrap")
#: Refused configs in a row before drawing gives up (a generator bug, not bad luck).
MAX_REDRAWS = 200


@dataclass
class Design:
    """One random design: everything a co-simulation run needs.

    Members
    -------
    index, seed : int
        Position in the campaign and the campaign seed it was drawn from.
    flavour : str
        One of :data:`FLAVOURS`.
    cfg : EqSpikeConfig
    weights, biases : list of int64 arrays
        Codes loaded through the host port: inference formats, or the learning formats
        (``cfg.learn_format``) when ``cfg.learning`` is set.
    x, y : int64 arrays (samples, n0) / (samples, nk)
        Inference samples (RUN, compared every tick), ``s``-format codes.
    nudge : list of int
        Nudge sign per inference sample (+1, -1; 0: free phase only).
    train_x, train_y : int64 arrays
        TRAIN samples (learning designs only; may be empty).
    idle, backpressure : float
        Host-side probabilities of idle cycles before a command / a held response.
    max_gap : int
        Longest idle gap or response hold (cycles).
    bus_stall : int or None
        Seed of the random spike-bus throttles (None: plain bus).
    host_seed : int
        Seed of the testbench's idle/backpressure pattern.
    rejected : int
        Configs refused by validation before this one was accepted.
    plant : str or None
        Planted bug the design is built with (:mod:`sim.verify.planted`); None normally.
    """

    index: int
    seed: int
    flavour: str
    cfg: EqSpikeConfig
    weights: list
    biases: list
    x: np.ndarray
    y: np.ndarray
    nudge: list
    train_x: np.ndarray
    train_y: np.ndarray
    idle: float = 0.0
    backpressure: float = 0.0
    max_gap: int = 4
    bus_stall: int | None = None
    host_seed: int = 0
    rejected: int = 0
    plant: str | None = None
    note: list = field(default_factory=list)

    @property
    def inference_ticks(self) -> int:
        """Ticks of the inference samples (each compared register by register)."""
        return sum(self.cfg.n_free + (self.cfg.n_nudged if s else 0) for s in self.nudge)

    @property
    def train_ticks(self) -> int:
        return len(self.train_x) * self.cfg.n_steps

    def describe(self) -> str:
        c = self.cfg
        regs = " ".join(f"{n}:{getattr(c, n).describe()}{'w' if getattr(c, n).overflow == 'wrap' else ''}"
                        for n in ("v", "x", "a", "phi")) + f" s:{c.s.describe()}"
        w = ",".join(f.describe() for f in c.weights)
        return (f"#{self.index} {self.flavour}: {'-'.join(map(str, c.layers))} lanes {c.lanes}"
                + (f" (update {c.update_lanes_text()})" if c.parallel_update else "") + ", "
                f"{c.n_free}+{c.n_nudged} ticks, W {w}, {regs}, {len(self.x)} samples"
                + (f" + {len(self.train_x)} TRAIN ({c.learning.rounding})" if c.learning else "")
                + (f", bus stalls {self.bus_stall}" if self.bus_stall is not None else "")
                + (f", PLANTED {self.plant}" if self.plant else ""))

    def replace(self, **changes) -> "Design":
        return dataclasses.replace(self, **changes)

    # -- folder format (replay folders, testbench jobs) ----------------------------------------
    def save(self, folder) -> Path:
        """Write ``config.json``, ``params.npz``, ``samples.npz`` and ``design.json`` to ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.cfg.save(folder / "config.json")
        params = {f"W{i}": np.asarray(w, dtype=np.int64) for i, w in enumerate(self.weights)}
        params.update({f"b{i + 1}": np.asarray(b, dtype=np.int64) for i, b in enumerate(self.biases)})
        np.savez(folder / "params.npz", **params)
        np.savez(folder / "samples.npz", x=np.asarray(self.x, dtype=np.int64), y=np.asarray(self.y, dtype=np.int64),
                 train_x=np.asarray(self.train_x, dtype=np.int64), train_y=np.asarray(self.train_y, dtype=np.int64))
        meta = {"index": self.index, "seed": self.seed, "flavour": self.flavour, "nudge": [int(s) for s in self.nudge],
                "idle": self.idle, "backpressure": self.backpressure, "max_gap": self.max_gap,
                "bus_stall": self.bus_stall, "host_seed": self.host_seed, "rejected": self.rejected,
                "plant": self.plant, "note": list(self.note)}
        (folder / "design.json").write_text(json.dumps(meta, indent=1) + "\n")
        return folder

    @classmethod
    def load(cls, folder) -> "Design":
        folder = Path(folder)
        for name in ("config.json", "params.npz", "samples.npz", "design.json"):
            if not (folder / name).is_file():
                raise ValueError(f"{folder} is not a design folder: {name} is missing")
        cfg = EqSpikeConfig.load(folder / "config.json")
        meta = json.loads((folder / "design.json").read_text())
        with np.load(folder / "params.npz") as z:
            n = cfg.n_layers - 1
            weights = [z[f"W{i}"] for i in range(n)]
            biases = [z[f"b{i + 1}"] for i in range(n)]
        with np.load(folder / "samples.npz") as z:
            smp = {k: z[k] for k in z.files}
        return cls(index=meta["index"], seed=meta["seed"], flavour=meta["flavour"], cfg=cfg, weights=weights,
                   biases=biases, x=smp["x"], y=smp["y"], nudge=meta["nudge"], train_x=smp["train_x"],
                   train_y=smp["train_y"], idle=meta["idle"], backpressure=meta["backpressure"],
                   max_gap=meta["max_gap"], bus_stall=meta["bus_stall"], host_seed=meta["host_seed"],
                   rejected=meta["rejected"], plant=meta.get("plant"), note=meta.get("note", []))


def design_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of design ``index`` of the campaign with ``seed`` (independent streams)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


# -- formats ---------------------------------------------------------------------------------------
def _fmt(rng, width, frac, rounding=None, overflow="saturate") -> RegFormat:
    rounding = rounding or str(rng.choice(["half_up", "floor"]))
    return RegFormat(int(width), int(frac), rounding=rounding, overflow=overflow)


def _narrow_regs(rng, overflow) -> dict:
    """Narrow v, x, a, phi (3-8 bits) and s (u1.3-u1.7): random weights drive them to both ends."""
    over = overflow if callable(overflow) else (lambda: overflow)
    regs = {}
    for name in ("v", "x"):
        w = int(rng.integers(3, 9))
        f = int(rng.integers(1, w))
        regs[name] = _fmt(rng, w, f, overflow=over())
    # a and phi with 1-2 integer bits: a predictive encoder with a small lambda overshoots [0, 1]
    # both ways and phi + a leaves phi's range; a finer a than phi makes phi's rounding act
    af = int(rng.integers(2, 6))
    regs["a"] = _fmt(rng, af + int(rng.integers(1, 3)), af, overflow=over())
    pf = int(rng.integers(1, af + 1))
    regs["phi"] = _fmt(rng, pf + int(rng.integers(1, 3)), pf, overflow=over())
    s_frac = int(rng.integers(3, 8))
    regs["s"] = RegFormat(s_frac + 1, s_frac, signed=False, overflow="clip", rounding="half_up")
    return regs


def _wide_regs(rng) -> dict:
    """Default-like registers (10-22 bits), one in five drawn very wide (up to 48 bits)."""
    s_frac = int(rng.integers(6, 14))
    regs = {}
    for name in ("v", "x", "a", "phi"):
        if rng.random() < 0.2:
            w = int(rng.integers(24, 49))
            f = int(rng.integers(1, w - 1))
        else:
            f = s_frac + int(rng.integers(-2, 3))
            w = f + int(rng.integers(3, 8))
        regs[name] = _fmt(rng, w, max(f, 1), overflow=str(rng.choice(["saturate", "saturate", "wrap"])))
    regs["s"] = RegFormat(s_frac + 1, s_frac, signed=False, overflow="clip",
                          rounding=str(rng.choice(["half_up", "half_up", "floor"])))
    return regs


def _weight_formats(rng, n_mat, narrow: bool) -> tuple:
    out = []
    for _ in range(n_mat):
        if narrow and rng.random() < 0.25:
            w = 1                                    # 1-bit weights: codes {-1, 0}
        else:
            w = int(rng.integers(2, 5 if narrow else 9))
        out.append(RegFormat(w, int(rng.integers(max(0, w - 2), w + 3)), rounding="half_up"))
    return tuple(out)


def _schedules(rng, narrow: bool):
    """eps constant or power; lambda constant 1 (no predictive coding), constant or power;
    narrow designs: small lambdas (the encoder overshoots) and coarse tables (frequent ties)."""
    eps = (Schedule.constant(float(rng.uniform(0.2, 1.0))) if rng.random() < 0.5
           else Schedule.power(float(rng.uniform(0.5, 1.0)), float(rng.uniform(0.0, 1.0))))
    k = int(rng.integers(4 if narrow else 3))
    lo = 0.15 if narrow else 0.3
    lam = (Schedule.constant(1.0) if k == 0 else Schedule.constant(float(rng.uniform(lo, 1.0))) if k == 1
           else Schedule.power(float(rng.uniform(lo, 1.0)), float(rng.uniform(0.1, 0.8))))
    hi = 9 if narrow else 15
    tables = TableFormats(eps_frac=int(rng.integers(4, hi)), lam_frac=int(rng.integers(4, hi)),
                          inv_lam_frac=int(rng.integers(3, hi - 2)))
    return eps, lam, tables


def _lanes(rng, layers) -> int:
    """1, a lane count that divides no layer size, or any count up to the largest layer + 2."""
    kind = int(rng.integers(3))
    if kind == 0:
        return 1
    if kind == 1:
        options = [L for L in range(2, max(layers) + 3) if all(n % L for n in layers)]
        if options:
            return int(rng.choice(options))
    return int(rng.integers(1, max(layers) + 3))


def _update_lanes(rng, cfg: EqSpikeConfig) -> EqSpikeConfig:
    """Half the designs update several neurons per cycle: a divisor > 1 of ``lanes`` when there
    is one. Drawn from a stream of its own, so the rest of a design does not depend on it."""
    divisors = [u for u in range(2, cfg.lanes + 1) if cfg.lanes % u == 0]
    if not divisors or rng.random() < 0.5:
        return cfg
    return cfg.replace(update_lanes=int(rng.choice(divisors)))


def _per_layer_update_lanes(rng, cfg: EqSpikeConfig) -> EqSpikeConfig:
    """Half the inference designs with parallel update get one ``U_l`` per core instead (each a
    random divisor of ``lanes``, 1 included). A stream of its own, so every other draw, and
    ``update_lanes`` of the designs it leaves alone, are what they were before it existed."""
    if cfg.learning is not None or not cfg.parallel_update or rng.random() < 0.5:
        return cfg
    divisors = [u for u in range(1, cfg.lanes + 1) if cfg.lanes % u == 0]
    return cfg.replace(update_lanes=tuple(int(rng.choice(divisors)) for _ in cfg.layers))


def _layers(rng, lo, hi) -> tuple:
    depth = int(rng.integers(2, 5))
    return tuple(int(n) for n in rng.integers(lo, hi + 1, size=depth))


def _learning(rng, cfg: EqSpikeConfig) -> Learning:
    """Large gains: the smallest shift that keeps both update shifts >= 0, plus 0-3."""
    n_mat = cfg.n_layers - 1
    extra = int(rng.integers(0, 5))
    shifts = []
    for l in range(n_mat):
        f_learn = cfg.weights[l].frac + extra
        k_min = max(0, f_learn - 2 * cfg.s.frac, cfg.biases[l].frac - cfg.s.frac)
        shifts.append(k_min + int(rng.integers(0, 4)))
    return Learning(rate_mult=tuple(int(m) for m in rng.integers(8, 16, size=n_mat)), rate_shift=tuple(shifts),
                    extra_frac=extra, rounding=str(rng.choice(["stochastic", "stochastic", "nearest"])),
                    rng_bits=int(rng.integers(1, 11)), seed=int(rng.integers(1, 1 << 63)))


def _config(rng, flavour: str) -> EqSpikeConfig:
    narrow = flavour in ("saturate", "wrap", "train")
    if flavour == "saturate":
        regs = _narrow_regs(rng, "saturate")
    elif flavour == "wrap":
        regs = _narrow_regs(rng, lambda: "wrap" if rng.random() < 0.75 else "saturate")
    elif flavour == "train":
        regs = _narrow_regs(rng, lambda: str(rng.choice(["saturate", "wrap"])))
    elif flavour == "all_on":
        regs = _narrow_regs(rng, "saturate")
        regs["a"] = _fmt(rng, int(rng.integers(4, 8)), 2, overflow="saturate")
        regs["phi"] = _fmt(rng, int(rng.integers(4, 8)), 2, overflow="saturate")
    else:
        regs = _wide_regs(rng)
    layers = _layers(rng, 3, 8) if flavour == "all_on" else _layers(rng, 1, 9)
    n_mat = len(layers) - 1
    eps, lam, tables = _schedules(rng, narrow)
    if flavour == "all_on":
        eps, lam = Schedule.constant(float(rng.uniform(0.6, 1.0))), Schedule.constant(1.0)
    biases = tuple(_fmt(rng, w, int(rng.integers(1, w)), rounding="half_up")
                   for w in rng.integers(3, 8 if narrow or flavour == "all_on" else 16, size=n_mat))
    n_free = int(rng.integers(8, 41)) if flavour == "all_on" else int(rng.integers(1, 41))
    n_nudged = 0 if rng.random() < 0.25 else int(rng.integers(1, 21))
    if flavour == "train":       # a nudged phase long enough to move the states (updates != 0)
        n_nudged = int(rng.integers(3, 21))
    cfg = EqSpikeConfig(layers=layers, weights=_weight_formats(rng, n_mat, narrow or flavour == "all_on"),
                        biases=biases, eps=eps, lam=lam, tables=tables,
                        beta=float(rng.choice([0.25, 0.5, 1.0, 2.0])), beta_frac=int(rng.integers(2, 9)),
                        n_free=n_free, n_nudged=n_nudged, lanes=_lanes(rng, layers), **regs)
    if flavour == "train":
        cfg = cfg.replace(learning=_learning(rng, cfg))
    return cfg


# -- parameters and samples -----------------------------------------------------------------------
def _full_range(rng, fmt: RegFormat, shape) -> np.ndarray:
    """Every code equally likely, with the two end codes over-weighted (saturating parameters)."""
    codes = rng.integers(fmt.min_code, fmt.max_code + 1, size=shape)
    ends = rng.random(shape)
    codes = np.where(ends < 0.15, fmt.max_code, np.where(ends > 0.85, fmt.min_code, codes))
    return codes.astype(np.int64)


def _params(rng, cfg: EqSpikeConfig, flavour: str):
    L = cfg.layers
    wfmts = [cfg.learn_format(l) for l in range(cfg.n_layers - 1)] if cfg.learning else list(cfg.weights)
    if flavour == "all_on":
        w = [np.where(rng.random((a, b)) < 0.9, f.max_code, _full_range(rng, f, (a, b)))
             for f, a, b in zip(wfmts, L[:-1], L[1:])]
        b = [np.full(n, f.max_code, dtype=np.int64) for f, n in zip(cfg.biases, L[1:])]
        return [x.astype(np.int64) for x in w], b
    if flavour == "default":
        from golden_model.fixed_model import quantise_params
        from sim.stimulus import random_params
        w, b, _ = quantise_params(cfg, random_params(cfg, rng, gain=float(rng.uniform(1.0, 4.0))))
        return w, b
    w = [_full_range(rng, f, (a, b)) for f, a, b in zip(wfmts, L[:-1], L[1:])]
    b = [_full_range(rng, f, (n,)) for f, n in zip(cfg.biases, L[1:])]
    return w, b


def _samples(rng, cfg: EqSpikeConfig, n: int, flavour: str):
    one = 1 << cfg.s.frac
    n0, nk = cfg.layers[0], cfg.layers[-1]
    if flavour == "all_on":
        x = np.full((n, n0), one, dtype=np.int64)
    else:
        x = rng.integers(0, one + 1, size=(n, n0))
        ends = rng.random((n, n0))
        x = np.where(ends < 0.2, one, np.where(ends > 0.85, 0, x))
    y = np.zeros((n, nk), dtype=np.int64)
    y[np.arange(n), rng.integers(nk, size=n)] = one
    soft = rng.random(n) < 0.3              # some targets are arbitrary codes, not one-hot
    y[soft] = rng.integers(0, one + 1, size=(int(soft.sum()), nk))
    return x.astype(np.int64), y


def draw_design(seed: int, index: int, samples: int = 3, train_samples: int = 4) -> Design:
    """Design ``index`` of the campaign with ``seed`` (flavour ``FLAVOURS[index % 5]``).

    ``samples`` inference samples (nudge signs +1, -1, 0 in turn from a random start) and, for
    learning designs, ``train_samples`` TRAIN samples.
    """
    rng = design_rng(seed, index)
    flavour = FLAVOURS[index % len(FLAVOURS)]
    rejected = 0
    while True:
        try:
            cfg = _config(rng, flavour)
            break
        except ConfigError:
            rejected += 1
            if rejected >= MAX_REDRAWS:
                raise RuntimeError(f"design {index}: {MAX_REDRAWS} configs in a row refused") from None
    cfg = _update_lanes(np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 1])), cfg)
    cfg = _per_layer_update_lanes(np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 2])), cfg)
    w, b = _params(rng, cfg, flavour)
    x, y = _samples(rng, cfg, samples, flavour)
    start = int(rng.integers(3))
    nudge = [(1, -1, 0)[(start + i) % 3] for i in range(samples)]
    if cfg.learning is not None:
        tx, ty = _samples(rng, cfg, train_samples, flavour)
    else:
        tx = np.zeros((0, cfg.layers[0]), dtype=np.int64)
        ty = np.zeros((0, cfg.layers[-1]), dtype=np.int64)
    gaps = [0.0, 0.1, 0.3, 0.5]
    return Design(index=index, seed=seed, flavour=flavour, cfg=cfg, weights=w, biases=b, x=x, y=y, nudge=nudge,
                  train_x=tx, train_y=ty, idle=float(rng.choice(gaps)), backpressure=float(rng.choice(gaps[1:])),
                  max_gap=int(rng.integers(1, 7)),
                  bus_stall=int(rng.integers(1, 1 << 16)) if rng.random() < 0.5 else None,
                  host_seed=int(rng.integers(1 << 31)), rejected=rejected)
