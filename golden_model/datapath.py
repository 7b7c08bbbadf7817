"""The neuron datapath, one named stage per function: the integer twins of ``rtl/neuron.py``.

Every formula of the hardware's arithmetic is written once, in :data:`FORMULAS`. The stage
functions below carry it as their docstring (:func:`stage`), the RTL functions of the same
name in ``rtl/neuron.py`` and ``rtl/learning.py`` carry the same text, and
``docs/fixed_point.md`` shows the block :func:`formula_block` prints; ``tests/test_datapath.py``
ties the four together. A reader goes register row -> stage here -> RTL stage -> the test
named after the stage.

Arithmetic is numpy int64 (or Python ints in object arrays when a model audits its int64
bounds). Every intermediate that can grow, each product, alignment shift, sum and rounding
offset, goes through ``probe(name, value)``: identity in normal runs, a range check against
:mod:`golden_model.int64_guard` in audits, where a test also makes sure no intermediate is
formed outside a probe. ``narrow(value, register)`` applies a register's overflow rule (the
model counts overflows; see :class:`golden_model.fixed_model.FixedModel`).
"""

from __future__ import annotations

import numpy as np

from .fixedpoint import align, clip_unit, round_shift

__all__ = ["FORMULAS", "STAGES", "LEARNING_STAGES", "stage", "formula_block", "passthrough",
           "decode_v", "neuron_input", "state_step", "predictive_encode", "sigma_delta",
           "inference_weight", "rounding_offset", "weight_update", "bias_update"]

#: The datapath of one tick ``t`` (1-based) of non-input layer ``l``, then the encoder of every
#: layer (the clamped input layer too), then the on-chip learning update. Written once.
FORMULAS = {
    "accumulate":
        "acc   = sum_{j: q_{l-1,j}} W_{l-1}[j,:] << (F_acc - F_W{l-1})\n"
        "      + sum_{k: q_{l+1,k}} W_l[:,k] << (F_acc - F_W{l})        exact, any order",
    "decode_v":
        "v'    = narrow_v( v + round_v( LAM[t] * (align_v(acc) - v) >> lam_frac ) )",
    "neuron_input":
        "x'    = narrow_x( align_x( v' + b [+ sign * BETA2 * (y - s)] ) )   sum exact at the finest frac",
    "state_step":
        "s'    = clip_unit( s + round_s( EPS[t] * (x' - s) >> (eps_frac + G - s.frac) ) ),  G = max(x.frac, s.frac)",
    "predictive_encode":
        "a'    = narrow_a( align_a( (rho_last << inv_lam_frac) + INV_LAM[t] * (s - rho_last) ) );  rho_last' = s",
    "sigma_delta":
        "phi'' = narrow_phi( phi + align_phi(a') );  q = phi'' > 1/2 (strict);  phi' = phi'' - (q << phi.frac)",
    "inference_weight":
        "W_inf = min( (W + 2^(E-1)) >> E, max_W )                       E = learning.extra_frac (W_inf = W if E = 0)",
    "weight_update":
        "W'    = sat_learn( W + ((sign * m_l * H + R) >> D_l) ),  H = s_i^- (s_j^+ - s_j^-) + [l > 0] (s_i^+ - s_i^-) s_j^-",
    "bias_update":
        "b'    = sat_b( b + ((sign * m_l * (s_j^+ - s_j^-) + R) >> (F_s + k_l - F_b)) )",
}

#: Stages of one inference tick, in datapath order.
STAGES = ("accumulate", "decode_v", "neuron_input", "state_step", "predictive_encode", "sigma_delta")
#: Stages of the on-chip learning update (docs/learning.md).
LEARNING_STAGES = ("inference_weight", "weight_update", "bias_update")


