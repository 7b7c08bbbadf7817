"""Fused numba kernels of the float binary dynamics: the fast path of ``FloatModel``.

One binary tick of a layer is about 30 numpy operations on (batch, n) arrays after its synaptic
product (decoder, bias, rho', nudge, OSA, state step, clip), and four more per layer for the
encoder. At the paper's sizes those calls cost more than their arithmetic. These kernels run
them as one loop per layer, operation for operation in the order of the reference
(``FloatModel(..., reference=True)``) and in the array's own precision: every scalar is cast to
the array's dtype first, as numpy does with a Python float and a float32 array, so float32
results are the reference's bit for bit (no fused multiply-add, no fast-math). The synaptic
products stay BLAS products. ``tests/test_float_model.py`` compares both paths.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["binary_layer", "encode_layer", "input_spike_block"]


@njit(cache=True, error_model="numpy")   # numpy semantics: no zero-division branch, so loops vectorise
def binary_layer(u, v, b, s, y, nudge_gain, lam, eps, osa, theta, beta_bar, delta_bar, lambda_bar,
                 nu, e, first, rho_last, phi):
    """Decoder, neuron input, step size and state of one layer for a batch (FloatModel._tick_binary).

    ``u``: the synaptic sum (batch, n); ``y``: targets (read when ``nudge_gain`` != 0);
    ``eps``: the scheduled step size (read when not ``osa``); ``first``: tick 1 (OSA's alpha = 1).
    Then the layer's encoder (:func:`encode_layer`) on the new state: it reads nothing but the
    layer's own registers, so it may run before the other layers' states are updated.
    Returns new arrays (v, s, theta, beta_bar, delta_bar, lambda_bar, rho_last, a, phi, q); the
    OSA registers are undefined without ``osa``.
    """
    B, n = u.shape
    f = s.dtype.type
    one = f(1.0)
    c_lam, c_keep = f(lam), f(1.0 - lam)
    c_nu, c_nu_keep = f(nu), f(1.0 - nu)
    c_e, c_eps, c_eps_keep = f(e), f(eps), f(1.0 - eps)
    c_gain = f(nudge_gain)
    v_new = np.empty_like(v)
    s_new = np.empty_like(s)
    th_new = np.empty_like(theta)
    bb_new = np.empty_like(beta_bar)
    db_new = np.empty_like(delta_bar)
    lb_new = np.empty_like(lambda_bar)
    r_new = np.empty_like(s)
    a_new = np.empty_like(s)
    phi_new = np.empty_like(s)
    q_new = np.empty_like(s)
    for i in range(B):
        for j in range(n):
            vv = v[i, j] * c_keep                       # decoder uses lambda^t
            vv = vv + u[i, j] * c_lam
            v_new[i, j] = vv
            x = vv + b[j]                               # bias added after decoding
            sj = s[i, j]
            x = x * (one if (sj >= 0 and sj <= 1) else f(0.0))   # rho' on the closed interval
            if nudge_gain != 0.0:
                x = x + c_gain * (y[i, j] - sj)
            if osa:
                th = theta[i, j]
                err = x - th
                bb = beta_bar[i, j] * c_nu_keep
                nerr = c_nu * err
                bb = bb + nerr
                db = delta_bar[i, j] * c_nu_keep
                nerr = nerr * err
                db = db + nerr
                sigma2 = db - bb * bb
                lb = lambda_bar[i, j]
                sigma2 = sigma2 / (one + lb)
                if first:
                    alpha = one
                else:
                    sigma2 = sigma2 + c_e
                    sigma2 = sigma2 / (db + c_e)
                    alpha = one - sigma2
                om = one - alpha
                lb_new[i, j] = om * om * lb + alpha * alpha
                th_new[i, j] = th * om + alpha * x
                bb_new[i, j] = bb
                db_new[i, j] = db
                sn = sj * (one - alpha) + x * alpha
            else:
                sn = sj * c_eps_keep + x * c_eps
            sn = min(max(sn, f(0.0)), one)
            s_new[i, j] = sn
            # encoder: rho(s) = s (clipped above), a = (rho - (1-lambda) rho_last) / lambda
            a = sn - rho_last[i, j] * c_keep
            a = a / c_lam
            pj = phi[i, j] + a
            q = one if pj > f(0.5) else f(0.0)         # strict '>'
            r_new[i, j] = sn
            a_new[i, j] = a
            phi_new[i, j] = pj - q
            q_new[i, j] = q
    return v_new, s_new, th_new, bb_new, db_new, lb_new, r_new, a_new, phi_new, q_new


@njit(cache=True, error_model="numpy")   # numpy semantics: no zero-division branch, so loops vectorise
def encode_layer(s, rho_last, phi, lam):
    """Predictive encoder and sigma-delta of one layer (FloatModel._predictive/_sigma_delta).

    Returns new arrays (rho, a, phi, q): ``a = (rho - (1-lambda) rho_last) / lambda``,
    ``phi' = phi + a``, ``q = [phi' > 1/2]`` (strict), ``phi = phi' - q``.
    """
    B, n = s.shape
    f = s.dtype.type
    c_lam, c_keep = f(lam), f(1.0 - lam)
    r_new = np.empty_like(s)
    a_new = np.empty_like(s)
    phi_new = np.empty_like(s)
    q_new = np.empty_like(s)
    for i in range(B):
        for j in range(n):
            r = min(max(s[i, j], f(0.0)), f(1.0))
            a = r - rho_last[i, j] * c_keep
            a = a / c_lam
            p = phi[i, j] + a
            q = f(1.0) if p > f(0.5) else f(0.0)        # strict '>'
            r_new[i, j] = r
            a_new[i, j] = a
            phi_new[i, j] = p - q
            q_new[i, j] = q
    return r_new, a_new, phi_new, q_new


@njit(cache=True, error_model="numpy")
def input_spike_block(r, rho_last, phi, lams, Q):
    """Spikes of the clamped input layer for the ticks of a look-ahead block (FloatModel._input_drive).

    ``Q[0]`` holds the spikes already sent; ``Q[i]`` (i >= 1) gets the spikes encoded with
    ``lams[i - 1]`` from the constant ``r = rho(s_0)``, starting from the registers ``rho_last``
    and ``phi`` (not modified): the reference's ``_predictive`` and ``_sigma_delta`` per tick.
    """
    K, B, n = Q.shape
    f = r.dtype.type
    rl = rho_last.copy()
    p = phi.copy()
    for k in range(1, K):                              # ticks outside: the unit loop vectorises
        keep, lam = f(1.0 - lams[k - 1]), f(lams[k - 1])
        for i in range(B):
            for j in range(n):
                a = r[i, j] - rl[i, j] * keep
                a = a / lam
                rl[i, j] = r[i, j]
                pj = p[i, j] + a
                q = f(1.0) if pj > f(0.5) else f(0.0)   # strict '>'
                p[i, j] = pj - q
                Q[k, i, j] = q
