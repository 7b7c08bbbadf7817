"""Bit-accurate fixed-point model of the binary dynamics: the specification of the hardware.

Integer numpy arithmetic (int64 inside), narrowed at every architectural register by the
named helpers of :mod:`golden_model.fixedpoint`. Register names are the RTL's. One tick ``t``
(1-based) of every non-input layer ``l``, all from the previous tick's spikes and states, is
the chain of named stages of :mod:`golden_model.datapath` (where each formula is written,
once): ``accumulate`` (:meth:`FixedModel._synaptic_sum`), ``decode_v``, ``neuron_input``,
``state_step``; then every layer, the clamped input layer (``s`` = input) too, runs
``predictive_encode`` and ``sigma_delta``.

``rho(s) = s`` and ``rho'(s) = 1`` because ``s`` is held in [0, 1] by ``clip_unit``. The
accumulator is sized from fan-in, so the sum is exact and independent of accumulation order;
it is computed with a float BLAS product only where that is provably exact (every partial sum
is an integer below 2**24 for float32, 2**53 for float64). Every other intermediate fits int64
by :mod:`golden_model.int64_guard`, which the config checks; ``FixedModel(..., audit=...)``
runs on exact Python integers and checks each intermediate against its bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import datapath
from .config import ConfigError, EqSpikeConfig, RegFormat
from .fixedpoint import quantise_real, saturate, wrap
from .int64_guard import intermediate_bounds

__all__ = ["FixedPointOverflow", "FixedState", "FixedModel", "Int64Audit", "quantise_params", "QuantReport"]


class FixedPointOverflow(ArithmeticError):
    """Raised in strict mode when a register overflows its format."""


@dataclass
class FixedState:
    """Registers of a batch, lists indexed by layer (0 = input; ``None`` where a layer has none).

    Members: ``t`` (ticks done), ``acc``, ``v``, ``x`` (non-input layers), ``s``, ``a``,
    ``rho_last``, ``phi``, ``q`` (every layer), ``y`` (target codes, s format, or None).
    All int64 arrays of shape (batch, n_l).
    """

    t: int
    s: list
    a: list
    rho_last: list
    phi: list
    q: list
    acc: list
    v: list
    x: list
    y: np.ndarray | None
    lookahead: object = None   # FixedModel's input-layer look-ahead cache (not a register)

    def registers(self, l: int) -> dict:
        """Every register of layer ``l`` by its RTL name."""
        names = ("s", "a", "rho_last", "phi", "q") + (("acc", "v", "x") if l > 0 else ())
        return {n: getattr(self, n)[l] for n in names}

    def copy(self) -> "FixedState":
        cp = lambda xs: [None if a is None else a.copy() for a in xs]
        return FixedState(self.t, cp(self.s), cp(self.a), cp(self.rho_last), cp(self.phi), cp(self.q),
                          cp(self.acc), cp(self.v), cp(self.x), None if self.y is None else self.y.copy())


@dataclass
class QuantReport:
    """What quantising float parameters to a config lost: clipped counts per matrix/bias."""

    weight_clipped: list
    bias_clipped: list
    weight_total: list
    bias_total: list

    @property
    def any_clipped(self) -> bool:
        return any(self.weight_clipped) or any(self.bias_clipped)

    def describe(self) -> str:
        parts = [f"W{i}: {c} of {n} clipped" for i, (c, n) in enumerate(zip(self.weight_clipped, self.weight_total))]
        parts += [f"b{i + 1}: {c} of {n} clipped" for i, (c, n) in enumerate(zip(self.bias_clipped, self.bias_total))]
        return "; ".join(parts)


class Int64Audit:
    """Probe for audit runs: records the largest magnitude of every datapath intermediate and
    raises ``AssertionError`` when one exceeds its :mod:`golden_model.int64_guard` bound (or has
    no bound). Use with exact Python integers (``FixedModel(..., audit=Int64Audit(cfg))``).

    Members
    -------
    seen : dict
        ``{probe name: largest |value| seen}``.
    """

    def __init__(self, cfg: EqSpikeConfig):
        self.bounds = intermediate_bounds(cfg)
        self.seen = {}

    def __call__(self, name: str, value):
        if name not in self.bounds:
            raise AssertionError(f"intermediate {name!r} has no int64 bound")
        arr = np.asarray(value, dtype=object)
        m = int(max(abs(int(arr.max())), abs(int(arr.min())))) if arr.size else 0
        if m > self.bounds[name][0]:
            raise AssertionError(f"intermediate {name!r} reached {m}, above its bound {self.bounds[name][0]}")
        self.seen[name] = max(self.seen.get(name, 0), m)
        return value


def _quantise(x, fmt: RegFormat):
    codes = quantise_real(x, fmt.frac, fmt.rounding)
    clipped = int(np.count_nonzero((codes < fmt.min_code) | (codes > fmt.max_code)))
    return saturate(codes, fmt.min_code, fmt.max_code), clipped


def quantise_params(cfg: EqSpikeConfig, params) -> tuple[list, list, QuantReport]:
    """Float weights/biases to codes in the config's formats (round half up, saturate, counted)."""
    if tuple(params.layers) != cfg.layers:
        raise ConfigError(f"weights are for layers {list(params.layers)}, config has {list(cfg.layers)}")
    w_codes, b_codes, wc, bc = [], [], [], []
    for w, fmt in zip(params.weights, cfg.weights):
        c, n = _quantise(w, fmt)
        w_codes.append(c)
        wc.append(n)
    for b, fmt in zip(params.biases, cfg.biases):
        c, n = _quantise(b, fmt)
        b_codes.append(c)
        bc.append(n)
    report = QuantReport(wc, bc, [w.size for w in params.weights], [b.size for b in params.biases])
    return w_codes, b_codes, report


