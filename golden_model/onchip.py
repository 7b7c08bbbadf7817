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

    def train_sample(self, x_codes, y_codes) -> SampleResult:
        """One sample: sign draw, free and nudged phase, update of every weight and bias.

        ``x_codes``, ``y_codes``: 1-D input and target codes in ``s``'s format.
        """
        cfg = self.cfg
        lrn = cfg.learning
        sign = -1 if int(self.draws.take(1)[0]) & 1 else 1
        model = self.model()
        st = model.reset(np.asarray(x_codes, dtype=np.int64)[None, :],
                         np.asarray(y_codes, dtype=np.int64)[None, :])
        model.run(st, cfg.n_free, 0)
        s_free = [s[0].copy() for s in st.s]
        model.run(st, cfg.n_nudged, sign)
        s_nudged = [s[0].copy() for s in st.s]
        self.update(s_free, s_nudged, sign)
        self.samples += 1
        return SampleResult(sign, int(np.argmax(s_free[-1])), s_free, s_nudged)

    def update(self, s_free: list, s_nudged: list, sign: int) -> None:
        """Apply the integer update (stages ``weight_update`` and ``bias_update`` of
        :mod:`golden_model.datapath`) from the held states, drawing as the RTL."""
        cfg, lrn = self.cfg, self.cfg.learning
        L, lanes = cfg.layers, cfg.lanes
        stochastic = lrn.rounding == "stochastic"
        for l in range(len(L) - 1):
            if stochastic:
                padded = -(-L[l + 1] // lanes) * lanes
                d = self.draws.take(L[l] * padded).reshape(L[l], padded)[:, :L[l + 1]]
                R = self.offsets(d, cfg.update_shift(l))
            else:
                R = self.offsets(None, cfg.update_shift(l))
            w = datapath.weight_update(cfg, l, self.weights[l], s_free, s_nudged, sign, R, self._probe)
            self.weights[l] = self._saturate(w, cfg.learn_format(l))
        for l in range(len(L) - 1):
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
