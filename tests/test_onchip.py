"""On-chip learning golden model: LFSR, draw order, integer update against a scalar reference,
saturation, config validation and that the integer rule learns."""

import dataclasses
import re

import numpy as np
import pytest

from golden_model import lfsr
from golden_model.config import ConfigError, EqSpikeConfig, Learning, learning_config, rate_code
from golden_model.float_model import glorot_params
from golden_model.onchip import OnChipLearner, draws_per_sample, learning_codes


# -- LFSR ----------------------------------------------------------------------------------------
def test_lfsr_is_maximal_length():
    """Period 2^64 - 1: A^N = I and A^(N/q) != I for every prime factor q of N."""
    n = (1 << 64) - 1
    a = lfsr.Matrix(lfsr.step(1 << c) for c in range(64))
    ident = lfsr.Matrix.identity().cols
    assert (a ** n).cols == ident
    for q in (3, 5, 17, 257, 641, 65537, 6700417):
        assert n % q == 0
        assert (a ** (n // q)).cols != ident, q


@pytest.mark.parametrize("bits", [1, 5, 8, 13, 16])
def test_draws_equal_stepping_reference(bits):
    seed = 0x0123456789ABCDEF
    d = lfsr.Draws(seed, bits, block=64)          # small block: many block boundaries
    got = np.concatenate([d.take(1), d.take(3), d.take(200), d.take(77), d.take(5)])
    s, ref = seed, []
    for _ in range(len(got)):
        s = lfsr.step(s, bits)
        ref.append(s & ((1 << bits) - 1))
    assert got.tolist() == ref
    assert d.state == s


def test_jump_matrix_rows_give_the_xor_network():
    m = lfsr.jump_matrix(24)
    s = 0xDEADBEEF12345678
    want = lfsr.step(s, 24)
    got = 0
    for b in range(64):
        bit = 0
        for c in m.rows_for_bit(b):
            bit ^= (s >> c) & 1
        got |= bit << b
    assert got == want


# -- the update against a scalar reference ---------------------------------------------------------
def _reference_update(cfg, w, b, s_free, s_nudged, sign, draws):
    """Per-synapse Python-int update in the documented draw order (docs/learning.md)."""
    lrn, L, lanes = cfg.learning, cfg.layers, cfg.lanes
    w = [x.tolist() for x in w]
    b = [x.tolist() for x in b]
    it = iter(draws)

    def offset(D):
        if D == 0:
            return 0
        if lrn.rounding == "nearest":
            return 1 << (D - 1)
        d, r = next(it), lrn.rng_bits
        return (d << (D - r)) + (1 << (D - r - 1)) if D > r else d >> (r - D)

    for l in range(len(L) - 1):
        fmt, D = cfg.learn_format(l), cfg.update_shift(l)
        C = -(-L[l + 1] // lanes)
        for i in range(L[l]):
            for g in range(C):
                for lane in range(lanes):
                    j = g * lanes + lane
                    R = offset(D)
                    if j >= L[l + 1]:
                        continue
                    am, ap = int(s_free[l][i]), int(s_nudged[l][i])
                    bm, bp = int(s_free[l + 1][j]), int(s_nudged[l + 1][j])
                    H = am * (bp - bm) + ((ap - am) * bm if l > 0 else 0)
                    v = w[l][i][j] + ((sign * lrn.rate_mult[l] * H + R) >> D)
                    w[l][i][j] = min(max(v, fmt.min_code), fmt.max_code)
    for l in range(len(L) - 1):
        fmt, D = cfg.biases[l], cfg.bias_update_shift(l)
        for j in range(L[l + 1]):
            R = offset(D)
            H = int(s_nudged[l + 1][j]) - int(s_free[l + 1][j])
            v = b[l][j] + ((sign * lrn.rate_mult[l] * H + R) >> D)
            b[l][j] = min(max(v, fmt.min_code), fmt.max_code)
    return w, b


@pytest.mark.parametrize("rounding", ["stochastic", "nearest"])
@pytest.mark.parametrize("layers,lanes", [((5, 3, 2), 1), ((6, 7, 3), 3), ((4, 5, 5, 2), 2)])
def test_update_equals_scalar_reference(rounding, layers, lanes):
    cfg = learning_config(layers, lr=(0.4,), rounding=rounding, seed=987654321).replace(lanes=lanes)
    rng = np.random.default_rng(1)
    ln = OnChipLearner.from_float(cfg, glorot_params(layers, rng))
    one = 1 << cfg.s.frac
    for sample in range(4):
        x = rng.integers(0, one + 1, layers[0])
        y = np.zeros(layers[-1], dtype=np.int64)
        y[sample % layers[-1]] = one
        w0, b0 = [w.copy() for w in ln.weights], [b.copy() for b in ln.biases]
        state0 = ln.draws.state
        r = ln.train_sample(x, y)
        # the stream: sign first, then the update draws, exactly draws_per_sample of them
        n = draws_per_sample(cfg)
        s, draws = state0, []
        for _ in range(n):
            s = lfsr.step(s, cfg.learning.rng_bits)
            draws.append(s & ((1 << cfg.learning.rng_bits) - 1))
        assert ln.draws.state == s
        assert r.sign == (-1 if draws[0] & 1 else 1)
        assert np.array_equal(r.s_free[0], x) and np.array_equal(r.s_nudged[0], x)
        w_ref, b_ref = _reference_update(cfg, w0, b0, r.s_free, r.s_nudged, r.sign, draws[1:])
        for l in range(len(layers) - 1):
            assert ln.weights[l].tolist() == w_ref[l]
            assert ln.biases[l].tolist() == b_ref[l]
        assert any(not np.array_equal(a, c) for a, c in zip(w0, ln.weights))


def test_both_signs_occur_and_phases_use_inference_weights():
    cfg = learning_config((5, 4, 3), seed=3)
    ln = OnChipLearner.from_float(cfg, glorot_params(cfg.layers, np.random.default_rng(0)))
    signs = {ln.train_sample(np.full(5, 2048), np.array([4096, 0, 0])).sign for _ in range(12)}
    assert signs == {1, -1}
    e = cfg.learning.extra_frac
    want = [[min((int(v) + (1 << (e - 1))) >> e, f.max_code) for v in w.ravel()]
            for w, f in zip(ln.weights, cfg.weights)]
    assert [wi.ravel().tolist() for wi in ln.inference_weights()] == want
    assert [a.ravel().tolist() for a in ln.model().weights] == want


def test_inference_view_rounds_half_up_and_saturates():
    cfg = learning_config((2, 2, 2), extra_frac=3)
    top = cfg.learn_format(0).max_code            # 2^10 - 1: rounds to 2^7, one past s1.7's top
    w = np.array([[top, -1024], [4, -4]])
    ln = OnChipLearner(cfg, [w, np.array([[3, -5], [12, 11]])], [np.zeros(2, dtype=np.int64)] * 2)
    assert ln.inference_weights()[0].tolist() == [[127, -128], [1, 0]]
    assert ln.inference_weights()[1].tolist() == [[0, -1], [2, 1]]


def test_saturation_at_learning_format_limits():
    cfg = learning_config((3, 2, 2), lr=(0.9,), rounding="nearest")
    fmt = cfg.learn_format(0)
    ln = OnChipLearner(cfg, [np.full((3, 2), fmt.max_code), np.full((2, 2), fmt.min_code)],
                       [np.zeros(2, dtype=np.int64)] * 2)
    # W0: H = x (s1+ - s1-) > 0; W1: H = 2048 * (0 - 4096) + 1024 * 4096 < 0
    s_free = [np.array([4096, 4096, 4096]), np.array([2048, 2048]), np.array([4096, 4096])]
    s_nudged = [s_free[0], np.array([3072, 3072]), np.array([0, 0])]
    ln.update(s_free, s_nudged, 1)
    assert (ln.weights[0] == fmt.max_code).all()       # pushed up, held at the top code
    assert (ln.weights[1] == fmt.min_code).all()       # pushed down, held at the bottom code
    assert ln.saturations == 6 + 4


def test_stochastic_rounding_is_unbiased_nearest_is_not():
    """Updates far below one LSB: stochastic rounding moves weights by the right amount on
    average, round-half-up of a tiny update moves them by 0."""
    layers = (20, 20, 2)
    common = dict(lr=(0.4,), extra_frac=0, seed=11)
    rng = np.random.default_rng(0)
    s_free = [rng.integers(0, 4097, n) for n in layers]
    s_nudged = [s_free[0]] + [np.clip(s + rng.integers(-300, 301, s.shape), 0, 4096) for s in s_free[1:]]
    moved = {}
    for rounding in ("stochastic", "nearest"):
        cfg = learning_config(layers, rounding=rounding, **common)
        zero = [np.zeros((a, b), dtype=np.int64) for a, b in zip(layers[:-1], layers[1:])]
        ln = OnChipLearner(cfg, zero, [np.zeros(n, dtype=np.int64) for n in layers[1:]])
        for _ in range(200):
            ln.update(s_free, s_nudged, 1)
        moved[rounding] = ln.weights[0]
        D = cfg.update_shift(0)
    H = np.multiply.outer(s_free[0], s_nudged[1] - s_free[1])
    exact = 200 * cfg.learning.rate_mult[0] * H / 2.0 ** D
    assert 200 * 0.05 < np.abs(exact).max() < 200 * 0.5    # single updates: 0.05-0.5 LSB at most
    err = moved["stochastic"] - exact
    # bias at most 2^-(r+1) LSB per update (docs/learning.md) plus 3 sigma of the binomial noise
    f = np.abs(exact / 200) % 1.0
    sigma = np.sqrt(np.sum(200 * f * (1 - f))) / err.size
    assert abs(err.mean()) < 200 * 2.0 ** -(cfg.learning.rng_bits + 1) + 3 * sigma
    assert np.abs(err).max() < 5 * np.sqrt(200 * 0.25) + 1
    assert np.corrcoef(moved["stochastic"].ravel(), exact.ravel())[0, 1] > 0.95
    assert (moved["nearest"] == 0).all()             # below half an LSB: round half up never moves


# -- config --------------------------------------------------------------------------------------
def test_learning_config_round_trip_and_summary():
    cfg = learning_config((784, 500, 10), rounding="nearest", extra_frac=4, seed=42)
    assert EqSpikeConfig.from_json(cfg.to_json()) == cfg
    assert cfg.learn_format(0).width == 12 and cfg.learn_format(0).frac == 11
    assert "nearest rounding" in cfg.summary()
    assert EqSpikeConfig.from_json(learning_config().replace(learning=None).to_json()).learning is None


@pytest.mark.parametrize("rate", [1e-6, 3.3e-4, 0.005, 0.0099, 0.01, 0.3, 0.93])
def test_rate_code_within_one_sixteenth(rate):
    m, k = rate_code(rate)
    assert 8 <= m <= 15
    assert abs(m * 2.0 ** -k - rate) <= rate / 16


@pytest.mark.parametrize("change,message", [
    (dict(rate_mult=(16, 10)), "rate_mult[0] must be <= 15"),
    (dict(rate_mult=(10,)), "one integer per matrix (2)"),
    (dict(rounding="down"), "rounding must be one of"),
    (dict(seed=0), "seed must be >= 1"),
    (dict(rng_bits=17), "rng_bits must be <= 16"),
    (dict(extra_frac=17), "extra_frac must be <= 16"),
])
def test_learning_config_errors_are_one_line(change, message):
    base = learning_config()
    with pytest.raises(ConfigError, match=re.escape(message)) as e:
        base.replace(learning=dataclasses.replace(base.learning, **change))
    assert "\n" not in str(e.value)


def test_update_needing_a_left_shift_is_rejected():
    base = learning_config().with_weight_fracs([9, 6])      # W0 learns as s-1.15 + 16 bits = frac 25
    with pytest.raises(ConfigError, match=re.escape("rate_shift[0] = 0 is too small for the learning format of W0")):
        base.replace(learning=dataclasses.replace(base.learning, rate_shift=(0, 11), extra_frac=16))
    b = learning_config()
    with pytest.raises(ConfigError, match=re.escape("too small for biases[1]")):
        b.replace(learning=dataclasses.replace(b.learning, rate_shift=(10, 0), extra_frac=0),
                  biases=(b.biases[0], dataclasses.replace(b.biases[1], frac=14)))


def test_learner_rejects_codes_outside_learning_format():
    cfg = learning_config((3, 2, 2))
    fmt = cfg.learn_format(0)
    w = [np.full((3, 2), fmt.max_code + 1), np.zeros((2, 2), dtype=np.int64)]
    with pytest.raises(ConfigError, match="does not fit"):
        OnChipLearner(cfg, w, [np.zeros(2, dtype=np.int64)] * 2)
    with pytest.raises(ConfigError, match="learning"):
        OnChipLearner(cfg.replace(learning=None), w, [np.zeros(2, dtype=np.int64)] * 2)


# -- it learns -----------------------------------------------------------------------------------
def test_integer_rule_learns_digits_subset():
    from experiments.data import load_digits
    d = load_digits()
    cfg = learning_config((64, 100, 10), lr=(0.2, 0.1))
    ln = OnChipLearner.from_float(cfg, glorot_params(cfg.layers, np.random.default_rng(0)))
    x = ln.encode(d.x_train[:500])
    y = ln.encode(np.eye(10)[d.y_train[:500]])
    before = np.mean(ln.predict(ln.encode(d.x_test[:150])) == d.y_test[:150])
    for i in range(len(x)):
        ln.train_sample(x[i], y[i])
    after = np.mean(ln.predict(ln.encode(d.x_test[:150])) == d.y_test[:150])
    assert after > 0.6 > before + 0.3, (before, after)


# -- the fused kernels (golden_model.onchip_kernels) against the reference ------------------------
def _kernel_configs():
    from golden_model.config import RegFormat, narrow_config
    narrow = narrow_config((16, 12, 4))
    wrap = narrow.replace(**{n: dataclasses.replace(getattr(narrow, n), overflow="wrap") for n in ("v", "x", "a", "phi")})
    wide_w = learning_config((9, 7, 3), lr=(0.3,)).replace(weights=(RegFormat(18, 12),) * 2)
    return {
        "narrow": narrow.replace(learning=Learning.from_rates((0.9, 0.9), narrow.beta, extra_frac=2, seed=5)),
        "narrow-wrap-nearest": wrap.replace(learning=Learning.from_rates((0.5, 0.5), wrap.beta, extra_frac=1,
                                                                         rounding="nearest", seed=77)),
        "narrow-noextra": narrow.replace(learning=Learning.from_rates((0.9, 0.9), narrow.beta, extra_frac=0, rng_bits=3)),
        "default-4layer-lanes3": learning_config((11, 9, 8, 3), lr=(0.4,), seed=9).replace(lanes=3),
        "int64-path": wide_w.replace(learning=Learning.from_rates((0.3, 0.3), wide_w.beta, rng_bits=13, seed=3)),
    }


@pytest.mark.parametrize("name", list(_kernel_configs()))
def test_fused_kernels_are_bit_exact_against_the_reference(name):
    """train_sample's fused path against reference=True (FixedModel tick by tick, numpy update):
    states, sign, weights, biases, LFSR state and saturation count equal after every sample, and
    the kernel's overflow counts equal FixedModel's. The narrow configs saturate (or wrap) v, x,
    a and phi and drive weights into the learning format's limits."""
    from golden_model.fixed_model import FixedModel
    cfg = _kernel_configs()[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    w = [rng.integers(f.min_code, f.max_code + 1, (a, b)) for f, a, b in
         zip([cfg.learn_format(l) for l in range(len(cfg.layers) - 1)], cfg.layers[:-1], cfg.layers[1:])]
    b = [rng.integers(f.min_code, f.max_code + 1, n) for f, n in zip(cfg.biases, cfg.layers[1:])]
    fast, ref = OnChipLearner(cfg, w, b), OnChipLearner(cfg, w, b)
    one = 1 << cfg.s.frac
    overflowed = 0
    for sample in range(6):
        x = rng.integers(0, one + 1, cfg.layers[0]) * (rng.random(cfg.layers[0]) < 0.7)
        y = np.zeros(cfg.layers[-1], dtype=np.int64)
        y[sample % cfg.layers[-1]] = one
        model = ref.model()
        st = model.reset(x[None, :], y[None, :])
        model.run(st, cfg.n_free, 0)
        model.run(st, cfg.n_nudged, -1)
        _, s_nudged, counts = fast.run_phases(x, y, -1)
        assert [s.tolist() for s in s_nudged] == [s[0].tolist() for s in st.s]
        assert counts == model.overflows
        overflowed += sum(counts.values())
        rf, rr = fast.train_sample(x, y), ref.train_sample(x, y, reference=True)
        assert (rf.sign, rf.prediction) == (rr.sign, rr.prediction)
        assert [s.tolist() for s in rf.s_free] == [s.tolist() for s in rr.s_free]
        assert [s.tolist() for s in rf.s_nudged] == [s.tolist() for s in rr.s_nudged]
        assert [a.tolist() for a in fast.weights] == [a.tolist() for a in ref.weights]
        assert [a.tolist() for a in fast.biases] == [a.tolist() for a in ref.biases]
        assert fast.draws.state == ref.draws.state
        assert fast.saturations == ref.saturations
    if name.startswith("narrow"):
        assert overflowed > 0 and ref.saturations > 0      # the narrow paths were exercised


@pytest.mark.parametrize("bits", [1, 3, 8, 13, 16])
def test_kernel_draw_step_equals_lfsr_steps(bits):
    from golden_model.onchip_kernels import draw_state_step
    s = 0x9E3779B97F4A7C15
    for _ in range(50):
        got = int(draw_state_step(np.uint64(s), bits))
        s = lfsr.step(s, bits)
        assert got == s
