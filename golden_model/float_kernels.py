"""Fused numba kernels of the float binary dynamics: the fast path of ``FloatModel``.

One binary tick of a layer is about 30 numpy operations on (batch, n) arrays after its synaptic
product (decoder, bias, rho', nudge, OSA, state step, clip), and four more per layer for the
encoder. At the paper's sizes those calls cost more than their arithmetic. These kernels run
them as one loop per layer, operation for operation in the order of the reference
(``FloatModel(..., reference=True)``) and in the array's own precision: every scalar is cast to
the array's dtype first, as numpy does with a Python float and a float32 array, so float32
results are the reference's bit for bit (no fused multiply-add, no fast-math). The synaptic
products stay BLAS products; on a wide input layer the input block's product is taken per
sample over the spiking inputs (``FloatModel._spike_product``), equal to the full product to
float rounding. ``tests/test_float_model.py`` compares both paths.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["binary_layer", "encode_layer", "input_spike_block", "constants"]


@njit(cache=True, error_model="numpy")   # numpy semantics: no zero-division branch, so loops vectorise
def binary_layer(u, u_top, top, v, b, s, y, c, osa, theta, beta_bar, delta_bar, lambda_bar, first, rho_last, phi,
                 out):
    """Decoder, neuron input, step size and state of one layer for a batch (FloatModel._tick_binary).

    ``u``: the synaptic sum (batch, n), or with ``top`` its bottom-up part, ``u_top`` then
    holding the top-down part: the sum ``u + u_top`` is formed row by row here (the reference's
    ``u += q_{l+1} @ W_l.T``, one addition per element, without a copy of ``u``);
    ``y``: targets (read when the nudge gain is not 0);
    ``c``: the tick's scalars in the state's dtype (:func:`constants`); ``first``: tick 1 (OSA's
    alpha = 1). Then the layer's encoder on the new state: it reads nothing but the layer's own
    registers, so it may run before the other layers' states are updated. Writes the new
    registers to ``out`` (10, batch, n): v, s, theta, beta_bar, delta_bar, lambda_bar, rho_last,
    a, phi, q (the OSA rows undefined without ``osa``); one output block instead of ten returned
    arrays saves most of the call's overhead.
    """
    x = np.empty(u.shape[1], dtype=u.dtype)
    row = np.empty(u.shape[1], dtype=u.dtype)
    for i in range(u.shape[0]):
        # one row at a time through loops without control flow, so that LLVM vectorises them
        ui = u[i]
        if top:
            _add_rows(ui, u_top[i], row)
            ui = row
        _neuron_input(ui, v[i], b, s[i], y[i], c, out[0, i], x)
        if osa:
            _osa_state(x, s[i], theta[i], beta_bar[i], delta_bar[i], lambda_bar[i], c, first,
                       out[1, i], out[2, i], out[3, i], out[4, i], out[5, i])
        else:
            _scheduled_state(x, s[i], c, out[1, i])
        _encode_row(out[1, i], rho_last[i], phi[i], c[C_LAM], c[C_LAM_KEEP], c, out[6, i], out[7, i], out[8, i], out[9, i])


#: Index of each scalar in the constants array of a tick (``constants``).
C_GAIN, C_LAM, C_LAM_KEEP, C_EPS, C_EPS_KEEP, C_NU, C_NU_KEEP, C_E, C_ONE, C_ZERO, C_HALF = range(11)


def constants(dtype, gain=0.0, lam=1.0, eps=0.0, nu=0.0, e=0.0) -> np.ndarray:
    """A tick's scalars in ``dtype``, each rounded from the float64 value the reference computes
    (``1.0 - lam`` etc. in Python, then cast by numpy): no float32 constant is built in a kernel."""
    return np.array([gain, lam, 1.0 - lam, eps, 1.0 - eps, nu, 1.0 - nu, e, 1.0, 0.0, 0.5], dtype=dtype)


@njit(cache=True, error_model="numpy")
def _neuron_input(u, v, b, s, y, c, v_out, x):
    """Decoder ``v = (1-lambda) v + lambda u``, ``x = rho'(s) (v + b) + gain (y - s)`` of one row
    (written to ``x``).

    The gain is 0 outside the nudged output layer: ``x + 0 (y - s) == x`` (``y`` is then any
    finite row), so no branch is needed."""
    gain, lam, keep, one, zero = c[C_GAIN], c[C_LAM], c[C_LAM_KEEP], c[C_ONE], c[C_ZERO]
    for j in range(u.shape[0]):
        vv = v[j] * keep + u[j] * lam                   # decoder uses lambda^t
        v_out[j] = vv
        sj = s[j]
        xj = (vv + b[j]) * (one if ((sj >= zero) & (sj <= one)) else zero)   # rho' on [0, 1]
        x[j] = xj + gain * (y[j] - sj)


@njit(cache=True, error_model="numpy")
def _add_rows(a, b, out):
    """``out = a + b`` (one row)."""
    for j in range(a.shape[0]):
        out[j] = a[j] + b[j]


@njit(cache=True, error_model="numpy")
def _osa_state(x, s, theta, beta_bar, delta_bar, lambda_bar, c, first, s_out, th_out, bb_out, db_out, lb_out):
    """One OSA step (FloatModel._osa_step, same operation order) and ``s = clip(s + alpha (x - s))``
    written as the reference: ``s (1 - alpha) + x alpha``."""
    nu, nu_keep, e, one, zero = c[C_NU], c[C_NU_KEEP], c[C_E], c[C_ONE], c[C_ZERO]
    for j in range(x.shape[0]):
        xj, th = x[j], theta[j]
        err = xj - th
        nerr = nu * err
        bb = beta_bar[j] * nu_keep + nerr
        db = delta_bar[j] * nu_keep + nerr * err
        lb = lambda_bar[j]
        sigma2 = (db - bb * bb) / (one + lb)
        alpha = one if first else one - (sigma2 + e) / (db + e)
        om = one - alpha
        lb_out[j] = om * om * lb + alpha * alpha
        th_out[j] = th * om + alpha * xj
        bb_out[j] = bb
        db_out[j] = db
        s_out[j] = min(max(s[j] * om + xj * alpha, zero), one)


@njit(cache=True, error_model="numpy")
def _scheduled_state(x, s, c, s_out):
    """``s = clip(s (1 - eps) + x eps, 0, 1)`` with the scheduled step size."""
    eps, keep, one, zero = c[C_EPS], c[C_EPS_KEEP], c[C_ONE], c[C_ZERO]
    for j in range(x.shape[0]):
        s_out[j] = min(max(s[j] * keep + x[j] * eps, zero), one)


@njit(cache=True, error_model="numpy")
def _encode_row(s, rho_last, phi, lam, keep, c, r_out, a_out, phi_out, q_out):
    """Predictive encoder and sigma-delta of one row: ``a = (rho - (1-lambda) rho_last) / lambda``,
    ``phi' = phi + a``, ``q = [phi' > 1/2]`` (strict), ``phi = phi' - q``."""
    one, zero, half = c[C_ONE], c[C_ZERO], c[C_HALF]
    for j in range(s.shape[0]):
        r = min(max(s[j], zero), one)
        a = (r - rho_last[j] * keep) / lam
        p = phi[j] + a
        q = one if p > half else zero
        r_out[j] = r
        a_out[j] = a
        phi_out[j] = p - q
        q_out[j] = q


