"""Bit-accurate fixed-point model (golden_model/fixed_model.py)."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from golden_model.config import ConfigError, RegFormat, Schedule, default_config, narrow_config, wide_config
from golden_model.fixed_model import (FixedModel, FixedPointOverflow, choose_frac, fit_weight_formats,
                                      quantise_params)
from golden_model.float_model import Dynamics, FloatModel, glorot_params


def _random_codes(cfg, rng, scale=1.0):
    w = [rng.integers(int(f.min_code * scale), int(f.max_code * scale) + 1, size=(a, b))
         for f, a, b in zip(cfg.weights, cfg.layers[:-1], cfg.layers[1:])]
    b = [rng.integers(int(f.min_code * scale) // 4, int(f.max_code * scale) // 4 + 1, size=n)
         for f, n in zip(cfg.biases, cfg.layers[1:])]
    return w, b


def _inputs(cfg, rng, batch):
    one = 1 << cfg.s.frac
    x = rng.integers(0, one + 1, size=(batch, cfg.layers[0]))
    y = np.eye(cfg.layers[-1], dtype=np.int64)[rng.integers(0, cfg.layers[-1], batch)] * one
    return x, y


# -- the wide config tracks the float binary model ---------------------------------------------
# Stated bound: with 24 fraction bits everywhere, over 100 steps (and the nudged phase after it)
# the fixed-point states stay within 1e-5 of the float binary model's and every spike agrees.
WIDE_STATE_BOUND = 1e-5


@pytest.mark.parametrize("layers,lam", [((64, 100, 10), Schedule.power(0.503, 0.292)),
                                        ((30, 20, 10, 5), Schedule.constant(1.0)),
                                        ((30, 25, 6), Schedule.constant(0.275))])
def test_wide_config_tracks_float_binary_model(layers, lam):
    cfg = wide_config(layers, lam=lam, n_free=100, n_nudged=30)
    rng = np.random.default_rng(11)
    p = glorot_params(cfg.layers, rng)
    p.biases = [rng.normal(0, 0.1, b.shape) for b in p.biases]
    fixed = FixedModel.from_float(cfg, p, strict=True)
    flt = FloatModel(p, Dynamics.from_config(cfg))
    x = rng.uniform(0, 1, (4, layers[0]))
    y = np.eye(layers[-1])[rng.integers(0, layers[-1], 4)]
    sf = flt.reset(x, y)
    sx = fixed.reset(fixed.encode_inputs(x), fixed.encode_inputs(y))
    worst = 0.0
    for t in range(cfg.n_steps):
        nudged = t >= cfg.n_free
        flt.tick(sf, cfg.beta if nudged else 0.0)
        fixed.tick(sx, 1 if nudged else 0)
        for l in range(1, len(layers)):
            worst = max(worst, np.abs(sf.s[l] - sx.s[l] * cfg.s.lsb).max())
            assert np.array_equal(sf.q[l], sx.q[l]), f"spike mismatch layer {l} step {t + 1}"
    assert worst < WIDE_STATE_BOUND
    assert worst > 0            # it is a different arithmetic, not the same code path


# -- strict mode and saturation ------------------------------------------------------------------
def test_narrow_config_saturates_and_strict_mode_raises():
    cfg = narrow_config()
    rng = np.random.default_rng(3)
    w, b = _random_codes(cfg, rng)
    x, y = _inputs(cfg, rng, 8)
    loose = FixedModel(cfg, w, b)
    st_ = loose.reset(x, y)
    loose.run(st_, cfg.n_free)
    loose.run(st_, cfg.n_nudged, nudge_sign=1)
    assert all(loose.overflows[r] > 0 for r in ("v", "x", "a", "phi")), loose.overflows
    for name in ("v", "x", "a", "phi"):
        fmt = getattr(cfg, name)
        arr = np.concatenate([a.ravel() for a in getattr(st_, name) if a is not None])
        assert fmt.min_code <= arr.min() and arr.max() <= fmt.max_code
    strict = FixedModel(cfg, w, b, strict=True)
    st2 = strict.reset(x, y)
    with pytest.raises(FixedPointOverflow, match=r"register \w+ of layer \d overflowed at tick \d+: code -?\d+ outside"):
        strict.run(st2, cfg.n_steps)


def test_default_config_does_not_overflow_on_glorot_weights():
    cfg = default_config((64, 100, 10))
    rng = np.random.default_rng(0)
    p = glorot_params(cfg.layers, rng)
    cfg = fit_weight_formats(cfg, p)
    m = FixedModel.from_float(cfg, p, strict=True)
    x, y = _inputs(cfg, rng, 4)
    st_ = m.reset(x, y)
    m.run(st_, cfg.n_free)
    m.run(st_, cfg.n_nudged, -1)
    assert sum(m.overflows.values()) == 0


def test_wrap_rule_wraps_instead_of_saturating():
    sat = narrow_config()
    wrp = sat.replace(v=RegFormat(sat.v.width, sat.v.frac, overflow="wrap"))
    rng = np.random.default_rng(3)
    w, b = _random_codes(sat, rng)
    x, _ = _inputs(sat, rng, 8)
    ms, mw = FixedModel(sat, w, b), FixedModel(wrp, w, b)
    ss, sw = ms.reset(x), mw.reset(x)
    differs = False
    for _ in range(sat.n_free):
        ms.tick(ss)
        mw.tick(sw)
        differs |= any(not np.array_equal(a, c) for a, c in zip(ss.v[1:], sw.v[1:]))
    assert mw.overflows["v"] > 0 and differs


def test_sigma_delta_register_stays_in_half_open_interval_for_rates_in_unit_range():
    cfg = default_config((10, 4, 2)).replace(lam=Schedule.constant(1.0))
    m = FixedModel(cfg, *_random_codes(cfg, np.random.default_rng(1)))
    x, _ = _inputs(cfg, np.random.default_rng(2), 3)
    st_ = m.reset(x)
    half = 1 << (cfg.phi.frac - 1)
    for _ in range(50):
        m.tick(st_)
        for phi in st_.phi:
            assert phi.min() > -half - 1 and phi.max() <= half


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 1 << 12), min_size=1, max_size=6), st.integers(1, 150))
def test_fixed_sigma_delta_mean_error_bound(codes, T):
    """Constant input, lambda = 1: the spike count is within 1/2 of T * x (error <= 1/(2T))."""
    cfg = default_config((len(codes), 2, 1)).replace(lam=Schedule.constant(1.0), n_free=T, n_nudged=0)
    m = FixedModel(cfg, [np.zeros((len(codes), 2), np.int64), np.zeros((2, 1), np.int64)],
                   [np.zeros(2, np.int64), np.zeros(1, np.int64)])
    st_ = m.reset(np.array([codes]))
    total = np.zeros(len(codes))
    for _ in range(T):
        m.tick(st_)
        total += st_.q[0][0]
    # |mean - x| <= 1/(2T)  <=>  2 |count * 2^12 - T * code| <= 2^12, in exact integers
    assert np.all(2 * np.abs(total.astype(np.int64) * (1 << 12) - T * np.array(codes)) <= (1 << 12))


# -- accumulation order ------------------------------------------------------------------------
def test_accumulation_is_exact_and_order_independent():
    """The vectorised accumulator equals an event-by-event integer sum in random order."""
    cfg = default_config((40, 30, 20, 5)).replace(
        weights=(RegFormat(8, 9), RegFormat(10, 6), RegFormat(7, 4)))
    rng = np.random.default_rng(7)
    w, b = _random_codes(cfg, rng)
    m = FixedModel(cfg, w, b)
    x, _ = _inputs(cfg, rng, 1)
    st_ = m.reset(x)
    for _ in range(12):
        q_prev = [q.copy() for q in st_.q]
        m.tick(st_)
        for l in range(1, cfg.n_layers):
            acc_fmt = cfg.acc_format(l)
            events = [("up", j) for j in np.flatnonzero(q_prev[l - 1][0])]
            if l + 1 < cfg.n_layers:
                events += [("down", k) for k in np.flatnonzero(q_prev[l + 1][0])]
            rng.shuffle(events)
            acc = [0] * cfg.layers[l]
            for kind, j in events:
                for i in range(cfg.layers[l]):
                    if kind == "up":
                        acc[i] += int(w[l - 1][j, i]) << (acc_fmt.frac - cfg.weights[l - 1].frac)
                    else:
                        acc[i] += int(w[l][i, j]) << (acc_fmt.frac - cfg.weights[l].frac)
            assert acc == st_.acc[l][0].tolist()


def test_accumulator_exact_in_float64_path_for_wide_weights():
    cfg = wide_config((200, 50, 10))
    rng = np.random.default_rng(9)
    w, b = _random_codes(cfg, rng)
    m = FixedModel(cfg, w, b)
    assert m._up[1].dtype == np.float64
    q = (rng.random((3, 200)) < 0.5).astype(np.int64)
    st_ = m.reset(np.zeros((3, 200), np.int64))
    st_.q[0] = q
    m.tick(st_)
    exact = [[sum(int(w[0][j, i]) for j in np.flatnonzero(q[r])) for i in range(50)] for r in range(3)]
    assert st_.acc[1].tolist() == exact


# -- parameters and quantisation ----------------------------------------------------------------
def test_weight_that_does_not_fit_is_rejected():
    cfg = default_config((4, 3, 2))
    w = [np.zeros((4, 3), np.int64), np.zeros((3, 2), np.int64)]
    w[1][0, 0] = 128
    with pytest.raises(ConfigError, match=r"W1 code 128 does not fit s2.6 \(\[-128, 127\]\)"):
        FixedModel(cfg, w, [np.zeros(3, np.int64), np.zeros(2, np.int64)])
    with pytest.raises(ConfigError, match=r"W0 must have shape \(4, 3\)"):
        FixedModel(cfg, [np.zeros((3, 3), np.int64), w[1] * 0], [np.zeros(3, np.int64), np.zeros(2, np.int64)])


def test_quantise_params_reports_clipping_and_round_trips():
    cfg = default_config((5, 4, 3))
    p = glorot_params(cfg.layers, np.random.default_rng(0))
    p.weights[0][0, 0] = 5.0        # beyond s2.6's +1.98
    w, b, rep = quantise_params(cfg, p)
    assert rep.weight_clipped == [1, 0] and w[0][0, 0] == 127 and rep.any_clipped
    back = w[1] * cfg.weights[1].lsb
    assert np.all(np.abs(back - p.weights[1]) <= cfg.weights[1].lsb / 2)
    fitted = fit_weight_formats(cfg, p)
    assert quantise_params(fitted, p)[2].any_clipped is False


def test_choose_frac():
    f8 = RegFormat(8, 0)
    assert choose_frac(0.5, f8) == 7          # 0.5 * 2**8 = 128 would not fit 127
    assert round(0.5 * 2**choose_frac(0.5, f8)) <= 127
    assert choose_frac(0.49, f8) == 8 and choose_frac(0.07, f8) == 10 and choose_frac(1.5, f8) == 6


def test_inputs_outside_unit_interval_are_rejected():
    cfg = default_config((4, 3, 2))
    m = FixedModel(cfg, *_random_codes(cfg, np.random.default_rng(0)))
    with pytest.raises(ValueError, match=r"inputs and targets must lie in \[0, 1\]"):
        m.encode_inputs(np.array([[0.2, 1.3, 0, 0]]))
    with pytest.raises(ValueError, match="past the schedule tables"):
        st_ = m.reset(np.zeros((1, 4), np.int64))
        m.run(st_, cfg.n_steps + 1)


@pytest.mark.parametrize("strict", [False, True])
def test_input_lookahead_gives_the_same_registers_overflows_and_errors(strict):
    """The block look-ahead of the input layer is a speed-up only: every register, overflow
    count and strict-mode error equals the tick-by-tick path (input a overflows at tick 1 here)."""
    cfg = narrow_config((30, 12, 4)).replace(lam=Schedule.power(0.3, 0.5))
    rng = np.random.default_rng(5)
    w, b = _random_codes(cfg, rng)
    x, y = _inputs(cfg, rng, 3)
    fast, slow = FixedModel(cfg, w, b, strict=strict), FixedModel(cfg, w, b, strict=strict, lookahead=False)
    sf, ss = fast.reset(x, y), slow.reset(x, y)
    errors = []
    for model, st_ in ((fast, sf), (slow, ss)):
        try:
            model.run(st_, cfg.n_free)
            model.run(st_, cfg.n_nudged, -1)
            errors.append(None)
        except FixedPointOverflow as e:
            errors.append(str(e))
    assert errors[0] == errors[1]
    assert (errors[0] is not None) == strict
    if not strict:
        assert slow.overflows["a"] > 0 and fast.overflows == slow.overflows
        for l in range(cfg.n_layers):
            for name, reg in ss.registers(l).items():
                assert np.array_equal(reg, sf.registers(l)[name]), (l, name)