def stage(name: str):
    """Decorator: the function implements datapath stage ``name``; its docstring starts with
    the stage's formula from :data:`FORMULAS` (``rtl/neuron.py`` uses it too)."""
    if name not in FORMULAS:
        raise ValueError(f"stage must be one of {tuple(FORMULAS)}, not {name!r}")

    def mark(fn):
        fn.datapath_stage = name
        fn.__doc__ = FORMULAS[name] + "\n\n" + (fn.__doc__ or "")
        return fn
    return mark


def formula_block(names=STAGES) -> str:
    """The formulas of ``names`` as one text block (docs/fixed_point.md quotes it)."""
    return "\n".join(FORMULAS[n] for n in names)


def passthrough(name: str, value):
    """The probe of normal runs: ``value`` unchanged."""
    return value


# -- one tick of a non-input layer ---------------------------------------------------------------
# (the accumulate stage is the model's synaptic sum, FixedModel._synaptic_sum)

@stage("decode_v")
def decode_v(cfg, l: int, acc, v, lam: int, narrow, probe=passthrough):
    """Decoder of layer ``l``: returns the narrowed ``v'``."""
    vf = cfg.v
    u = probe("v: align(acc -> v.frac)", align(acc, cfg.acc_format(l).frac, vf.frac, vf.rounding))
    d = probe("v: u - v", u - v)
    p = probe("v: LAM * (u - v)", lam * d)
    wide = probe("v: v + round(LAM * (u - v) >> lam_frac)", v + round_shift(p, cfg.tables.lam_frac, vf.rounding))
    return narrow(wide, "v")


@stage("neuron_input")
def neuron_input(cfg, l: int, v, b, y=None, s=None, nudge_sign: int = 0, narrow=None, probe=passthrough):
    """Neuron input of layer ``l`` (the nudge only on the output layer, ``nudge_sign`` +1/-1 in
    the nudged phase): returns the narrowed ``x'``. An exact left shift before the one
    rounding when the nudge has the finest fraction bits."""
    vf, xf, sf, bf = cfg.v, cfg.x, cfg.s, cfg.biases[l - 1]
    F = max(vf.frac, bf.frac, xf.frac)
    total = probe("x: v + b", (v << (F - vf.frac)) + (b << (F - bf.frac)))
    if nudge_sign and l == cfg.n_layers - 1:
        if y is None:
            raise ValueError("the nudged phase needs target codes")
        nf = cfg.beta_frac + sf.frac
        nudge = probe("x: BETA2 * (y - s)", (nudge_sign * cfg.beta2_code) * (y - s))
        if nf <= F:
            total = probe("x: v + b + nudge", total + (nudge << (F - nf)))
        else:
            total = probe("x: v + b + nudge", (total << (nf - F)) + nudge)
            F = nf
    x = probe("x: align(sum -> x.frac)", align(total, F, xf.frac, xf.rounding))
    return narrow(x, "x")


@stage("state_step")
def state_step(cfg, x, s, eps: int, probe=passthrough):
    """State step: returns ``s'`` in [0, 1] (the algorithm's clamp, never an overflow)."""
    xf, sf = cfg.x, cfg.s
    G = max(xf.frac, sf.frac)
    d = probe("s: x - s", (x << (G - xf.frac)) - (s << (G - sf.frac)))
    p = probe("s: EPS * (x - s)", eps * d)
    wide = probe("s: s + round(EPS * (x - s) >> ...)",
                 s + round_shift(p, cfg.tables.eps_frac + G - sf.frac, sf.rounding))
    return clip_unit(wide, sf.frac)


# -- the encoder of every layer ------------------------------------------------------------------

@stage("predictive_encode")
def predictive_encode(cfg, s, rho_last, inv_lam: int, narrow, probe=passthrough):
    """Predictive encoder (lambda = 1 gives ``a = s``): returns the narrowed ``a'``; the caller
    sets ``rho_last = s``."""
    sf, af, ilf = cfg.s, cfg.a, cfg.tables.inv_lam_frac
    p = probe("a: INV_LAM * (s - rho_last)", inv_lam * (s - rho_last))
    num = probe("a: (rho_last << inv_lam_frac) + INV_LAM * (s - rho_last)", (rho_last << ilf) + p)
    a = probe("a: align(num -> a.frac)", align(num, ilf + sf.frac, af.frac, af.rounding))
    return narrow(a, "a")