@njit(cache=True, error_model="numpy")   # numpy semantics: no zero-division branch, so loops vectorise
def encode_layer(s, rho_last, phi, c, out):
    """Predictive encoder and sigma-delta of one layer (FloatModel._predictive/_sigma_delta);
    ``c``: the tick's constants. Writes rho, a, phi, q to ``out`` (4, batch, n)."""
    for i in range(s.shape[0]):
        _encode_row(s[i], rho_last[i], phi[i], c[C_LAM], c[C_LAM_KEEP], c, out[0, i], out[1, i], out[2, i], out[3, i])


@njit(cache=True, error_model="numpy")
def input_spike_block(r, rho_last, phi, lams, keeps, c, Q, active):
    """Spikes of the clamped input layer for the ticks of a look-ahead block (FloatModel._input_drive).

    ``Q[0]`` holds the spikes already sent; ``Q[i]`` (i >= 1) gets the spikes encoded with
    ``lams[i - 1]`` (``keeps[i - 1]`` = 1 - lambda, both in the state's dtype) from the constant
    ``r = rho(s_0)``, starting from the registers ``rho_last`` and ``phi`` (not modified): the
    reference's ``_predictive`` and ``_sigma_delta`` per tick. ``active[b, j]`` (B, n) is set
    to 1 where input ``j`` of sample ``b`` spikes at least once in the block (``Q[0]`` included).
    """
    K, B, n = Q.shape
    one, zero, half = c[C_ONE], c[C_ZERO], c[C_HALF]
    for i in range(B):
        for j in range(n):
            active[i, j] = Q[0, i, j] != zero
    p = phi.copy()
    a = np.empty_like(r)
    for k in range(1, K):                              # ticks outside: the unit loop vectorises
        keep, lam = keeps[k - 1], lams[k - 1]
        if k <= 2 or keep != keeps[k - 2] or lam != lams[k - 2]:
            # a = (rho - (1-lambda) rho_last) / lambda; rho_last = rho from the 2nd tick on, so
            # from the 3rd tick with an unchanged lambda a is the same array as the tick before:
            # computed again only when lambda changes (same operations, same values)
            rl = rho_last if k == 1 else r
            for i in range(B):
                for j in range(n):
                    a[i, j] = (r[i, j] - rl[i, j] * keep) / lam
        for i in range(B):
            for j in range(n):
                pj = p[i, j] + a[i, j]
                q = one if pj > half else zero          # strict '>'
                p[i, j] = pj - q
                Q[k, i, j] = q
                active[i, j] |= pj > half
