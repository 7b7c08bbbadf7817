"""Bit-accurate model of on-chip EqProp learning: the specification of the RTL update engine.

One training sample (``OnChipLearner.train_sample``, the RTL's ``TRAIN`` command), minibatch 1:

1. draw 0 of the sample from the LFSR (:mod:`golden_model.lfsr`): beta's sign is ``+`` when
   its bit 0 is 0, ``-`` otherwise;
2. RESET, ``n_free`` free ticks -> ``s^-`` (every layer; the input layer's is the input ``x``),
   ``n_nudged`` nudged ticks with that sign -> ``s^+``, in :class:`FixedModel` with the
   inference weights ``W_inf = min((W + 2^(E-1)) >> E, max)``, ``E = extra_frac`` (round half
   up, saturated at the inference format's top code);
3. update every synapse of every matrix ``l``, row ``i`` (layer l), column ``j`` (layer l+1),
   with integer states (``F_s`` fraction bits)::

       H   = s_i^- (s_j^+ - s_j^-) + (s_i^+ - s_i^-) s_j^-         exact, 2 F_s fraction bits
       G   = sign * m_l * H
       dW  = (G + R) >> D_l                                         D_l = 2 F_s + k_l - F_learn(W_l)
       W   = saturate(W + dW)                                       learning format of W_l

   and every bias of layer ``l+1`` with ``H = s_j^+ - s_j^-``, ``D = F_s + k_l - F_b``.
   ``R`` is the rounding offset: ``nearest``: ``2^(D-1)`` (round half up; 0 when D = 0);
   ``stochastic``: the synapse's ``r``-bit draw ``d`` aligned to the top of the dropped bits
   and centred, ``(d << (D - r)) + 2^(D-r-1)`` when D > r, ``d >> (r - D)`` when D <= r
   (uniform over the dropped bits' range: exactly unbiased when D <= r; when D > r it is
   sign-symmetric and biased by at most 2^-(r+1) LSB, where a plain ``d << (D - r)`` would
   pull every update smaller than 2^-r LSB towards minus infinity).

Draw order within a sample (stochastic rounding; nearest rounding uses draw 0 only): the sign;
then per matrix ``l = 0, 1, ...``, per row ``i``, per chunk ``g`` of ``C = ceil(n_{l+1}/lanes)``,
per lane: one draw for synapse ``(i, g*lanes + lane)`` (padding lanes past ``n_{l+1}`` consume
their draw too); then per layer ``l = 1, 2, ...``, per neuron: one draw for its bias. So the
RTL's update pass draws ``lanes`` per cycle and the bias pass one per cycle.

The update is sign * (1/|beta|) * lr * the contrastive Hebbian term of spec section 4, with
``m_l 2^-k_l`` standing for ``lr_l / |beta|`` per sample; see :meth:`Learning.from_rates` for the
scaling from the paper's minibatch of 20.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from . import datapath
from .config import ConfigError, EqSpikeConfig
from .fixed_model import FixedModel, Int64Audit, _quantise
from .fixedpoint import quantise_real, saturate
from .lfsr import Draws

__all__ = ["SampleResult", "OnChipLearner", "draws_per_sample", "learning_codes"]


def draws_per_sample(cfg: EqSpikeConfig) -> int:
    """LFSR draws one training sample consumes (see the module docstring for the order)."""
    if cfg.learning.rounding == "nearest":
        return 1
    L, lanes = cfg.layers, cfg.lanes
    weights = sum(L[l] * -(-L[l + 1] // lanes) * lanes for l in range(len(L) - 1))
    return 1 + weights + sum(L[1:])


def learning_codes(cfg: EqSpikeConfig, params):
    """Float ``params`` to learning-format weight codes and bias codes (round half up,
    saturate); returns (weights, biases, clipped count)."""
    w_codes, clipped = [], 0
    for l, w in enumerate(params.weights):
        c, n = _quantise(w, cfg.learn_format(l))
        w_codes.append(c)
        clipped += n
    b_codes = []
    for l, b in enumerate(params.biases):
        c, n = _quantise(b, cfg.biases[l])
        b_codes.append(c)
        clipped += n
    return w_codes, b_codes, clipped


@dataclass
class SampleResult:
    """What one training sample did: beta's sign, the free-phase prediction, the states."""

    sign: int
    prediction: int
    s_free: list
    s_nudged: list