class FixedModel:
    """Bit-accurate model of a network built from ``cfg``.

    Parameters
    ----------
    cfg : EqSpikeConfig
    weights, biases : list of int arrays
        Codes in the config's formats; a code that does not fit raises ``ConfigError``.
    strict : bool
        Raise :class:`FixedPointOverflow` on any register overflow (saturation or wrap). The
        algorithm's clamp of ``s`` to [0, 1] is declared by the spec and never raises.
    lookahead : bool
        Encode the clamped input layer ahead in blocks (faster, identical results; see
        ``_lookahead``). State arrays must then be replaced, not modified in place, between ticks.
    audit : Int64Audit or None
        Run on exact Python integers (object arrays, no float products, no look-ahead) and pass
        every datapath intermediate to ``audit`` (tests of the int64 guard). Slow.

    Members
    -------
    overflows : dict
        Count of overflow events per register name (elements x ticks), since construction.
    """

    def __init__(self, cfg: EqSpikeConfig, weights, biases, strict: bool = False, lookahead: bool = True,
                 audit: Int64Audit | None = None):
        self.cfg = cfg
        self.strict = strict
        self.audit = audit
        self.lookahead = lookahead and audit is None
        self._probe = datapath.passthrough if audit is None else audit
        self._int = np.int64 if audit is None else object
        L = cfg.layers
        if len(weights) != len(L) - 1 or len(biases) != len(L) - 1:
            raise ConfigError(f"need {len(L) - 1} weight matrices and bias vectors, not {len(weights)}/{len(biases)}")
        self.weights, self.biases = [], []
        for i, (w, fmt) in enumerate(zip(weights, cfg.weights)):
            w = np.asarray(w)
            if w.shape != (L[i], L[i + 1]):
                raise ConfigError(f"W{i} must have shape {(L[i], L[i + 1])}, not {w.shape}")
            self._check_codes(f"W{i}", w, fmt)
            self.weights.append(w.astype(self._int))
        for i, (b, fmt) in enumerate(zip(biases, cfg.biases)):
            b = np.asarray(b)
            if b.shape != (L[i + 1],):
                raise ConfigError(f"b{i + 1} must have shape {(L[i + 1],)}, not {b.shape}")
            self._check_codes(f"b{i + 1}", b, fmt)
            self.biases.append(b.astype(self._int))
        self.overflows = {n: 0 for n in ("v", "x", "a", "phi")}
        self._ranges = {n: (getattr(cfg, n).min_code, getattr(cfg, n).max_code) for n in self.overflows}
        self._prepare_products()

    @staticmethod
    def _check_codes(name, arr, fmt: RegFormat):
        exact_ints = arr.dtype == object and all(isinstance(c, (int, np.integer)) for c in arr.flat)
        if not (np.issubdtype(arr.dtype, np.integer) or exact_ints):
            raise ConfigError(f"{name} must hold integer codes, not {arr.dtype}")
        if arr.size and (arr.min() < fmt.min_code or arr.max() > fmt.max_code):
            bad = arr.max() if arr.max() > fmt.max_code else arr.min()
            raise ConfigError(f"{name} code {int(bad)} does not fit {fmt.describe()} "
                              f"([{fmt.min_code}, {fmt.max_code}])")

    @classmethod
    def from_float(cls, cfg: EqSpikeConfig, params, strict: bool = False) -> "FixedModel":
        w, b, _ = quantise_params(cfg, params)
        return cls(cfg, w, b, strict=strict)

    def _prepare_products(self):
        """Weights shifted to each accumulator's fraction bits, as exact float BLAS operands
        (exact Python integers in an audit)."""
        cfg, L = self.cfg, self.cfg.layers
        self._up, self._down = [None] * len(L), [None] * len(L)
        for l in range(1, len(L)):
            acc = cfg.acc_format(l)
            dtype = object if self.audit is not None else np.float32 if acc.width - 1 <= 24 else np.float64
            if acc.width - 1 > 53:
                raise ConfigError(f"accumulator of layer {l} ({acc.width} bits) is too wide for exact evaluation")
            shift = lambda i: self._probe("acc: W << (F_acc - F_W)", self.weights[i] << (acc.frac - cfg.weights[i].frac))
            self._up[l] = shift(l - 1).astype(dtype)
            if l + 1 < len(L):
                self._down[l] = np.ascontiguousarray(shift(l).T).astype(dtype)

    # -- narrowing -------------------------------------------------------------------------------
    def _narrow(self, value, fmt: RegFormat, name: str, l: int, t: int):
        """Fit ``value`` (codes already at ``fmt.frac``) into ``fmt`` by its overflow rule."""
        lo, hi = self._ranges[name]
        if value.min() >= lo and value.max() <= hi:     # the common case, two reductions
            return value
        over = (value < lo) | (value > hi)
        n = int(np.count_nonzero(over))
        if n == 0:
            return value
        self.overflows[name] += n
        if self.strict:
            bad = value[over].flat[0]
            raise FixedPointOverflow(
                f"register {name} of layer {l} overflowed at tick {t}: code {int(bad)} outside "
                f"[{lo}, {hi}] ({fmt.describe()}, {fmt.overflow})")
        if fmt.overflow == "wrap":
            return wrap(value, fmt.width, fmt.signed)
        return saturate(value, lo, hi)

    # -- transaction-level API -----------------------------------------------------------------
    def encode_inputs(self, x) -> np.ndarray:
        """Real inputs in [0, 1] to s-format codes (round half up); outside [0, 1] is an error."""
        x = np.asarray(x, dtype=np.float64)
        if x.size and (x.min() < 0.0 or x.max() > 1.0):
            raise ValueError(f"inputs and targets must lie in [0, 1], found [{x.min()}, {x.max()}]")
        return quantise_real(x, self.cfg.s.frac)

    def reset(self, x_codes, y_codes=None) -> FixedState:
        """Zero every register; clamp the input layer to ``x_codes`` (batch, n0)."""
        L = self.cfg.layers
        x_codes = np.asarray(x_codes, dtype=np.int64).astype(self._int)
        if x_codes.ndim != 2 or x_codes.shape[1] != L[0]:
            raise ValueError(f"input codes must have shape (batch, {L[0]}), not {x_codes.shape}")
        one = 1 << self.cfg.s.frac
        if x_codes.min() < 0 or x_codes.max() > one:
            raise ValueError(f"input codes must lie in [0, {one}]")
        B = x_codes.shape[0]
        z = lambda: [np.zeros((B, n), dtype=self._int) for n in L]
        zn = lambda: [None] + [np.zeros((B, n), dtype=self._int) for n in L[1:]]
        s = z()
        s[0] = x_codes.copy()
        if y_codes is not None:
            y_codes = np.asarray(y_codes, dtype=np.int64).astype(self._int)
            if y_codes.shape != (B, L[-1]):
                raise ValueError(f"target codes must have shape {(B, L[-1])}, not {y_codes.shape}")
        return FixedState(0, s, z(), z(), z(), z(), zn(), zn(), zn(), y_codes)

    def tick(self, st: FixedState, nudge_sign: int = 0) -> list:
        """One step of every layer; ``nudge_sign`` is 0 (free), +1 or -1 (nudged, sign of beta).

        The stages of :mod:`golden_model.datapath`, in order. Returns the new spikes, one int64
        0/1 array per layer.
        """
        cfg, probe = self.cfg, self._probe
        k = len(cfg.layers) - 1
        st.t += 1
        t = st.t
        if t > cfg.n_steps:
            raise ValueError(f"tick {t} is past the schedule tables ({cfg.n_steps} steps)")
        if nudge_sign and st.y is None:
            raise ValueError("the nudged phase needs target codes")
        eps, lam, inv_lam = (int(r[t - 1]) for r in (cfg.eps_rom, cfg.lam_rom, cfg.inv_lam_rom))
        new_s = [st.s[0]]
        for l in range(1, k + 1):
            narrow = lambda value, name, l=l: self._narrow(value, getattr(cfg, name), name, l, t)
            st.acc[l] = self._synaptic_sum(st, l, t)
            st.v[l] = datapath.decode_v(cfg, l, st.acc[l], st.v[l], lam, narrow, probe)
            st.x[l] = datapath.neuron_input(cfg, l, st.v[l], self.biases[l - 1], st.y, st.s[l],
                                            nudge_sign, narrow, probe)
            new_s.append(datapath.state_step(cfg, st.x[l], st.s[l], eps, probe))
        st.s = new_s
        if not self._encode_input_from_lookahead(st, t):
            self._encode(st, 0, inv_lam, t)
        for l in range(1, k + 1):
            self._encode(st, l, inv_lam, t)
        return st.q

    @datapath.stage("accumulate")
    def _synaptic_sum(self, st: FixedState, l: int, t: int):
        """Layer ``l``'s synaptic sum: the previous tick's spikes times the weights shifted to the
        accumulator's fraction bits, exact (module docstring)."""
        q = st.q
        prod = self._input_drive(st, t) if l == 1 else q[l - 1].astype(self._up[l].dtype) @ self._up[l]
        if l < len(self.cfg.layers) - 1:
            prod = prod + q[l + 1].astype(self._down[l].dtype) @ self._down[l]
        return self._probe("acc: sum", prod.astype(self._int))

    def _encode(self, st: FixedState, l: int, inv_lam: int, t: int) -> None:
        narrow = lambda value, name: self._narrow(value, getattr(self.cfg, name), name, l, t)
        r = st.s[l]
        st.a[l], st.phi[l], st.q[l] = self._encoder_step(r, st.rho_last[l], st.phi[l], inv_lam, narrow)
        st.rho_last[l] = r

    def _encoder_step(self, r, rho_last, phi, inv_lam: int, narrow):
        """Stages ``predictive_encode`` then ``sigma_delta``; returns (a, phi, q)."""
        a = datapath.predictive_encode(self.cfg, r, rho_last, inv_lam, narrow, self._probe)
        phi, q = datapath.sigma_delta(self.cfg, a, phi, narrow, self._probe)
        return a, phi, q

    # -- input-layer look-ahead (speed only; results identical) ---------------------------------
    # The clamped input layer's registers depend only on its codes and the 1/lambda ROM, never on
    # the network: they are encoded ahead for a block of ticks, and the block's spikes multiplied
    # by W_0 in one large product (integer sums: exact in any order). Overflows met on the way
    # are recorded per tick and counted or raised at their own tick, as the per-tick path does.
    # The cache is used only while the state still holds the very arrays it produced.

    def _lookahead(self, st: FixedState, t: int) -> dict:
        B, n0 = st.s[0].shape
        K = max(1, min(self.cfg.n_steps - t + 2, 64, (1 << 21) // max(1, B * max(n0, self.cfg.layers[1]))))
        Q = np.empty((K, B, n0), dtype=np.int64)
        Q[0] = st.q[0]
        regs, events = [None], [None]
        r, rho_last, phi = st.s[0], st.rho_last[0], st.phi[0]
        for i in range(1, K):
            if t + i - 1 > self.cfg.n_steps:
                break
            seen = {}

            def narrow(value, name, seen=seen):
                lo, hi = self._ranges[name]
                if value.min() >= lo and value.max() <= hi:
                    return value
                over = (value < lo) | (value > hi)
                seen[name] = (int(np.count_nonzero(over)), int(value[over].flat[0]))
                fmt = getattr(self.cfg, name)
                return wrap(value, fmt.width, fmt.signed) if fmt.overflow == "wrap" else saturate(value, lo, hi)

            a, phi, Q[i] = self._encoder_step(r, rho_last, phi, int(self.cfg.inv_lam_rom[t + i - 2]), narrow)
            rho_last = r
            regs.append((a, phi, Q[i]))
            events.append(seen)
        K = len(regs)
        W = self._up[1]
        U = (Q[:K].reshape(K * B, n0).astype(W.dtype) @ W).reshape(K, B, -1)
        return {"t0": t, "U": U, "regs": regs, "events": events, "r": r,
                "q": [st.q[0]] + [g[2] for g in regs[1:]],
                "phi": [st.phi[0]] + [g[1] for g in regs[1:]], "rho_last0": st.rho_last[0]}

    def _input_drive(self, st: FixedState, t: int) -> np.ndarray:
        """``q_0^{t-1} @ W_0`` shifted to the accumulator's fraction bits (exact)."""
        c = st.lookahead
        i = t - c["t0"] if c is not None else -1
        if not (self.lookahead and 0 <= i < len(c["U"]) and st.s[0] is c["r"] and st.q[0] is c["q"][i]
                and st.phi[0] is c["phi"][i] and st.rho_last[0] is (c["rho_last0"] if i == 0 else c["r"])):
            if not self.lookahead:
                W = self._up[1]
                return st.q[0].astype(W.dtype) @ W
            st.lookahead = c = self._lookahead(st, t)
        return c["U"][t - c["t0"]]

    def _encode_input_from_lookahead(self, st: FixedState, t: int) -> bool:
        c = st.lookahead      # validated against the state by _input_drive earlier in this tick
        i = t - c["t0"] + 1 if c is not None else -1
        if not self.lookahead or c is None or not 1 <= i < len(c["regs"]):
            return False
        for name, (n, bad) in c["events"][i].items():
            self.overflows[name] += n
            if self.strict:
                fmt = getattr(self.cfg, name)
                raise FixedPointOverflow(
                    f"register {name} of layer 0 overflowed at tick {t}: code {bad} outside "
                    f"[{fmt.min_code}, {fmt.max_code}] ({fmt.describe()}, {fmt.overflow})")
        st.a[0], st.phi[0], st.q[0] = c["regs"][i]
        st.rho_last[0] = st.s[0]
        return True

    def run(self, st: FixedState, n_steps: int, nudge_sign: int = 0, callback=None) -> None:
        for _ in range(n_steps):
            self.tick(st, nudge_sign)
            if callback is not None:
                callback(st)

    def free_phase(self, x_codes) -> FixedState:
        st = self.reset(x_codes)
        self.run(st, self.cfg.n_free)
        return st

    def predict(self, x_codes) -> np.ndarray:
        return np.argmax(self.free_phase(x_codes).s[-1], axis=1)

    def state_values(self, st: FixedState) -> list:
        """States as reals (codes * 2**-s.frac)."""
        return [s * self.cfg.s.lsb for s in st.s]


def choose_frac(max_abs: float, fmt: RegFormat) -> int:
    """Largest fraction-bit count at which ``max_abs`` still fits ``fmt``'s width unclipped.

    A per-matrix power-of-two scale: saturation costs more accuracy than resolution (spec 8).
    """
    f = 0 if max_abs <= 0 else int(np.floor(np.log2((fmt.max_code + 0.5) / max_abs)))
    f = min(max(f, 0), fmt.width + 16)
    while f > 0 and quantise_real(max_abs, f, fmt.rounding) > fmt.max_code:
        f -= 1
    return f


def fit_weight_formats(cfg: EqSpikeConfig, params) -> EqSpikeConfig:
    """Copy of ``cfg`` whose per-matrix weight fraction bits are chosen from ``params``' range."""
    return cfg.with_weight_fracs([choose_frac(float(np.abs(w).max()), f)
                                  for w, f in zip(params.weights, cfg.weights)])
