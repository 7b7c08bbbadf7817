"""Float reference dynamics: the spec's traps, encoders, OSA, resets (golden_model/float_model.py)."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from golden_model.config import Schedule
from golden_model.float_model import OSA, Dynamics, FloatModel, Params, glorot_params, rho, rho_prime


def _net(layers=(6, 5, 3), seed=0, bias=0.0):
    rng = np.random.default_rng(seed)
    p = glorot_params(layers, rng)
    p.biases = [np.full_like(b, bias) for b in p.biases]
    return p, rng


def _input_spikes(x, steps, encoder="sigma_delta", seed=0):
    """Spike trains of the clamped input layer for constant inputs (lambda = 1: a = x)."""
    p, _ = _net((x.shape[1], 2, 1))
    dyn = Dynamics(eps=Schedule.constant(0.5), lam=Schedule.constant(1.0), encoder=encoder, n_free=steps, n_nudged=0)
    m = FloatModel(p, dyn, rng=np.random.default_rng(seed))
    st_ = m.reset(x)
    total = np.zeros_like(x)
    for _ in range(steps):
        m.tick(st_)
        total += st_.q[0]
    return total


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8), st.integers(1, 300))
def test_sigma_delta_mean_error_at_most_half_over_T(values, T):
    x = np.array([values])
    total = _input_spikes(x, T)
    assert np.all(np.abs(total / T - x) <= 1.0 / (2 * T) + 1e-12)


def test_sigma_delta_threshold_is_strict():
    # a = 1/2 every step: phi' = 1/2 is not > 1/2, so the first spike comes on the second step
    x = np.array([[0.5]])
    assert _input_spikes(x, 1)[0, 0] == 0
    assert _input_spikes(x, 2)[0, 0] == 1


def test_stochastic_encoder_is_unbiased():
    x = np.full((1, 200), 0.3)
    rate = _input_spikes(x, 400, encoder="stochastic", seed=3).mean() / 400
    assert abs(rate - 0.3) < 0.01


def test_rho_prime_is_one_on_closed_interval():
    s = np.array([-0.1, 0.0, 0.5, 1.0, 1.1])
    assert rho_prime(s).tolist() == [0, 1, 1, 1, 0]
    assert rho(s).tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]


@pytest.mark.parametrize("mode", ["continuous", "binary"])
def test_units_starting_at_zero_move(mode):
    """Trap: strict bounds 0 < s < 1 would freeze every unit that starts at 0."""
    p, _ = _net(bias=0.3)
    dyn = Dynamics.continuous() if mode == "continuous" else Dynamics(eps=Schedule.constant(0.5), lam=Schedule.constant(1.0))
    m = FloatModel(p, dyn)
    st_ = m.reset(np.zeros((1, 6)))
    m.run(st_, 5)
    assert np.all(st_.s[1] > 0) and np.all(st_.s[2] > 0)


def test_continuous_fixed_point_satisfies_the_equations():
    p, rng = _net((8, 6, 4), seed=2, bias=0.1)
    m = FloatModel(p, Dynamics.continuous(n_free=400))
    x = rng.uniform(0, 1, (3, 8))
    st_ = m.free_phase(x)
    s = st_.s
    W = p.weights
    h = np.clip(p.biases[0] + x @ W[0] + s[2] @ W[1].T, 0, 1)
    o = np.clip(p.biases[1] + s[1] @ W[1], 0, 1)
    assert np.allclose(s[1], h, atol=1e-10) and np.allclose(s[2], o, atol=1e-10)


def test_nudge_pulls_output_towards_target_and_nothing_resets_between_phases():
    p, rng = _net((8, 6, 4), seed=4, bias=0.2)
    m = FloatModel(p, Dynamics.continuous(n_free=100, n_nudged=1))
    x = rng.uniform(0, 1, (2, 8))
    y = np.eye(4)[[0, 3]]
    st_ = m.reset(x, y)
    m.run(st_, 100)
    free = [a.copy() for a in st_.s]
    m.tick(st_, 0.5)
    # one nudged step from the free state, written out: nudge = 2 beta (y - s_out_prev)
    pressure = p.biases[1] + free[1] @ p.weights[1]
    expected = np.clip(0.5 * free[2] + 0.5 * (pressure + 2 * 0.5 * (y - free[2])), 0, 1)
    assert not np.allclose(expected, free[2])
    assert np.allclose(st_.s[2], expected, atol=1e-9)
    assert np.allclose(st_.s[1], free[1], atol=1e-9)   # hidden layer hears the change only next step


def test_samples_are_independent_and_reset_per_sample():
    p, rng = _net((8, 6, 4), seed=5)
    dyn = Dynamics()  # binary OSA + predictive coding, the paper's final config
    x = rng.uniform(0, 1, (3, 8))
    batched = FloatModel(p, dyn).free_phase(x).s[-1]
    m = FloatModel(p, dyn)
    for i in range(3):
        single = m.free_phase(x[i:i + 1]).s[-1]
        assert np.array_equal(single[0], batched[i])


def _manual_predictive(x_input, lam_sched, w, T):
    """A single hidden neuron fed by one input neuron, written out step by step from the spec."""
    s0 = x_input
    phi0 = rl0 = 0.0
    q0 = 0.0
    v = s = 0.0
    trace = []
    for t in range(1, T + 1):
        lam = lam_sched.at(t)
        u = q0 * w                      # q^{t-1}
        v = (1 - lam) * v + lam * u     # decoder uses lambda^t
        s = min(max(0.5 * s + 0.5 * v, 0.0), 1.0)
        a = (s0 - (1 - lam) * rl0) / lam   # encoder uses lambda^t on the spike it sends at t
        rl0 = s0
        phi = phi0 + a
        q0 = float(phi > 0.5)
        phi0 = phi - q0
        trace.append(s)
    return np.array(trace)


def test_predictive_coding_lambda_indexing_matches_the_spec():
    lam = Schedule.power(0.6, 0.4)
    w = 0.8
    p = Params([np.array([[w]]), np.array([[0.0]])], [np.zeros(1), np.zeros(1)])
    dyn = Dynamics(eps=Schedule.constant(0.5), lam=lam, n_free=30, n_nudged=0)
    m = FloatModel(p, dyn)
    st_ = m.reset(np.array([[0.7]]))
    got = []
    for _ in range(30):
        m.tick(st_)
        got.append(st_.s[1][0, 0])
    assert np.allclose(got, _manual_predictive(0.7, lam, w, 30), atol=1e-12)


def test_osa_theta_is_its_own_unclipped_register():
    p, rng = _net((20, 15, 5), seed=6, bias=1.5)   # strong drive: s clips at 1
    dyn = Dynamics(eps=OSA(0.05, 1e-7), lam=Schedule.constant(1.0), n_free=60, n_nudged=0)
    m = FloatModel(p, dyn)
    st_ = m.free_phase(rng.uniform(0, 1, (2, 20)))
    theta = st_.osa[1]["theta"]
    assert theta.max() > 1.0                       # theta left [0, 1] while s stayed clipped
    assert st_.s[1].max() <= 1.0
    # first step: alpha = 1, so s^1 = clip(x^1)
    st2 = m.reset(rng.uniform(0, 1, (1, 20)))
    m.tick(st2)
    assert np.allclose(st2.osa[1]["theta"], p.biases[0])   # no spikes yet: x^1 = b
    assert np.allclose(st2.s[1], np.clip(p.biases[0], 0, 1))


def test_osa_nu_tends_to_nu_bar():
    p, _ = _net()
    m = FloatModel(p, Dynamics(eps=OSA(0.1, 1e-7)))
    st_ = m.reset(np.zeros((1, 6)))
    m.run(st_, 200)
    assert abs(st_.osa_nu - 0.1) < 1e-3


def test_params_save_load_round_trip(tmp_path):
    p, _ = _net((5, 4, 3))
    p.save(tmp_path / "w.npz")
    q = Params.load(tmp_path / "w.npz")
    assert all(np.array_equal(a, b) for a, b in zip(p.weights, q.weights))
    assert q.layers == (5, 4, 3)


def test_bad_input_shape():
    p, _ = _net()
    with pytest.raises(ValueError, match=r"inputs must have shape \(batch, 6\)"):
        FloatModel(p, Dynamics()).reset(np.zeros((2, 5)))


# -- continuous dynamics: the input is clamped inside the step (spec section 2) ---------------------
def test_continuous_step_one_reads_the_reset_input_state_zero():
    """Step 1: the hidden layer still sees s_0 = 0 (only its bias); rho(x) @ W_0 arrives at step 2."""
    p, rng = _net((8, 6, 4), seed=7, bias=0.1)
    x = rng.uniform(0, 1, (2, 8))
    for reference in (True, False):
        m = FloatModel(p, Dynamics.continuous(), reference=reference)
        st_ = m.reset(x)
        assert np.array_equal(st_.s[0], np.zeros_like(x))
        m.tick(st_)
        assert np.array_equal(st_.s[0], x)
        assert np.allclose(st_.s[1], np.clip(0.5 * p.biases[0], 0, 1), atol=1e-15)
        s1, s2 = st_.s[1].copy(), st_.s[2].copy()
        m.tick(st_)
        want = np.clip(0.5 * s1 + 0.5 * (p.biases[0] + x @ p.weights[0] + s2 @ p.weights[1].T), 0, 1)
        assert np.allclose(st_.s[1], want, atol=1e-12)


def test_binary_reset_keeps_the_input_state_at_x():
    """Binary (spec 3): s_0 = x is read by the input encoder at the end of step 1; unchanged."""
    p, rng = _net((8, 6, 4), seed=8)
    x = rng.uniform(0, 1, (2, 8))
    st_ = FloatModel(p, Dynamics()).reset(x)
    assert np.array_equal(st_.s[0], x) and not st_.q[0].any()


# -- the fast paths (golden_model.float_kernels, cached input drive) against the reference ----------
#: Largest state difference the fast path may show against ``reference=True`` over a whole
#: free + nudged run. The kernels do the reference's operations in the same order and precision,
#: so in practice they are bit-identical; the bound is a few float rounding steps. (The input
#: product of wide layers is summed per sample over the spiking inputs: see
#: test_sample_wise_input_product_equals_the_full_product.)
FAST_PATH_ATOL = {np.float32: 1e-6, np.float64: 1e-13}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dyn", [
    Dynamics(n_free=40, n_nudged=15),                                           # OSA + lambda 0.275
    Dynamics(eps=Schedule.power(0.775, 0.313), lam=Schedule.power(0.67, 0.578), n_free=40, n_nudged=15),
    Dynamics(eps=OSA(0.0503, 1e-7), lam=Schedule.constant(1.0), n_free=40, n_nudged=15),
    Dynamics.continuous(20, 4),
], ids=["osa-lambda", "scheduled", "osa-no-pc", "continuous"])
def test_fast_path_equals_the_reference_to_float_rounding(dtype, dyn):
    p, rng = _net((30, 20, 8, 5), seed=11, bias=0.05)
    p = p.astype(dtype)
    x = rng.uniform(0, 1, (7, 30)) * (rng.random((7, 30)) < 0.6)
    y = np.eye(5)[rng.integers(0, 5, 7)]
    runs = []
    for reference in (True, False):
        m = FloatModel(p, dyn, dtype=dtype, reference=reference)
        st_ = m.reset(x, y)
        trace = []
        m.run(st_, dyn.n_free, 0.0, callback=lambda s: trace.append([a.copy() for a in s.s]))
        m.run(st_, dyn.n_nudged, -dyn.beta, callback=lambda s: trace.append([a.copy() for a in s.s]))
        runs.append((trace, None if st_.q is None else [q.copy() for q in st_.q]))
    (ref, q_ref), (fast, q_fast) = runs
    worst = max(float(np.abs(a - b).max()) for r, f in zip(ref, fast) for a, b in zip(r, f))
    assert worst <= FAST_PATH_ATOL[dtype]
    if q_ref is not None:
        assert all(np.array_equal(a, b) for a, b in zip(q_ref, q_fast))      # the same spikes


def test_model_reads_shared_params_live():
    """Params of the model's dtype are not copied: an in-place update is seen by the next sample."""
    p, rng = _net((8, 6, 4), seed=3, bias=0.1)
    x = rng.uniform(0, 1, (2, 8))
    for dyn in (Dynamics(n_free=30, n_nudged=5), Dynamics.continuous()):
        m = FloatModel(p, dyn)
        assert m.params is p
        p.weights[1] *= -1.5
        p.biases[0] += 0.2
        assert np.array_equal(m.free_phase(x).s[-1], FloatModel(p.copy(), dyn).free_phase(x).s[-1])


