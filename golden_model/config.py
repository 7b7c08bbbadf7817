"""The single source of truth: one frozen, validated configuration object.

:class:`EqSpikeConfig` carries every layer size, register format, table format, schedule and
RTL parameter. The float reference, the fixed-point golden model, the RTL generator, the
testbenches and the synthesis flow all take it; none of them takes loose integers. Derived
quantities (accumulator widths, ROM contents and widths) are properties, never stored twice.

JSON round-trip: ``EqSpikeConfig.from_json(cfg.to_json()) == cfg``. Unknown fields, wrong types
and out-of-range values raise :class:`ConfigError` with a one-line message naming the field.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .fixedpoint import OVERFLOW_MODES, ROUNDING_MODES, code_range, quantise_real
from .int64_guard import int64_violation

__all__ = [
    "ConfigError", "RegFormat", "Schedule", "TableFormats", "Learning", "EqSpikeConfig",
    "LEARN_ROUNDING", "rate_code",
    "REGISTER_NAMES", "default_config", "learning_config", "narrow_config", "wide_config",
]

#: Per-neuron registers of the neuron core, by their RTL names (see docs/fixed_point.md).
REGISTER_NAMES = ("v", "x", "s", "a", "phi")

MAX_WIDTH = 48  # register widths; golden_model.int64_guard proves every intermediate fits int64
WEIGHT_EXTRA_FRAC = 16  # weight formats may have up to 16 negative integer bits


class ConfigError(ValueError):
    """A configuration value is malformed or out of range (one-line message)."""


def _need_int(path: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{path} must be an integer, not {value!r}")
    if lo is not None and value < lo:
        raise ConfigError(f"{path} must be >= {lo}, not {value!r}")
    if hi is not None and value > hi:
        raise ConfigError(f"{path} must be <= {hi}, not {value!r}")
    return int(value)


def _need_real(path: str, value: Any, lo: float, hi: float, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ConfigError(f"{path} must be a number, not {value!r}")
    value = float(value)
    if not math.isfinite(value) or value > hi or value < lo or (lo_open and value == lo):
        bound = f"({lo}, {hi}]" if lo_open else f"[{lo}, {hi}]"
        raise ConfigError(f"{path} must be in {bound}, not {value!r}")
    return value


#: Limits of a config JSON document: a real config nests 3 levels and is a few kB.
JSON_MAX_DEPTH = 8
JSON_MAX_CHARS = 1 << 20


def _check_depth(data: Any, limit: int) -> None:
    """Refuse JSON nested deeper than ``limit`` (iteratively: deep input must not recurse)."""
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list, tuple)):
            if depth > limit:
                raise ConfigError(f"config JSON is nested more than {limit} levels deep")
            stack.extend((v, depth + 1) for v in (node.values() if isinstance(node, dict) else node))


def _check_keys(path: str, data: Any, cls) -> dict:
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must be a JSON object, not {data!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path} has unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})")
    return data


@dataclass(frozen=True)
class RegFormat:
    """Format of one register: ``width`` bits, ``frac`` of them after the radix point.

    Members
    -------
    width : int
        Total bits, sign included.
    frac : int
        Fraction bits; a code ``c`` means ``c * 2**-frac``.
    signed : bool
        Two's complement when true.
    rounding : str
        How a wider result is rounded into this register (``"floor"`` or ``"half_up"``).
    overflow : str
        ``"saturate"``, ``"wrap"`` or (states only) ``"clip"`` to [0, 1].
    """

    width: int
    frac: int
    signed: bool = True
    rounding: str = "half_up"
    overflow: str = "saturate"

    def validate(self, path: str, max_extra_frac: int = 0) -> None:
        """Check ranges; ``max_extra_frac`` lets ``frac`` exceed ``width`` (a scaled weight format)."""
        _need_int(f"{path}.width", self.width, 1, MAX_WIDTH)
        _need_int(f"{path}.frac", self.frac, 0)
        if self.frac > self.width + max_extra_frac:
            raise ConfigError(
                f"{path}.frac must be <= {path}.width + {max_extra_frac} ({self.width + max_extra_frac}), "
                f"not {self.frac!r}" if max_extra_frac else
                f"{path}.frac must be <= {path}.width ({self.width}), not {self.frac!r}")
        if not isinstance(self.signed, bool):
            raise ConfigError(f"{path}.signed must be true or false, not {self.signed!r}")
        if self.rounding not in ROUNDING_MODES:
            raise ConfigError(f"{path}.rounding must be one of {ROUNDING_MODES}, not {self.rounding!r}")
        if self.overflow not in OVERFLOW_MODES:
            raise ConfigError(f"{path}.overflow must be one of {OVERFLOW_MODES}, not {self.overflow!r}")

    @property
    def min_code(self) -> int:
        return code_range(self.width, self.signed)[0]

    @property
    def max_code(self) -> int:
        return code_range(self.width, self.signed)[1]

    @property
    def lsb(self) -> float:
        return 2.0 ** -self.frac

    @property
    def min_value(self) -> float:
        return self.min_code * self.lsb

    @property
    def max_value(self) -> float:
        return self.max_code * self.lsb

    def describe(self) -> str:
        kind = "s" if self.signed else "u"
        return f"{kind}{self.width - self.frac}.{self.frac}"

    @classmethod
    def from_dict(cls, path: str, data: Any) -> "RegFormat":
        data = _check_keys(path, data, cls)
        for key in ("width", "frac"):
            if key not in data:
                raise ConfigError(f"{path}.{key} is missing")
        return cls(**data)  # validated by the config that holds it


SCHEDULE_KINDS = ("constant", "power", "table")


@dataclass(frozen=True)
class Schedule:
    """A step-size or predictive-coding schedule over the steps t = 1, 2, ... of one sample.

    ``constant``: ``value`` every step. ``power``: ``a0 / t**eta`` (spec section 3).
    ``table``: ``values[t-1]``, which must have one entry per step (free + nudged).
    """

    kind: str = "constant"
    value: float = 1.0
    a0: float = 1.0
    eta: float = 0.0
    values: tuple = ()

    def validate(self, path: str, n_steps: int) -> None:
        if self.kind not in SCHEDULE_KINDS:
            raise ConfigError(f"{path}.kind must be one of {SCHEDULE_KINDS}, not {self.kind!r}")
        if self.kind == "constant":
            _need_real(f"{path}.value", self.value, 0.0, 1.0, lo_open=True)
        elif self.kind == "power":
            _need_real(f"{path}.a0", self.a0, 0.0, 1.0, lo_open=True)
            _need_real(f"{path}.eta", self.eta, 0.0, 10.0)
        else:
            if len(self.values) != n_steps:
                raise ConfigError(
                    f"{path}.values must have one entry per step (n_free + n_nudged = {n_steps}), "
                    f"not {len(self.values)}")
            for i, v in enumerate(self.values):
                _need_real(f"{path}.values[{i}]", v, 0.0, 1.0, lo_open=True)

    def at(self, t: np.ndarray | int) -> np.ndarray:
        """Float value(s) at step(s) ``t`` (1-based)."""
        t = np.asarray(t, dtype=np.float64)
        if self.kind == "constant":
            return np.full(t.shape, self.value)
        if self.kind == "power":
            return self.a0 / t ** self.eta
        vals = np.asarray(self.values, dtype=np.float64)
        return vals[t.astype(np.int64) - 1]

    def table(self, n_steps: int) -> np.ndarray:
        """Float values for t = 1..n_steps."""
        return self.at(np.arange(1, n_steps + 1))

    def to_dict(self) -> dict:
        if self.kind == "constant":
            return {"kind": "constant", "value": self.value}
        if self.kind == "power":
            return {"kind": "power", "a0": self.a0, "eta": self.eta}
        return {"kind": "table", "values": list(self.values)}

    @classmethod
    def from_dict(cls, path: str, data: Any) -> "Schedule":
        data = dict(_check_keys(path, data, cls))
        if "values" in data:
            if not isinstance(data["values"], (list, tuple)):
                raise ConfigError(f"{path}.values must be a list, not {data['values']!r}")
            data["values"] = tuple(data["values"])
        return cls(**data)

    @classmethod
    def constant(cls, value: float) -> "Schedule":
        return cls(kind="constant", value=value)

    @classmethod
    def power(cls, a0: float, eta: float) -> "Schedule":
        return cls(kind="power", a0=a0, eta=eta)


@dataclass(frozen=True)
class TableFormats:
    """Fraction bits of the schedule ROMs (eps, lambda and 1/lambda, one word per step).

    Their widths are derived from the largest entry (``EqSpikeConfig.rom_width``).
    """

    eps_frac: int = 12
    lam_frac: int = 12
    inv_lam_frac: int = 10

    def validate(self, path: str) -> None:
        for f in dataclasses.fields(self):
            _need_int(f"{path}.{f.name}", getattr(self, f.name), 1, 24)


LEARN_ROUNDING = ("stochastic", "nearest")
RATE_MULT_MAX = 15   # 4-bit learning-rate mantissa


def rate_code(rate: float) -> tuple[int, int]:
    """Nearest ``m * 2**-k`` to ``rate`` with a 4-bit mantissa ``8 <= m <= 15`` (relative error
    at most 1/16): the per-matrix learning-rate constant of the on-chip update."""
    if not (isinstance(rate, (int, float)) and math.isfinite(rate) and 0 < rate < 1):
        raise ConfigError(f"learning rate must be in (0, 1), not {rate!r}")
    k = 3 - math.floor(math.log2(rate))          # rate * 2**k in [8, 16)
    m = int(math.floor(rate * 2 ** k + 0.5))
    if m > RATE_MULT_MAX:                        # rounded up to 16: 8 * 2**-(k-1)
        m, k = 8, k - 1
    return m, k


@dataclass(frozen=True)
class Learning:
    """On-chip EqProp learning (docs/learning.md). Absent (``None``) = inference-only hardware.

    Members
    -------
    rate_mult, rate_shift : tuple of int
        Per matrix ``l``: the update gain ``m_l * 2**-k_l`` stands for ``lr_l / |beta|`` of one
        sample (minibatch 1; the paper's rate for minibatch N is ``lr_l / (N |beta|)``, see
        :func:`rate_code`). ``b_{l+1}`` uses the gain of ``W_l``.
    extra_frac : int
        Learning weight format of ``W_l``: ``weights[l]`` with ``extra_frac`` more fraction bits
        (and as many more bits of width: same range). The accumulators add the learning
        weight rounded to the inference format, ``min((W + 2^(E-1)) >> E, max)``. Biases learn
        in their own format.
    rounding : str
        ``"stochastic"`` (add ``rng_bits`` LFSR bits below the kept LSB, then floor) or
        ``"nearest"`` (round half up).
    rng_bits : int
        Random bits per stochastic-rounding draw.
    seed : int
        Initial state of the 64-bit Galois LFSR (non-zero); it supplies beta's sign per sample
        and the rounding draws.
    """

    rate_mult: tuple = ()
    rate_shift: tuple = ()
    extra_frac: int = 6
    rounding: str = "stochastic"
    rng_bits: int = 8
    seed: int = 1

    def validate(self, path: str, n_mat: int) -> None:
        for name in ("rate_mult", "rate_shift"):
            val = getattr(self, name)
            if not isinstance(val, tuple) or len(val) != n_mat:
                raise ConfigError(f"{path}.{name} must list one integer per matrix ({n_mat}), not {val!r}")
        for i, m in enumerate(self.rate_mult):
            _need_int(f"{path}.rate_mult[{i}]", m, 1, RATE_MULT_MAX)
        for i, k in enumerate(self.rate_shift):
            _need_int(f"{path}.rate_shift[{i}]", k, 0, 40)
        _need_int(f"{path}.extra_frac", self.extra_frac, 0, 16)
        if self.rounding not in LEARN_ROUNDING:
            raise ConfigError(f"{path}.rounding must be one of {LEARN_ROUNDING}, not {self.rounding!r}")
        _need_int(f"{path}.rng_bits", self.rng_bits, 1, 16)
        _need_int(f"{path}.seed", self.seed, 1, (1 << 64) - 1)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["rate_mult"], d["rate_shift"] = list(self.rate_mult), list(self.rate_shift)
        return d

    @classmethod
    def from_dict(cls, path: str, data: Any) -> "Learning":
        data = dict(_check_keys(path, data, cls))
        for key in ("rate_mult", "rate_shift"):
            if key in data:
                if not isinstance(data[key], list):
                    raise ConfigError(f"{path}.{key} must be a list, not {data[key]!r}")
                data[key] = tuple(data[key])
        return cls(**data)

    @classmethod
    def from_rates(cls, lr, beta: float, batch: int = 20, **changes) -> "Learning":
        """Gains for per-sample updates equivalent to the paper's rates ``lr`` at minibatch
        ``batch``: ``m_l 2**-k_l ~= lr_l / (batch * |beta|)`` (same expected step per epoch)."""
        codes = [rate_code(float(r) / (batch * abs(beta))) for r in lr]
        return cls(rate_mult=tuple(m for m, _ in codes), rate_shift=tuple(k for _, k in codes), **changes)


@dataclass(frozen=True)
class EqSpikeConfig:
    """Every width, size and schedule of one spiking EqProp network.

    Members
    -------
    layers : tuple of int
        Layer sizes, input first: ``(n0, n1, ..., nk)``.
    weights : tuple of RegFormat
        One format per matrix ``W_l`` (shape ``(n_l, n_{l+1})``).
    biases : tuple of RegFormat
        One format per non-input layer.
    v, x, s, a, phi : RegFormat
        Per-neuron registers: decoder output, neuron input (pressure + nudge), state,
        predictive-encoder value, sigma-delta integrator. ``s`` is unsigned with exactly one
        integer bit (it holds [0, 1]) and its overflow rule is the algorithm's ``"clip"``.
        The encoder's previous-rho register ``rho_last`` and the inputs and targets use ``s``'s
        format.
    eps, lam : Schedule
        Step size and predictive-coding lambda per step (``lam`` constant 1 = no predictive coding).
    tables : TableFormats
        Fraction bits of the eps, lambda and 1/lambda ROMs.
    beta : float
        Nudging strength magnitude (the sign is chosen per run/minibatch).
    beta_frac : int
        Fraction bits of the ``2 * beta`` constant.
    n_free, n_nudged : int
        Steps of the free and nudged phase.
    lanes : int
        Parallel synapse lanes of each RTL layer core.
    update_lanes : int or tuple of int
        Neurons each RTL core updates per cycle (``U``); must divide ``lanes`` (a group of ``U``
        neurons then lies in one accumulator word). One value for every core, or one per layer
        (input first, e.g. ``(10, 5, 1)``: a core whose pass is short anyway gets fewer
        datapath copies and DSP blocks; :meth:`update_lanes_of`); per-layer values need
        ``learning = None``. Changes cycles only, never results.
    mul_stages : int
        Pipeline stages each multiply of the RTL neuron datapath spans (1-3): 1 computes its
        operand, product and rounding in one stage; 2 registers the product; 3 registers the
        operand too (``rtl.pipeline``). More stages shorten the clock period (the products
        sit on DSP blocks away from the fabric) and add a few cycles per update pass; never
        results.
    learning : Learning or None
        On-chip learning (weight update, LFSR); ``None`` builds inference-only hardware.
    """

    layers: tuple = (64, 100, 10)
    weights: tuple = ()
    biases: tuple = ()
    v: RegFormat = RegFormat(18, 12)
    x: RegFormat = RegFormat(18, 12)
    s: RegFormat = RegFormat(13, 12, signed=False, overflow="clip")
    a: RegFormat = RegFormat(17, 12)
    phi: RegFormat = RegFormat(17, 12)
    eps: Schedule = Schedule.constant(0.354)
    lam: Schedule = Schedule.power(0.503, 0.292)
    tables: TableFormats = TableFormats()
    beta: float = 0.5
    beta_frac: int = 8
    n_free: int = 100
    n_nudged: int = 50
    lanes: int = 1
    update_lanes: int | tuple = 1
    mul_stages: int = 1
    learning: Learning | None = None

    def __post_init__(self):
        layers = self.layers
        if not isinstance(layers, (list, tuple)) or len(layers) < 2:
            raise ConfigError(f"layers must be a list of at least 2 sizes, not {layers!r}")
        for i, n in enumerate(layers):
            _need_int(f"layers[{i}]", n, 1, 1 << 20)
        object.__setattr__(self, "layers", tuple(int(n) for n in layers))
        n_mat = len(layers) - 1
        if not self.weights:
            object.__setattr__(self, "weights", (RegFormat(8, 6),) * n_mat)
        if not self.biases:
            object.__setattr__(self, "biases", (RegFormat(16, 12),) * n_mat)
        object.__setattr__(self, "weights", tuple(self.weights))
        object.__setattr__(self, "biases", tuple(self.biases))
        if isinstance(self.update_lanes, list):
            object.__setattr__(self, "update_lanes", tuple(self.update_lanes))
        self.validate()

    # -- validation ---------------------------------------------------------------------------
    def validate(self) -> None:
        n_mat = len(self.layers) - 1
        if len(self.weights) != n_mat:
            raise ConfigError(f"weights must have one format per matrix ({n_mat}), not {len(self.weights)}")
        if len(self.biases) != n_mat:
            raise ConfigError(f"biases must have one format per non-input layer ({n_mat}), not {len(self.biases)}")
        for i, f in enumerate(self.weights):
            # small weights need negative integer bits: frac may exceed width (power-of-two scale)
            self._need_fmt(f"weights[{i}]", f, WEIGHT_EXTRA_FRAC)
            if not f.signed:
                raise ConfigError(f"weights[{i}].signed must be true")
        for i, f in enumerate(self.biases):
            self._need_fmt(f"biases[{i}]", f)
            if not f.signed:
                raise ConfigError(f"biases[{i}].signed must be true")
        for name in REGISTER_NAMES:
            self._need_fmt(name, getattr(self, name))
        for name in ("v", "x", "a", "phi"):
            f = getattr(self, name)
            if not f.signed:
                raise ConfigError(f"{name}.signed must be true (the register holds negative values)")
            if f.overflow == "clip":
                raise ConfigError(f"{name}.overflow must be 'saturate' or 'wrap', not 'clip'")
        s = self.s
        if s.signed or s.overflow != "clip" or s.width != s.frac + 1:
            raise ConfigError(
                f"s must be unsigned with width = frac + 1 and overflow 'clip' (it holds [0, 1]), not {s!r}")
        if self.phi.frac < 1:
            raise ConfigError("phi.frac must be >= 1 (the sigma-delta threshold is 1/2)")
        _need_int("n_free", self.n_free, 1, 1 << 16)
        _need_int("n_nudged", self.n_nudged, 0, 1 << 16)
        _need_int("lanes", self.lanes, 1, 1024)
        if isinstance(self.update_lanes, tuple):
            if len(self.update_lanes) != len(self.layers):
                raise ConfigError(f"update_lanes must be one integer or one per layer ({len(self.layers)}), "
                                  f"not {len(self.update_lanes)} values")
            for i, u in enumerate(self.update_lanes):
                _need_int(f"update_lanes[{i}]", u, 1, 1024)
                if self.lanes % u:
                    raise ConfigError(f"update_lanes[{i}] must divide lanes ({self.lanes}), not {u!r}")
            if self.learning is not None and len(set(self.update_lanes)) > 1:
                raise ConfigError(f"update_lanes must be one value for every layer with on-chip learning "
                                  f"(its engine addresses every core's words alike), not {list(self.update_lanes)}")
        else:
            _need_int("update_lanes", self.update_lanes, 1, 1024)
            if self.lanes % self.update_lanes:
                raise ConfigError(f"update_lanes must divide lanes ({self.lanes}), not {self.update_lanes!r}")
        _need_int("mul_stages", self.mul_stages, 1, 3)
        _need_int("beta_frac", self.beta_frac, 0, 24)
        _need_real("beta", self.beta, 0.0, 16.0)
        if not isinstance(self.tables, TableFormats):
            raise ConfigError(f"tables must be a table-format object, not {self.tables!r}")
        self.tables.validate("tables")
        for name in ("eps", "lam"):
            sched = getattr(self, name)
            if not isinstance(sched, Schedule):
                raise ConfigError(f"{name} must be a schedule, not {sched!r}")
            sched.validate(name, self.n_steps)
        for name, rom in (("eps", self.eps_rom), ("lam", self.lam_rom)):
            zero = np.flatnonzero(rom == 0)
            if zero.size:
                raise ConfigError(
                    f"{name} rounds to 0 at step {zero[0] + 1}; raise tables.{name}_frac")
        for l in range(1, len(self.layers)):
            if self.acc_format(l).width > 53:
                raise ConfigError(f"accumulator of layer {l} would need more than 53 bits")
        if self.learning is not None:
            self._check_learning()
        self._check_int64()

    def _check_learning(self) -> None:
        lrn = self.learning
        if not isinstance(lrn, Learning):
            raise ConfigError(f"learning must be a learning section or null, not {lrn!r}")
        n_mat = len(self.layers) - 1
        lrn.validate("learning", n_mat)
        for l in range(n_mat):
            f = self.learn_format(l)
            if f.width > MAX_WIDTH:
                raise ConfigError(f"learning format of W{l} would be {f.width} bits wide (max {MAX_WIDTH}); "
                                  "lower learning.extra_frac")
            if self.update_shift(l) < 0:
                raise ConfigError(f"learning.rate_shift[{l}] = {lrn.rate_shift[l]} is too small for the "
                                  f"learning format of W{l} (the update would need a left shift)")
            if self.bias_update_shift(l) < 0:
                raise ConfigError(f"learning.rate_shift[{l}] = {lrn.rate_shift[l]} is too small for "
                                  f"biases[{l}] (the update would need a left shift)")

    def learn_format(self, l: int) -> RegFormat:
        """Learning format of ``W_l``: ``weights[l]`` with ``learning.extra_frac`` more LSBs."""
        e = self.learning.extra_frac if self.learning is not None else 0
        w = self.weights[l]
        return RegFormat(w.width + e, w.frac + e, rounding=w.rounding, overflow="saturate")

    def update_shift(self, l: int) -> int:
        """Right shift ``D_l = 2 F_s + k_l - F_learn(W_l)`` of the weight update (docs/learning.md)."""
        return 2 * self.s.frac + self.learning.rate_shift[l] - self.learn_format(l).frac

    def bias_update_shift(self, l: int) -> int:
        """Right shift ``F_s + k_l - F_b`` of the update of ``b_{l+1}`` (bias format ``biases[l]``)."""
        return self.s.frac + self.learning.rate_shift[l] - self.biases[l].frac

    def _check_int64(self) -> None:
        """Every intermediate of the models must fit int64 (golden_model.int64_guard)."""
        problem = int64_violation(self)
        if problem is not None:
            raise ConfigError(problem)

    @staticmethod
    def _need_fmt(path: str, fmt: Any, max_extra_frac: int = 0) -> None:
        if not isinstance(fmt, RegFormat):
            raise ConfigError(f"{path} must be a register format, not {fmt!r}")
        fmt.validate(path, max_extra_frac)

    # -- derived quantities --------------------------------------------------------------------
    @property
    def n_steps(self) -> int:
        return self.n_free + self.n_nudged

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def chunks(self, l: int) -> int:
        """Lane-packed words per source row of layer ``l`` in the RTL: ``ceil(n_l / lanes)``
        (accumulator words, weight words per spike, learning-engine chunks)."""
        return -(-self.layers[l] // self.lanes)

    def stored_lanes(self, l: int) -> int:
        """Lanes the RTL stores in layer ``l``'s lane-packed memories (weights, accumulators,
        held states): ``lanes`` when the layer takes more than one chunk, else its ``n_l``
        neurons rounded up to whole update groups, ``min(lanes, U ceil(n_l / U))``. Lanes past
        it are padding in every chunk: never stored, read as 0 (the learning engine still draws
        for them, so the random stream does not depend on this)."""
        U = self.update_lanes_of(l)
        return min(self.lanes, U * -(-self.layers[l] // U))

    def weights_stacked(self, l: int) -> bool:
        """Whether hidden layer ``l``'s RTL core keeps ``W_l`` transposed in the rows after
        ``W_{l-1}``'s (word ``n_{l-1} C_l + k C_l + c``) of one weight memory, instead of a
        memory of its own: when ``weights[l-1]`` and ``weights[l]`` have one width and fraction,
        without on-chip learning (its engine writes the copy through a port of its own)."""
        if not 1 <= l < self.n_layers - 1 or self.learning is not None:
            return False
        below, above = self.weights[l - 1], self.weights[l]
        return (below.width, below.frac) == (above.width, above.frac)

    def update_lanes_of(self, l: int) -> int:
        """``U_l``, the neurons layer ``l``'s RTL core updates per cycle: ``update_lanes``, or
        its entry ``l`` when the config gives one per layer."""
        U = self.update_lanes
        return int(U[l]) if isinstance(U, tuple) else int(U)

    @property
    def parallel_update(self) -> bool:
        """Whether some core updates more than one neuron per cycle (``U_l > 1``)."""
        return any(self.update_lanes_of(l) > 1 for l in range(len(self.layers)))

    def update_lanes_text(self) -> str:
        """``update_lanes`` for reports and file names: ``10`` or ``10/5/1`` (one per layer)."""
        U = self.update_lanes
        return "/".join(map(str, U)) if isinstance(U, tuple) else str(U)

    def groups(self, l: int) -> int:
        """Update groups of layer ``l`` in the RTL (``U_l`` neurons each, one per cycle):
        ``ceil(n_l / U_l)`` (:meth:`update_lanes_of`)."""
        return -(-self.layers[l] // self.update_lanes_of(l))

    def fan_in(self, l: int) -> tuple[int, int]:
        """(inputs from below, inputs from above) of non-input layer ``l``."""
        below = self.layers[l - 1]
        above = self.layers[l + 1] if l + 1 < len(self.layers) else 0
        return below, above

    def acc_format(self, l: int) -> RegFormat:
        """Synaptic accumulator ``acc`` of non-input layer ``l`` (1-based), derived from fan-in.

        Its fraction bits are the finest of the two matrices feeding it (each weight is shifted
        left to it, exactly); its width holds the largest possible sum, so it never overflows
        and the order of accumulation cannot change the result.
        """
        if not (isinstance(l, (int, np.integer)) and 1 <= l < len(self.layers)):
            raise ConfigError(f"layer must be in 1..{len(self.layers) - 1}, not {l!r}")
        return self._acc_formats[l - 1]

    @cached_property
    def _acc_formats(self) -> tuple:
        return tuple(self._derive_acc_format(l) for l in range(1, len(self.layers)))

    def _derive_acc_format(self, l: int) -> RegFormat:
        below, above = self.fan_in(l)
        srcs = [(below, self.weights[l - 1])]
        if above:
            srcs.append((above, self.weights[l]))
        frac = max(f.frac for _, f in srcs)
        bound = sum(n * (1 << (f.width - 1)) << (frac - f.frac) for n, f in srcs)
        return RegFormat(bound.bit_length() + 1, frac)

    @cached_property
    def eps_rom(self) -> np.ndarray:
        """eps^t codes, t = 1..n_steps, ``tables.eps_frac`` fraction bits, round half up."""
        return quantise_real(self.eps.table(self.n_steps), self.tables.eps_frac)

    @cached_property
    def lam_rom(self) -> np.ndarray:
        """lambda^t codes, t = 1..n_steps, ``tables.lam_frac`` fraction bits, round half up."""
        return quantise_real(self.lam.table(self.n_steps), self.tables.lam_frac)

    @cached_property
    def inv_lam_rom(self) -> np.ndarray:
        """1/lambda^t codes (from the exact lambda, so the encoder needs no divider)."""
        return quantise_real(1.0 / self.lam.table(self.n_steps), self.tables.inv_lam_frac)

    def rom_width(self, name: str) -> int:
        """Unsigned width of ROM ``name`` in ("eps", "lam", "inv_lam"), from its largest entry."""
        rom = {"eps": self.eps_rom, "lam": self.lam_rom, "inv_lam": self.inv_lam_rom}[name]
        return max(1, int(rom.max()).bit_length())

    @property
    def beta2_code(self) -> int:
        """``2 * beta`` with ``beta_frac`` fraction bits (the nudge gain), round half up."""
        return quantise_real(2.0 * self.beta, self.beta_frac)

    @property
    def predictive(self) -> bool:
        """False when lambda is constant 1 (no predictive coding)."""
        return not bool(np.all(self.lam_rom == (1 << self.tables.lam_frac)))

    # -- convenience ---------------------------------------------------------------------------
    def replace(self, **changes) -> "EqSpikeConfig":
        return dataclasses.replace(self, **changes)

    def with_weight_fracs(self, fracs) -> "EqSpikeConfig":
        """Copy with each matrix's weight fraction bits replaced (widths kept)."""
        fracs = list(fracs)
        if len(fracs) != len(self.weights):
            raise ConfigError(f"need one fraction-bit count per matrix ({len(self.weights)}), not {len(fracs)}")
        return self.replace(weights=tuple(dataclasses.replace(f, frac=int(fr))
                                          for f, fr in zip(self.weights, fracs)))

    def with_weight_bits(self, bits: int) -> "EqSpikeConfig":
        """Copy with every weight matrix ``bits`` wide, each format keeping its integer bits
        (``frac + bits - width``, at least 0). The one rule for weight-width sweeps."""
        return self.replace(weights=tuple(dataclasses.replace(f, width=int(bits), frac=max(0, f.frac + int(bits) - f.width))
                                          for f in self.weights))

    def with_layers(self, layers) -> "EqSpikeConfig":
        """Copy for other layer sizes, same formats (first matrix/bias format repeated if needed)."""
        n_mat = len(layers) - 1
        w = tuple(self.weights[min(i, len(self.weights) - 1)] for i in range(n_mat))
        b = tuple(self.biases[min(i, len(self.biases) - 1)] for i in range(n_mat))
        return self.replace(layers=tuple(layers), weights=w, biases=b)

    # -- JSON ------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {}
        for f in dataclasses.fields(self):
            val = getattr(self, f.name)
            if f.name in ("weights", "biases"):
                val = [dataclasses.asdict(x) for x in val]
            elif f.name == "layers" or (f.name == "update_lanes" and isinstance(val, tuple)):
                val = list(val)
            elif isinstance(val, RegFormat) or isinstance(val, TableFormats):
                val = dataclasses.asdict(val)
            elif isinstance(val, (Schedule, Learning)):
                val = val.to_dict()
            d[f.name] = val
        return d

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Any) -> "EqSpikeConfig":
        """A config from its JSON dictionary. ``layers`` is required (the sizes are the one
        thing no default can guess); every other field defaults as in :class:`EqSpikeConfig`."""
        _check_depth(data, JSON_MAX_DEPTH)
        data = dict(_check_keys("config", data, cls))
        if "layers" not in data:
            raise ConfigError("config.layers is missing (layer sizes, input first, e.g. [64, 100, 10])")
        for key in ("weights", "biases"):
            if key in data:
                if not isinstance(data[key], list):
                    raise ConfigError(f"{key} must be a list, not {data[key]!r}")
                data[key] = tuple(RegFormat.from_dict(f"{key}[{i}]", x) for i, x in enumerate(data[key]))
        for key in REGISTER_NAMES:
            if key in data:
                data[key] = RegFormat.from_dict(key, data[key])
        for key in ("eps", "lam"):
            if key in data:
                data[key] = Schedule.from_dict(key, data[key])
        if data.get("learning") is not None:
            data["learning"] = Learning.from_dict("learning", data["learning"])
        if "tables" in data:
            data["tables"] = TableFormats(**_check_keys("tables", data["tables"], TableFormats))
        if "layers" in data and isinstance(data["layers"], list):
            data["layers"] = tuple(data["layers"])
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "EqSpikeConfig":
        if len(text) > JSON_MAX_CHARS:
            raise ConfigError(f"config JSON is {len(text)} characters, more than {JSON_MAX_CHARS}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"config is not valid JSON: {e}") from None
        except RecursionError:
            raise ConfigError(f"config JSON is nested more than {JSON_MAX_DEPTH} levels deep") from None
        except ValueError as e:  # e.g. an integer literal with thousands of digits
            raise ConfigError(f"config JSON holds an unreadable value ({str(e).splitlines()[0][:80]})") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> "EqSpikeConfig":
        """Read a config JSON file (UTF-8); every problem is a one-line :class:`ConfigError`."""
        path = Path(path)
        if path.is_dir():
            raise ConfigError(f"config file {str(path)!r} is a directory")
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        try:
            raw = path.read_bytes()[:JSON_MAX_CHARS * 4 + 1]
            text = raw.decode("utf-8")
        except OSError as e:
            raise ConfigError(f"config file {str(path)!r} cannot be read ({e.strerror or e})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config file {str(path)!r} is not UTF-8 text") from None
        try:
            return cls.from_json(text)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    def summary(self) -> str:
        """A few lines describing the config (for Verilog headers and reports)."""
        lines = [
            f"layers {'-'.join(map(str, self.layers))}, {self.n_free} free + {self.n_nudged} nudged steps, "
            f"beta {self.beta}, {self.lanes} lane(s)"
            + (f", {self.update_lanes_text()} update lanes" if self.parallel_update else "")
            + (f", {self.mul_stages} stages per multiply" if self.mul_stages > 1 else ""),
            "weights " + ", ".join(f.describe() for f in self.weights)
            + "; biases " + ", ".join(f.describe() for f in self.biases),
            "registers " + ", ".join(f"{n} {getattr(self, n).describe()}" for n in REGISTER_NAMES),
            f"eps {self.eps.to_dict()}, lambda {self.lam.to_dict()}",
        ]
        if self.learning is not None:
            lrn = self.learning
            lines.append(
                "learning: W " + ", ".join(self.learn_format(l).describe() for l in range(len(self.weights)))
                + ", gains " + ", ".join(f"{m}*2^-{k}" for m, k in zip(lrn.rate_mult, lrn.rate_shift))
                + f", {lrn.rounding} rounding ({lrn.rng_bits} LFSR bits), seed {lrn.seed}")
        return "\n".join(lines)


def default_config(layers=(64, 100, 10)) -> EqSpikeConfig:
    """The config the RTL ships with (see docs/fixed_point.md for why these formats)."""
    return EqSpikeConfig().with_layers(layers)


def learning_config(layers=(64, 100, 10), lr=(0.1, 0.05), **changes) -> EqSpikeConfig:
    """The default config with on-chip learning: s1.7 weights, per-sample gains equivalent to the
    paper's ``lr`` at minibatch 20 (``Learning.from_rates``); ``changes`` go to :class:`Learning`."""
    cfg = default_config(layers)
    # from-scratch training: s1.7 weights (Glorot init of a 784-input layer is only +-0.068, 4
    # codes of s2.6; trained weights stay inside +-1)
    cfg = cfg.replace(weights=(RegFormat(8, 7),) * len(cfg.weights))
    lr = tuple(lr) if len(lr) == len(cfg.weights) else tuple(lr[min(i, len(lr) - 1)] for i in range(len(cfg.weights)))
    return cfg.replace(learning=Learning.from_rates(lr, cfg.beta, **changes))


def narrow_config(layers=(16, 12, 4)) -> EqSpikeConfig:
    """A deliberately narrow config: random weights drive v, x, a and phi into saturation."""
    return EqSpikeConfig(
        layers=tuple(layers),
        weights=(RegFormat(4, 2),) * (len(layers) - 1),
        biases=(RegFormat(6, 4),) * (len(layers) - 1),
        v=RegFormat(7, 4), x=RegFormat(7, 4, rounding="floor"),
        s=RegFormat(7, 6, signed=False, overflow="clip"),
        a=RegFormat(5, 3), phi=RegFormat(5, 3),
        eps=Schedule.power(0.8, 0.3), lam=Schedule.power(0.6, 0.5),
        tables=TableFormats(eps_frac=8, lam_frac=8, inv_lam_frac=6),
        n_free=30, n_nudged=10,
    )


def wide_config(layers=(64, 100, 10), **changes) -> EqSpikeConfig:
    """A very wide config: fixed point that tracks the float model closely (for tests)."""
    return EqSpikeConfig(
        layers=tuple(layers),
        weights=(RegFormat(30, 24),) * (len(layers) - 1),
        biases=(RegFormat(32, 24),) * (len(layers) - 1),
        v=RegFormat(32, 24), x=RegFormat(32, 24), s=RegFormat(25, 24, signed=False, overflow="clip"),
        a=RegFormat(32, 24), phi=RegFormat(32, 24),
        tables=TableFormats(eps_frac=20, lam_frac=20, inv_lam_frac=20),
        beta_frac=20,
    ).replace(**changes)
