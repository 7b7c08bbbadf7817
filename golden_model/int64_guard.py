"""The int64 guard: a bound, derived from the config alone, on every intermediate of the model.

The golden model computes in numpy int64, which wraps silently. For the specification never to
be the side that is wrong, every intermediate that :mod:`golden_model.datapath` forms (each
product, alignment shift, sum and rounding offset; the names of its ``probe`` calls) has a
worst-case magnitude here, computed from the formats, the ROM contents and the learning gains.
A config for which any bound reaches ``2**63`` is refused (:func:`int64_violation`, called by
``EqSpikeConfig.validate``) with a one-line message naming the register and the operation.

Operand bounds: a register of format ``f`` holds ``|c| <= 2**(f.width-1)`` (signed) or
``2**f.width - 1`` (unsigned), also after a wrap; states, inputs, targets and ``rho_last`` lie in
``[0, 2**F_s]``; ``acc`` in its derived format (sized from fan-in, exact); ROM words at most
their largest entry. An alignment or rounding to ``n`` fewer fraction bits forms ``x + 2**(n-1)``
first (round half up); to more fraction bits, ``x << n``. Each bound below is the largest value
formed anywhere inside the probed expression. ``tests/test_int64_guard.py`` runs the model on
exact Python integers and checks that every probed value respects its bound and that the
probes and this table name the same intermediates.
"""

from __future__ import annotations

__all__ = ["INT64_LIMIT", "intermediate_bounds", "int64_violation"]

#: Magnitudes must stay below this (numpy int64 holds [-2**63, 2**63 - 1]).
INT64_LIMIT = 1 << 63


def _mag(fmt) -> int:
    return (1 << (fmt.width - 1)) if fmt.signed else (1 << fmt.width) - 1


def _shift_bound(x: int, n: int, rounding: str) -> int:
    """Largest value formed by ``round_shift(x, n)`` for ``|x| <= x``: ``x << -n`` when n < 0,
    ``x + 2**(n-1)`` (half up) or ``x`` (floor) when n > 0."""
    if n < 0:
        return x << -n
    if n > 0 and rounding == "half_up":
        return x + (1 << (n - 1))
    return x


def _align_bound(x: int, from_frac: int, to_frac: int, rounding: str) -> int:
    return _shift_bound(x, from_frac - to_frac, rounding)


def _round_sum(base: int, p: int, n: int, rounding: str) -> int:
    """``base + round_shift(p, n)``: the larger of the rounding's inner value and the sum."""
    inner = _shift_bound(p, n, rounding)
    return max(inner, base + (inner >> max(n, 0)) + 1)


def _tick_bounds(cfg, add) -> None:
    S = 1 << cfg.s.frac
    V, X, A, P = (_mag(getattr(cfg, n)) for n in ("v", "x", "a", "phi"))
    lam, eps, inv_lam = (int(r.max()) for r in (cfg.lam_rom, cfg.eps_rom, cfg.inv_lam_rom))
    k = cfg.n_layers - 1
    for l in range(1, k + 1):
        where = f"layer {l}"
        acc = cfg.acc_format(l)
        ACC = 1 << (acc.width - 1)
        for i in (l - 1, l) if l < k else (l - 1,):
            w = cfg.weights[i]
            add("acc: W << (F_acc - F_W)", _mag(w) << (acc.frac - w.frac), f"W{i} into layer {l}")
        add("acc: sum", ACC, where)
        # decode_v
        u = _align_bound(ACC, acc.frac, cfg.v.frac, cfg.v.rounding)
        add("v: align(acc -> v.frac)", u, where)
        add("v: u - v", u + V, where)
        add("v: LAM * (u - v)", lam * (u + V), where)
        add("v: v + round(LAM * (u - v) >> lam_frac)",
            _round_sum(V, lam * (u + V), cfg.tables.lam_frac, cfg.v.rounding), where)
        # neuron_input
        b = cfg.biases[l - 1]
        F = max(cfg.v.frac, b.frac, cfg.x.frac)
        total = (V << (F - cfg.v.frac)) + (_mag(b) << (F - b.frac))
        add("x: v + b", total, where)
        if l == k:
            nf = cfg.beta_frac + cfg.s.frac
            nudge = cfg.beta2_code * S
            add("x: BETA2 * (y - s)", nudge, where)
            total = total + (nudge << (F - nf)) if nf <= F else (total << (nf - F)) + nudge
            F = max(F, nf)
            add("x: v + b + nudge", total, where)
        add("x: align(sum -> x.frac)", _align_bound(total, F, cfg.x.frac, cfg.x.rounding), where)
    # state_step (same formats in every layer)
    G = max(cfg.x.frac, cfg.s.frac)
    d = (X << (G - cfg.x.frac)) + (S << (G - cfg.s.frac))
    add("s: x - s", d, "every layer")
    add("s: EPS * (x - s)", eps * d, "every layer")
    add("s: s + round(EPS * (x - s) >> ...)",
        _round_sum(S, eps * d, cfg.tables.eps_frac + G - cfg.s.frac, cfg.s.rounding), "every layer")
    # predictive_encode and sigma_delta (every layer, the input layer too)
    ilf = cfg.tables.inv_lam_frac
    add("a: INV_LAM * (s - rho_last)", inv_lam * S, "every layer")
    num = (S << ilf) + inv_lam * S
    add("a: (rho_last << inv_lam_frac) + INV_LAM * (s - rho_last)", num, "every layer")
    add("a: align(num -> a.frac)", _align_bound(num, ilf + cfg.s.frac, cfg.a.frac, cfg.a.rounding), "every layer")
    aligned = _align_bound(A, cfg.a.frac, cfg.phi.frac, cfg.phi.rounding)
    add("phi: align(a -> phi.frac)", aligned, "every layer")
    add("phi: phi + align(a)", P + aligned, "every layer")
    add("phi: phi'' - (q << phi.frac)", P + (1 << cfg.phi.frac), "every layer")