def test_sample_wise_input_product_equals_the_full_product(monkeypatch):
    """The fast path multiplies each sample by the W_0 rows of its spiking inputs alone: forced on
    a small network (inputs within BLAS's inner block), the run is the reference's; on the
    paper's 784 x 500 layer its input drive is the full product to float rounding."""
    monkeypatch.setattr(FloatModel, "SAMPLE_PRODUCT_MIN_SYNAPSES", 0)
    p, rng = _net((30, 20, 8, 5), seed=12, bias=0.05)
    p = p.astype(np.float32)
    x = rng.uniform(0, 1, (6, 30)) * (rng.random((6, 30)) < 0.4)      # about 60 % zero inputs
    dyn = Dynamics(n_free=40, n_nudged=15)
    finals = []
    for reference in (True, False):
        m = FloatModel(p, dyn, dtype=np.float32, reference=reference)
        st_ = m.free_phase(x)
        finals.append((st_.s, st_.q))
    (s_ref, q_ref), (s_fast, q_fast) = finals
    assert max(float(np.abs(a - b).max()) for a, b in zip(s_ref, s_fast)) <= FAST_PATH_ATOL[np.float32]
    assert all(np.array_equal(a, b) for a, b in zip(q_ref, q_fast))
    monkeypatch.undo()
    p, rng = _net((784, 500, 10), seed=13, bias=0.0)
    p = p.astype(np.float32)
    x = rng.uniform(0, 1, (4, 784)) * (rng.random((4, 784)) < 0.5)
    drives = []
    for reference in (True, False):
        m = FloatModel(p, dyn, dtype=np.float32, reference=reference)
        st_ = m.reset(x)
        m._input_drive(st_, 1)
        drives.append(st_.drive[1].copy())
    ref, fast = drives
    assert ref.shape == fast.shape and np.isfinite(fast).all()
    assert float(np.abs(ref - fast).max()) <= 1e-5 * max(1.0, float(np.abs(ref).max()))