@stage("sigma_delta")
def sigma_delta(cfg, a, phi, narrow, probe=passthrough):
    """Sigma-delta modulator: returns ``(phi', q)``, ``q`` int64 0/1."""
    af, pf = cfg.a, cfg.phi
    aligned = probe("phi: align(a -> phi.frac)", align(a, af.frac, pf.frac, pf.rounding))
    wide = narrow(probe("phi: phi + align(a)", phi + aligned), "phi")
    q = (wide > (1 << (pf.frac - 1))).astype(np.int64)       # strict '>' against 1/2
    return probe("phi: phi'' - (q << phi.frac)", wide - (q << pf.frac)), q


# -- on-chip learning (golden_model.onchip) ------------------------------------------------------

@stage("inference_weight")
def inference_weight(cfg, l: int, w, probe=passthrough):
    """What the accumulators add for learning-format weights ``w`` of ``W_l`` (round half up,
    saturated at the inference format's top code)."""
    e = cfg.learning.extra_frac
    if e == 0:
        return w.copy()
    return np.minimum(probe("W_inf: W + 2^(E-1)", w + (1 << (e - 1))) >> e, cfg.weights[l].max_code)


def rounding_offset(cfg, D: int, draws=None, probe=passthrough):
    """Rounding offset ``R`` of a learning update shifted right by ``D`` (docs/learning.md):
    ``nearest``: ``2^(D-1)`` (0 when D = 0); ``stochastic`` with ``r``-bit draws ``d``:
    ``(d << (D - r)) + 2^(D-r-1)`` when D > r, ``d >> (r - D)`` when D <= r."""
    if D == 0:
        return 0
    if cfg.learning.rounding == "nearest":
        return probe("R: 2^(D-1)", 1 << (D - 1))
    r = cfg.learning.rng_bits
    d = draws if isinstance(draws, np.ndarray) and draws.dtype == object else np.asarray(draws, dtype=np.int64)
    if D > r:
        return probe("R: (d << (D - r)) + 2^(D-r-1)", (d << (D - r)) + (1 << (D - r - 1)))
    return d >> (r - D)


@stage("weight_update")
def weight_update(cfg, l: int, w, s_free, s_nudged, sign: int, offset, probe=passthrough):
    """Update of ``W_l`` (rows: layer ``l``, columns: layer ``l+1``) before saturation:
    returns ``W + dW``; ``offset`` is the rounding offset ``R`` (scalar or per synapse)."""
    m, D = cfg.learning.rate_mult[l], cfg.update_shift(l)
    a_m, a_p, b_m, b_p = s_free[l], s_nudged[l], s_free[l + 1], s_nudged[l + 1]
    H = probe("W: s_i^- (s_j^+ - s_j^-)", np.multiply.outer(a_m, b_p - b_m))
    if l > 0:
        H = probe("W: H", H + np.multiply.outer(a_p - a_m, b_m))
    G = probe("W: sign * m * H", (sign * m) * H)
    dw = probe("W: G + R", G + offset) >> D
    return probe("W: W + dW", w + dw)


@stage("bias_update")
def bias_update(cfg, l: int, b, s_free, s_nudged, sign: int, offset, probe=passthrough):
    """Update of the bias of layer ``l+1`` (gain of ``W_l``) before saturation: returns ``b + db``."""
    m, D = cfg.learning.rate_mult[l], cfg.bias_update_shift(l)
    G = probe("b: sign * m * (s_j^+ - s_j^-)", (sign * m) * (s_nudged[l + 1] - s_free[l + 1]))
    db = probe("b: G + R", G + offset) >> D
    return probe("b: b + db", b + db)