def _offset_bound(cfg, D: int) -> tuple[str, int] | None:
    if D == 0:
        return None
    if cfg.learning.rounding == "nearest":
        return "R: 2^(D-1)", 1 << (D - 1)
    r = cfg.learning.rng_bits
    if D > r:
        return "R: (d << (D - r)) + 2^(D-r-1)", (((1 << r) - 1) << (D - r)) + (1 << (D - r - 1))
    return None                                       # d >> (r - D) < 2**r


def _learning_bounds(cfg, add) -> None:
    S = 1 << cfg.s.frac
    lrn = cfg.learning
    for l in range(cfg.n_layers - 1):
        where = f"W{l}"
        W = _mag(cfg.learn_format(l))
        if lrn.extra_frac:
            add("W_inf: W + 2^(E-1)", W + (1 << (lrn.extra_frac - 1)), where)
        H = S * S
        add("W: s_i^- (s_j^+ - s_j^-)", H, where)
        if l > 0:
            H = 2 * S * S
            add("W: H", H, where)
        G = lrn.rate_mult[l] * H
        add("W: sign * m * H", G, where)
        for name, D, reg, base in (("W", cfg.update_shift(l), where, W),
                                   ("b", cfg.bias_update_shift(l), f"b{l + 1}", _mag(cfg.biases[l]))):
            if name == "b":
                G = lrn.rate_mult[l] * S
                add("b: sign * m * (s_j^+ - s_j^-)", G, reg)
            off = _offset_bound(cfg, D)
            R = 0
            if off is not None:
                add(off[0], off[1], reg)
                R = off[1]
            add(f"{name}: G + R", G + R, reg)
            add(f"{name}: {name} + d{name}", base + ((G + R) >> D) + 1, reg)


def intermediate_bounds(cfg) -> dict:
    """``{probe name: (bound, where)}``: the largest magnitude each intermediate can reach under
    ``cfg`` and the layer or matrix where it does (the maximum over layers and matrices)."""
    out = {}

    def add(name, bound, where):
        if name not in out or bound > out[name][0]:
            out[name] = (int(bound), where)

    _tick_bounds(cfg, add)
    if cfg.learning is not None:
        _learning_bounds(cfg, add)
    return out


def int64_violation(cfg) -> str | None:
    """A one-line message naming the first intermediate that may leave int64, or None."""
    for name, (bound, where) in intermediate_bounds(cfg).items():
        if bound >= INT64_LIMIT:
            register, operation = name.split(": ", 1)
            return (f"register {register}, operation {operation} ({where}) can reach "
                    f"{bound.bit_length() + 1} bits, more than int64 holds; narrow the formats")
    return None
