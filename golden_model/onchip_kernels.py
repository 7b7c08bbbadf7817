"""Fused numba kernels of on-chip learning at minibatch 1: the fast path of ``OnChipLearner``.

At minibatch 1 the numpy models spend almost all their time in call overhead (about 30 small
array operations per layer and tick, 150 ticks per sample). These kernels run one whole sample
(both phases, then the weight update) as compiled loops with the SAME integer arithmetic as
:class:`~golden_model.fixed_model.FixedModel` and :meth:`OnChipLearner.update`, register for
register; ``tests/test_onchip.py`` checks them bit-exact against those references on random
configs, narrow and saturating ones included. The reference code stays the readable
specification; nothing here defines behaviour.

Why these shapes:

* Accumulation is event-driven: a layer adds the weight rows of the units that spiked (about
  10-30 % per tick) instead of a dense product. The inference weights are added UNSHIFTED
  (narrow integers, int16 when they fit, into int32 sums when the fan-in bound allows) and the
  two directions' sums are shifted to the accumulator's fraction bits afterwards:
  ``sum(w << k) == (sum w) << k`` exactly, and four times less memory traffic than int64.
* The LFSR draw of ``r`` bits is ``S' = (S >> r) ^ T(S & (2^r - 1))`` with
  ``T(m) = XOR over the mask bits b of (m << (b - r + 1))``: for r <= 59 the mask bits XORed in
  never reach bit 0 within the r steps, so the r feedback bits are exactly S's low r bits.
* A row whose Hebbian term is zero everywhere leaves its weights unchanged (``0 <= R < 2^D``),
  so its draws are skipped with one jump matrix ``A^(r * row)`` (64 XORs) instead of drawn.

All kernels are compiled on first use and cached on disk (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .lfsr import MASK, jump_matrix

__all__ = ["run_phases", "update_weights", "inference_weights", "draw_state_step", "MASK_BITS"]

#: Bit positions of the LFSR mask (x^64 + x^63 + x^61 + x^60 + 1 in right-shifting Galois form).
MASK_BITS = tuple(b for b in range(64) if (MASK >> b) & 1)

# register format rows: frac, lo, hi, width, signed, wrap, half_up
_FRAC, _LO, _HI, _WIDTH, _SIGNED, _WRAP, _HALF = range(7)
# register indices in the format table and the overflow counters (FixedModel.overflows order)
REG_V, REG_X, REG_A, REG_PHI, REG_S = range(5)


@njit(cache=True)
def _round_shift(x, n, half_up):
    """``fixedpoint.round_shift``: n > 0 floor or half up; n <= 0 exact left shift."""
    if n == 0:
        return x
    if n < 0:
        return x << (-n)
    if half_up:
        return (x + (np.int64(1) << (n - 1))) >> n
    return x >> n


@njit(cache=True)
def _fit(value, lo, hi, wrap, width, signed):
    """``FixedModel._narrow`` of one value without strict mode: saturate or wrap."""
    if wrap:
        m = (np.int64(1) << width) - 1
        if signed:
            h = np.int64(1) << (width - 1)
            return ((value + h) & m) - h
        return value & m
    return lo if value < lo else hi


@njit(cache=True)
def _encode_layer(s, rho_last, phi, a, q, spikes, start, units, n_units, inv_lam, inv_lam_frac, fmt, counts):
    """Predictive encoder then sigma-delta (FixedModel._encoder_step) for the units
    ``start + units[:n_units]`` of a layer starting at ``start``; writes the spiking units'
    indices (within the layer) to ``spikes[start:]`` and returns their count."""
    # format constants as scalars: read from ``fmt`` inside the loop they would be reloaded on
    # every store (LLVM cannot prove the int64 arrays do not alias), 3x slower
    s_frac, a_frac, p_frac = fmt[REG_S, _FRAC], fmt[REG_A, _FRAC], fmt[REG_PHI, _FRAC]
    a_lo, a_hi, a_wrap, a_w, a_sg = (fmt[REG_A, _LO], fmt[REG_A, _HI], fmt[REG_A, _WRAP],
                                     fmt[REG_A, _WIDTH], fmt[REG_A, _SIGNED])
    p_lo, p_hi, p_wrap, p_w, p_sg = (fmt[REG_PHI, _LO], fmt[REG_PHI, _HI], fmt[REG_PHI, _WRAP],
                                     fmt[REG_PHI, _WIDTH], fmt[REG_PHI, _SIGNED])
    a_shift, a_half = inv_lam_frac + s_frac - a_frac, fmt[REG_A, _HALF]
    p_shift, p_half = a_frac - p_frac, fmt[REG_PHI, _HALF]
    half = np.int64(1) << (p_frac - 1)
    one = np.int64(1) << p_frac
    count = 0
    n_a = 0
    n_p = 0
    for k in range(n_units):
        i = start + units[k]
        r = s[i]
        num = (rho_last[i] << inv_lam_frac) + inv_lam * (r - rho_last[i])
        ai = _round_shift(num, a_shift, a_half)
        if ai < a_lo or ai > a_hi:
            n_a += 1
            ai = _fit(ai, a_lo, a_hi, a_wrap, a_w, a_sg)
        p = phi[i] + _round_shift(ai, p_shift, p_half)
        if p < p_lo or p > p_hi:
            n_p += 1
            p = _fit(p, p_lo, p_hi, p_wrap, p_w, p_sg)
        a[i] = ai
        rho_last[i] = r
        spike = np.int64(p > half)                     # strict '>' against 1/2
        q[i] = spike
        phi[i] = p - spike * one
        spikes[start + count] = units[k]               # branch-free: kept only when it spiked
        count += spike
    counts[REG_A] += n_a
    counts[REG_PHI] += n_p
    return count


@njit(cache=True)
def _accumulate(acc, w, w_off, width, spikes, spk_start, n_spk, part):
    """``acc[:width] = sum over the spiking units u of row u of the matrix at w[w_off:]``.

    ``part``: an int16 buffer, or empty. With 8-bit weights (|w| <= 128) blocks of 255 rows are
    summed in int16 first (255 * 128 < 2^15: exact), twice the SIMD lanes of int32.
    """
    out = acc[:width]
    out[:] = 0
    if part.shape[0] == 0:
        for k in range(n_spk):
            base = w_off + spikes[spk_start + k] * width
            row = w[base:base + width]        # a slice: the loop below vectorises (no index checks)
            for j in range(width):
                out[j] += row[j]
        return
    tmp = part[:width]
    k = 0
    while k < n_spk:
        end = min(k + 255, n_spk)
        tmp[:] = 0
        for kk in range(k, end):
            base = w_off + spikes[spk_start + kk] * width
            row = w[base:base + width]
            for j in range(width):
                tmp[j] += row[j]
        for j in range(width):
            out[j] += tmp[j]
        k = end


@njit(cache=True)
def run_phases(sizes, off, w_up, up_off, w_down, down_off, shift_up, shift_down, acc_frac,
               bias, bias_frac, fmt, eps_rom, lam_rom, inv_lam_rom, tables_frac, beta_frac, beta2,
               x, y, n_free, n_nudged, sign, acc_up, acc_down, part):
    """Both phases of one sample from the zero state (FixedModel.reset/tick at batch 1).

    Flat per-layer arrays: layer ``l``'s units are ``off[l] .. off[l+1]``. ``w_up`` holds
    ``W_l`` (rows: layer l) at ``up_off[l]``; ``w_down`` holds ``W_l^T`` (rows: layer l+1) at
    ``down_off[l]``, l >= 1. ``tables_frac`` = (eps_frac, lam_frac, inv_lam_frac). ``part``: see
    :func:`_accumulate`. Returns
    (s after the free phase, s after the nudged phase, overflow counts [v, x, a, phi]).
    """
    k = sizes.shape[0] - 1
    total = off[k + 1]
    s = np.zeros(total, np.int64)
    s_new = np.zeros(total, np.int64)
    v = np.zeros(total, np.int64)
    a = np.zeros(total, np.int64)
    rho_last = np.zeros(total, np.int64)
    phi = np.zeros(total, np.int64)
    q = np.zeros(total, np.int64)
    spikes = np.zeros(total, np.int64)
    n_spk = np.zeros(k + 1, np.int64)
    counts = np.zeros(5, np.int64)
    s[:sizes[0]] = x
    s_new[:sizes[0]] = x
    units = np.arange(sizes.max())
    # an input at 0 never spikes and its registers stay 0 (a = 0, phi = 0 <= 1/2): skip it
    inputs = np.nonzero(x)[0]
    n_inputs = inputs.shape[0]
    s_free = s.copy()
    eps_frac, lam_frac, inv_lam_frac = tables_frac[0], tables_frac[1], tables_frac[2]
    v_frac, x_frac, s_frac = fmt[REG_V, _FRAC], fmt[REG_X, _FRAC], fmt[REG_S, _FRAC]
    v_lo, v_hi, v_wrap, v_w, v_sg, v_half = (fmt[REG_V, _LO], fmt[REG_V, _HI], fmt[REG_V, _WRAP],
                                             fmt[REG_V, _WIDTH], fmt[REG_V, _SIGNED], fmt[REG_V, _HALF])
    x_lo, x_hi, x_wrap, x_w, x_sg, x_half = (fmt[REG_X, _LO], fmt[REG_X, _HI], fmt[REG_X, _WRAP],
                                             fmt[REG_X, _WIDTH], fmt[REG_X, _SIGNED], fmt[REG_X, _HALF])
    s_half = fmt[REG_S, _HALF]
    one = np.int64(1) << s_frac
    nf = beta_frac + s_frac
    G = max(x_frac, s_frac)
    for t in range(1, n_free + n_nudged + 1):
        nudge_sign = 0 if t <= n_free else sign
        eps, lam, inv_lam = eps_rom[t - 1], lam_rom[t - 1], inv_lam_rom[t - 1]
        for l in range(1, k + 1):
            n = sizes[l]
            top = l < k
            _accumulate(acc_up, w_up, up_off[l - 1], n, spikes, off[l - 1], n_spk[l - 1], part)
            if top:
                _accumulate(acc_down, w_down, down_off[l], n, spikes, off[l + 1], n_spk[l + 1], part)
            su, sd, u_shift = shift_up[l], shift_down[l], acc_frac[l] - v_frac
            bf = bias_frac[l]
            F0 = max(v_frac, bf, x_frac)
            nudged = nudge_sign != 0 and l == k
            F = nf if nudged and nf > F0 else F0
            n_v = 0
            n_x = 0
            for j in range(n):
                i = off[l] + j
                acc = np.int64(acc_up[j]) << su
                if top:
                    acc += np.int64(acc_down[j]) << sd
                # decoder: v + lambda (u - v)
                u = _round_shift(acc, u_shift, v_half)
                vi = v[i] + _round_shift(lam * (u - v[i]), lam_frac, v_half)
                if vi < v_lo or vi > v_hi:
                    n_v += 1
                    vi = _fit(vi, v_lo, v_hi, v_wrap, v_w, v_sg)
                v[i] = vi
                # neuron input: v + b (+ nudge), summed exactly at the finest fraction, rounded once
                tot = (vi << (F0 - v_frac)) + (bias[i] << (F0 - bf))
                if nudged:
                    nudge = (nudge_sign * beta2) * (y[j] - s[i])
                    if nf <= F0:
                        tot += nudge << (F0 - nf)
                    else:
                        tot = (tot << (nf - F0)) + nudge
                xi = _round_shift(tot, F - x_frac, x_half)
                if xi < x_lo or xi > x_hi:
                    n_x += 1
                    xi = _fit(xi, x_lo, x_hi, x_wrap, x_w, x_sg)
                # state: s + eps (x - s), then the algorithm's clip to [0, 1]
                d = (xi << (G - x_frac)) - (s[i] << (G - s_frac))
                si = s[i] + _round_shift(eps * d, eps_frac + G - s_frac, s_half)
                s_new[i] = 0 if si < 0 else (one if si > one else si)
            counts[REG_V] += n_v
            counts[REG_X] += n_x
        for i in range(off[1], total):
            s[i] = s_new[i]
        for l in range(k + 1):
            if l == 0:
                n_spk[0] = _encode_layer(s, rho_last, phi, a, q, spikes, 0, inputs, n_inputs,
                                         inv_lam, inv_lam_frac, fmt, counts)
            else:
                n_spk[l] = _encode_layer(s, rho_last, phi, a, q, spikes, off[l], units, sizes[l],
                                         inv_lam, inv_lam_frac, fmt, counts)
        if t == n_free:
            s_free[:] = s
    return s_free, s.copy(), counts[:4].copy()


@njit(cache=True)
def draw_state_step(state, bits):
    """One LFSR draw of ``bits`` bits (``bits`` Galois steps at once); returns the new state."""
    m = state & ((np.uint64(1) << np.uint64(bits)) - np.uint64(1))
    fb = np.uint64(0)
    for b in MASK_BITS:
        fb ^= m << np.uint64(b - bits + 1)
    return (state >> np.uint64(bits)) ^ fb


@njit(cache=True)
def _jump(state, cols):
    """Apply a GF(2) jump matrix given by its 64 columns."""
    out = np.uint64(0)
    for c in range(64):
        if (state >> np.uint64(c)) & np.uint64(1):
            out ^= cols[c]
    return out


@njit(cache=True)
def update_weights(w, a_m, a_p, b_m, b_p, hebb_second, gain, D, lo, hi, stochastic, bits,
                   padded, state, row_jump):
    """``OnChipLearner.update`` for one matrix, IN PLACE: returns (new LFSR state, saturations).

    ``gain = sign * m_l``; ``hebb_second``: add the ``(a+ - a-) b-`` term (l >= 1); ``padded``
    draws per row (``ceil(n/lanes) * lanes``, stochastic rounding only); ``row_jump``: the
    columns of ``A^(bits * padded)``, used for rows whose Hebbian term is zero.
    """
    n_in, n_out = w.shape
    draws = np.zeros(padded, np.int64)
    db = np.empty(n_out, np.int64)
    for j in range(n_out):
        db[j] = b_p[j] - b_m[j]
    saturated = 0
    half = np.int64(1) << (D - 1) if D > 0 else np.int64(0)
    offs = np.full(n_out, half)                      # nearest rounding: 2^(D-1), or 0 when D = 0
    mask = (np.uint64(1) << np.uint64(bits)) - np.uint64(1)
    for i in range(n_in):
        am = a_m[i]
        da = a_p[i] - am if hebb_second else np.int64(0)
        if am == 0 and da == 0:
            # H = 0 on the whole row: dW = R >> D = 0 since 0 <= R < 2^D; draws only advance
            if stochastic:
                state = _jump(state, row_jump)
            continue
        if stochastic:
            for g in range(padded):
                state = draw_state_step(state, bits)
                draws[g] = np.int64(state & mask)
            # rounding offsets R from the draws (OnChipLearner.offsets), then a branch-free,
            # vectorisable update of the row
            if D == 0:
                for j in range(n_out):
                    offs[j] = 0
            elif D > bits:
                for j in range(n_out):
                    offs[j] = (draws[j] << (D - bits)) + (np.int64(1) << (D - bits - 1))
            else:
                for j in range(n_out):
                    offs[j] = draws[j] >> (bits - D)
        row = w[i]
        for j in range(n_out):
            nw = row[j] + ((gain * (am * db[j] + da * b_m[j]) + offs[j]) >> D)
            saturated += (nw < lo) + (nw > hi)
            row[j] = min(max(nw, lo), hi)
    return state, saturated


@njit(cache=True)
def inference_weights(w, e, top, out):
    """``out = min((w + 2^(e-1)) >> e, top)`` (``OnChipLearner.inference_weights``), e >= 1."""
    h = np.int64(1) << (e - 1)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            c = (w[i, j] + h) >> e
            out[i, j] = top if c > top else c
    return out


def jump_columns(steps: int) -> np.ndarray:
    """The 64 columns of ``A^steps`` as a uint64 array (for :func:`update_weights`)."""
    return np.array(jump_matrix(steps).cols, dtype=np.uint64)