class OnChipLearner:
    """The on-chip learning network: learning-format weights, biases and the LFSR.

    Parameters
    ----------
    cfg : EqSpikeConfig
        Must have a ``learning`` section.
    weights : list of int arrays
        Learning-format codes (``cfg.learn_format(l)``), shape ``(n_l, n_{l+1})``.
    biases : list of int arrays
        Bias codes (``cfg.biases``).

    Members
    -------
    saturations : int
        Weight and bias updates that hit their format's limit, since construction.
    draws : Draws
        The LFSR stream (its ``state`` is the RTL's LFSR register between samples).
    """

    def __init__(self, cfg: EqSpikeConfig, weights, biases, audit: Int64Audit | None = None):
        if cfg.learning is None:
            raise ConfigError("on-chip learning needs a config with a 'learning' section")
        self.cfg = cfg
        self.audit = audit          # exact-integer audit of the int64 guard (FixedModel's ``audit``)
        self._probe = datapath.passthrough if audit is None else audit
        self._int = np.int64 if audit is None else object
        L = cfg.layers
        self.weights, self.biases = [], []
        for l, w in enumerate(weights):
            w = np.asarray(w)
            FixedModel._check_codes(f"W{l} (learning format)", w, cfg.learn_format(l))
            if w.shape != (L[l], L[l + 1]):
                raise ConfigError(f"W{l} must have shape {(L[l], L[l + 1])}, not {w.shape}")
            self.weights.append(w.astype(self._int))
        for l, b in enumerate(biases):
            b = np.asarray(b)
            FixedModel._check_codes(f"b{l + 1}", b, cfg.biases[l])
            if b.shape != (L[l + 1],):
                raise ConfigError(f"b{l + 1} must have shape {(L[l + 1],)}, not {b.shape}")
            self.biases.append(b.astype(self._int))
        if len(self.weights) != len(L) - 1 or len(self.biases) != len(L) - 1:
            raise ConfigError(f"need {len(L) - 1} weight matrices and bias vectors")
        self.draws = Draws(cfg.learning.seed, cfg.learning.rng_bits)
        self.saturations = 0
        self.samples = 0

    @classmethod
    def from_float(cls, cfg: EqSpikeConfig, params) -> "OnChipLearner":
        w, b, _ = learning_codes(cfg, params)
        return cls(cfg, w, b)

    # -- inference view ---------------------------------------------------------------------------
    def inference_weights(self) -> list:
        """What the accumulators add: ``W_inf = min((W + 2^(E-1)) >> E, max)`` (round half up to
        the inference format, saturated at its top code; ``W_inf = W`` when ``E = 0``).

        Round, not floor: a floor would shift every weight by -1/2 inference LSB on average,
        which summed over a 784-input fan-in silences the hidden layer of a fresh network."""
        return [datapath.inference_weight(self.cfg, l, w, self._probe) for l, w in enumerate(self.weights)]

    def model(self) -> FixedModel:
        """A :class:`FixedModel` of the current weights (inference formats)."""
        return FixedModel(self.cfg, self.inference_weights(), self.biases, audit=self.audit)

    def predict(self, x_codes, batch: int = 500) -> np.ndarray:
        model = self.model()
        x_codes = np.asarray(x_codes)
        return np.concatenate([model.predict(x_codes[i:i + batch]) for i in range(0, len(x_codes), batch)]
                              ) if len(x_codes) else np.zeros(0, dtype=np.int64)

    # -- one sample ------------------------------------------------------------------------------
    def offsets(self, d, D: int) -> np.ndarray:
        """Rounding offsets ``R`` for right shift ``D`` from draws ``d`` (module docstring)."""
        if d is not None and self.audit is not None:
            d = np.asarray(d).astype(object)
        return datapath.rounding_offset(self.cfg, D, d, self._probe)

    def train_sample(self, x_codes, y_codes, reference: bool = False) -> SampleResult:
        """One sample: sign draw, free and nudged phase, update of every weight and bias.

        ``x_codes``, ``y_codes``: 1-D input and target codes in ``s``'s format. By default the
        fused kernels of :mod:`golden_model.onchip_kernels` run it (bit-exact, about 10x faster
        at minibatch 1); ``reference=True`` runs the readable specification: :class:`FixedModel`
        tick by tick and the numpy :meth:`update`.
        """
        x, y = self._check_sample(x_codes, y_codes)
        sign = -1 if int(self.draws.take(1)[0]) & 1 else 1
        if reference or self.audit is not None:
            model = self.model()
            st = model.reset(x[None, :], y[None, :])
            model.run(st, self.cfg.n_free, 0)
            s_free = [s[0].copy() for s in st.s]
            model.run(st, self.cfg.n_nudged, sign)
            s_nudged = [s[0].copy() for s in st.s]
            self.update(s_free, s_nudged, sign)
        else:
            s_free, s_nudged, _ = self.run_phases(x, y, sign)
            self._update_fast(s_free, s_nudged, sign)
        self.samples += 1
        return SampleResult(sign, int(np.argmax(s_free[-1])), s_free, s_nudged)

    def _check_sample(self, x_codes, y_codes):
        """Input and target codes as 1-D int64 arrays, checked as :meth:`FixedModel.reset` does."""
        L, one = self.cfg.layers, 1 << self.cfg.s.frac
        x = np.asarray(x_codes, dtype=np.int64)
        y = np.asarray(y_codes, dtype=np.int64)
        if x.shape != (L[0],):
            raise ValueError(f"input codes must have shape ({L[0]},), not {x.shape}")
        if x.min() < 0 or x.max() > one:
            raise ValueError(f"input codes must lie in [0, {one}]")
        if y.shape != (L[-1],):
            raise ValueError(f"target codes must have shape ({L[-1]},), not {y.shape}")
        return x, y

    def run_phases(self, x, y, sign: int):
        """Free and nudged phase of one sample in the fused kernel (the current inference weights).

        Returns (s^- per layer, s^+ per layer, overflow counts ``{"v", "x", "a", "phi"}``), the
        same integers as :class:`FixedModel` ``reset``/``run`` at batch 1.
        """
        from . import onchip_kernels as K
        p = self._plan
        w_up, w_down, bias = p["w_up"], p["w_down"], p["bias"]     # reused: fully overwritten
        e = self.cfg.learning.extra_frac
        for l, (w, f) in enumerate(zip(self.weights, self.cfg.weights)):
            view = w_up[p["up_off"][l]:p["up_off"][l + 1]].reshape(w.shape)
            if e == 0:
                view[...] = w
            else:
                K.inference_weights(w, e, f.max_code, view)
            if l >= 1:
                w_down[p["down_off"][l]:p["down_off"][l + 1]].reshape(w.shape[::-1])[...] = view.T
        for l, b in enumerate(self.biases):
            bias[p["off"][l + 1]:p["off"][l + 2]] = b
        s_free, s_nudged, counts = K.run_phases(
            p["sizes"], p["off"], w_up, p["up_off"], w_down, p["down_off"], p["shift_up"],
            p["shift_down"], p["acc_frac"], bias, p["bias_frac"], p["fmt"], p["eps_rom"],
            p["lam_rom"], p["inv_lam_rom"], p["tables_frac"], p["beta_frac"], p["beta2"],
            x, y, self.cfg.n_free, self.cfg.n_nudged, int(sign), p["acc_up"], p["acc_down"], p["part"])
        off = p["off"]
        split = lambda s: [s[off[l]:off[l + 1]].copy() for l in range(len(off) - 1)]
        return split(s_free), split(s_nudged), dict(zip(("v", "x", "a", "phi"), counts.tolist()))

    @cached_property
    def _plan(self) -> dict:
        """Everything the fused kernels need that depends on the config alone."""
        from . import onchip_kernels as K
        cfg, L = self.cfg, self.cfg.layers
        k = len(L) - 1
        # narrow integers where provably exact: int8/int16 weights, int32 sums bounded by fan-in
        bound = max(n * (1 << (f.width - 1)) for n, f in
                    [(L[l], cfg.weights[l]) for l in range(k)] + [(L[l + 1], cfg.weights[l]) for l in range(k)])
        narrow = all(f.width <= 16 for f in cfg.weights) and bound < (1 << 31)
        # 8-bit weights: the 784x500 matrix (392 kB) stays in a core's L2 cache
        wdtype = (np.int8 if all(f.width <= 8 for f in cfg.weights) else np.int16) if narrow else np.int64
        fmt = np.zeros((5, 7), dtype=np.int64)
        for r, f in zip((K.REG_V, K.REG_X, K.REG_A, K.REG_PHI, K.REG_S), (cfg.v, cfg.x, cfg.a, cfg.phi, cfg.s)):
            fmt[r] = (f.frac, f.min_code, f.max_code, f.width, f.signed, f.overflow == "wrap",
                      f.rounding == "half_up")
        acc = [0] + [cfg.acc_format(l).frac for l in range(1, k + 1)]
        shift_up = [0] + [acc[l] - cfg.weights[l - 1].frac for l in range(1, k + 1)]
        shift_down = [0] + [acc[l] - cfg.weights[l].frac if l < k else 0 for l in range(1, k + 1)]
        if min(shift_up + shift_down) < 0:
            raise ConfigError("accumulator fraction bits below a weight format's")   # acc_format forbids it
        cum = lambda ns: np.concatenate([[0], np.cumsum(ns)]).astype(np.int64)
        lrn = cfg.learning
        padded = [-(-L[l + 1] // cfg.lanes) * cfg.lanes for l in range(k)]
        arr = lambda v: np.asarray(v, dtype=np.int64)
        return {
            "sizes": arr(L), "off": cum(L), "up_off": cum([L[l] * L[l + 1] for l in range(k)]),
            "down_off": cum([0] + [L[l] * L[l + 1] for l in range(1, k)]),
            "shift_up": arr(shift_up), "shift_down": arr(shift_down), "acc_frac": arr(acc),
            "bias_frac": arr([0] + [f.frac for f in cfg.biases]), "fmt": fmt,
            "eps_rom": arr(cfg.eps_rom), "lam_rom": arr(cfg.lam_rom), "inv_lam_rom": arr(cfg.inv_lam_rom),
            "tables_frac": arr([cfg.tables.eps_frac, cfg.tables.lam_frac, cfg.tables.inv_lam_frac]),
            "beta_frac": cfg.beta_frac, "beta2": int(cfg.beta2_code),
            "acc_up": np.zeros(max(L), dtype=np.int32 if narrow else np.int64),
            "acc_down": np.zeros(max(L), dtype=np.int32 if narrow else np.int64),
            "padded": padded,
            "part": np.zeros(max(L) if wdtype == np.int8 else 0, dtype=np.int16),
            "w_up": np.empty(sum(L[l] * L[l + 1] for l in range(k)), dtype=wdtype),
            "w_down": np.empty(sum(L[l] * L[l + 1] for l in range(1, k)), dtype=wdtype),
            "bias": np.zeros(sum(L), dtype=np.int64),
            "row_jump": [K.jump_columns(lrn.rng_bits * p) for p in padded]
            if lrn.rounding == "stochastic" else [np.zeros(64, dtype=np.uint64)] * k,
        }

    def update(self, s_free: list, s_nudged: list, sign: int) -> None:
        """Apply the integer update (stages ``weight_update`` and ``bias_update`` of
        :mod:`golden_model.datapath`) from the held states, drawing as the RTL."""
        cfg, lrn = self.cfg, self.cfg.learning
        L, lanes = cfg.layers, cfg.lanes
        stochastic = lrn.rounding == "stochastic"
        for l in range(len(L) - 1):       # stage weight_update of golden_model.datapath
            if stochastic:
                padded = -(-L[l + 1] // lanes) * lanes
                d = self.draws.take(L[l] * padded).reshape(L[l], padded)[:, :L[l + 1]]
                R = self.offsets(d, cfg.update_shift(l))
            else:
                R = self.offsets(None, cfg.update_shift(l))
            w = datapath.weight_update(cfg, l, self.weights[l], s_free, s_nudged, sign, R, self._probe)
            self.weights[l] = self._saturate(w, cfg.learn_format(l))
        self._update_biases(s_free, s_nudged, sign)

    def _update_fast(self, s_free: list, s_nudged: list, sign: int) -> None:
        """:meth:`update` with the weight matrices in the fused kernel (same integers, same draws).

        The weight arrays are updated in place (a fresh 3 MB array per sample costs more than the
        update itself); copy ``weights`` to keep a snapshot."""
        from .onchip_kernels import update_weights
        cfg, lrn, p = self.cfg, self.cfg.learning, self._plan
        state = np.uint64(self.draws.state)
        for l in range(len(cfg.layers) - 1):
            fmt = cfg.learn_format(l)
            state, n = update_weights(
                self.weights[l], s_free[l], s_nudged[l], s_free[l + 1], s_nudged[l + 1], l > 0,
                sign * lrn.rate_mult[l], cfg.update_shift(l), fmt.min_code, fmt.max_code,
                lrn.rounding == "stochastic", lrn.rng_bits, p["padded"][l], state, p["row_jump"][l])
            state = np.uint64(state)      # numba returns a Python int: keep it typed uint64
            self.saturations += int(n)
        self.draws.state = int(state)
        self._update_biases(s_free, s_nudged, sign)

    def _update_biases(self, s_free: list, s_nudged: list, sign: int) -> None:
        cfg, lrn, L = self.cfg, self.cfg.learning, self.cfg.layers
        stochastic = lrn.rounding == "stochastic"
        for l in range(len(L) - 1):       # stage bias_update of golden_model.datapath
            R = self.offsets(self.draws.take(L[l + 1]) if stochastic else None, cfg.bias_update_shift(l))
            b = datapath.bias_update(cfg, l, self.biases[l], s_free, s_nudged, sign, R, self._probe)
            self.biases[l] = self._saturate(b, cfg.biases[l])

    def _saturate(self, value: np.ndarray, fmt) -> np.ndarray:
        lo, hi = fmt.min_code, fmt.max_code
        if value.min() < lo or value.max() > hi:
            self.saturations += int(np.count_nonzero((value < lo) | (value > hi)))
            return saturate(value, lo, hi)
        return value

    def save(self, path) -> None:
        """Learning-format weights, biases, the LFSR state and counters (``.npz``)."""
        arrays = {f"W{l}": w for l, w in enumerate(self.weights)}
        arrays.update({f"b{l + 1}": b for l, b in enumerate(self.biases)})
        np.savez(path, lfsr_state=np.uint64(self.draws.state), samples=self.samples,
                 saturations=self.saturations, **arrays)

    def encode(self, x) -> np.ndarray:
        """Real values in [0, 1] to ``s`` codes (round half up)."""
        return quantise_real(np.asarray(x, dtype=np.float64), self.cfg.s.frac)
