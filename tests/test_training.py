"""EqProp training (experiments/training.py): the update rule, phases, modes, reproducibility."""

import numpy as np
import pytest

from experiments.data import load_digits
from golden_model.config import ConfigError, Schedule, default_config, wide_config
from golden_model.fixed_model import FixedModel, quantise_params
from golden_model.float_model import OSA, Dynamics, FloatModel, Params, glorot_params
from experiments.training import (
    Trainer, TrainSettings, dynamics_from_dict, dynamics_to_dict, eqprop_update, load_checkpoint,
    save_checkpoint,
)

FAST_BINARY = Dynamics(mode="binary", eps=OSA(0.0346), lam=Schedule.constant(0.275), n_free=30, n_nudged=10)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_update_is_the_spec_formula():
    rng = np.random.default_rng(0)
    p = glorot_params((5, 4, 3), rng)
    p.biases = [rng.normal(size=b.shape) for b in p.biases]
    x = rng.uniform(size=(6, 5))
    sf = [x, rng.uniform(size=(6, 4)), rng.uniform(size=(6, 3))]
    sp = [x, rng.uniform(size=(6, 4)), rng.uniform(size=(6, 3))]
    beta, lr = -0.5, (0.1, 0.05)
    q = p.copy()
    eqprop_update(q, sf, sp, beta, lr)
    dW0 = lr[0] / beta * x.T @ (sp[1] - sf[1]) / 6
    dW1 = lr[1] / beta * (sf[1].T @ (sp[2] - sf[2]) + (sp[1] - sf[1]).T @ sf[2]) / 6
    assert np.allclose(q.weights[0] - p.weights[0], dW0)
    assert np.allclose(q.weights[1] - p.weights[1], dW1)
    # bias shares the rate of the matrix feeding it, divided by the signed beta
    assert np.allclose(q.biases[0] - p.biases[0], lr[0] / beta * (sp[1] - sf[1]).mean(axis=0))
    assert np.allclose(q.biases[1] - p.biases[1], lr[1] / beta * (sp[2] - sf[2]).mean(axis=0))


def test_nudged_phase_continues_from_the_free_state(digits):
    """Trainer.phases equals a hand-run model: free phase, then nudged from the same state."""
    s = TrainSettings(layers=(64, 12, 10), mode="binary", dynamics=FAST_BINARY, dtype=np.float64)
    tr = Trainer(s)
    x, y = digits.x_train[:4].astype(np.float64), digits.one_hot(digits.y_train[:4])
    free, nudged = tr.phases(x, y, -0.5)
    m = FloatModel(tr.params, FAST_BINARY, dtype=np.float64)
    st = m.reset(x, y)
    m.run(st, 30)
    assert all(np.array_equal(a, b) for a, b in zip(free, st.s))
    m.run(st, 10, -0.5)
    assert all(np.array_equal(a, b) for a, b in zip(nudged, st.s))
    assert not np.allclose(nudged[-1], free[-1])


@pytest.mark.parametrize("mode", ["continuous", "binary", "fixed"])
def test_a_few_minibatches_lower_the_loss(digits, mode):
    """Training on the same 20 samples for a few minibatches lowers their free-phase loss."""
    layers = (64, 16, 10)
    dyn = Dynamics.continuous(20, 4) if mode == "continuous" else FAST_BINARY
    cfg = default_config(layers).replace(n_free=30, n_nudged=10) if mode == "fixed" else None
    tr = Trainer(TrainSettings(layers=layers, mode=mode, dynamics=dyn, config=cfg, lr=(0.2, 0.1), seed=1))
    x, y1h = digits.x_train[:20], digits.one_hot(digits.y_train[:20])
    losses = [tr.step(x, y1h)[0] for _ in range(8)]
    assert losses[-1] < 0.8 * losses[0], losses


def test_training_is_reproducible_and_seed_dependent(digits):
    sub = digits.subset(60, 10)

    def train(seed):
        tr = Trainer(TrainSettings(layers=(64, 8, 10), dynamics=FAST_BINARY, seed=seed, epochs=1))
        tr.train_epoch(sub.x_train, sub.y_train, 10)
        return tr.params

    a, b, c = train(3), train(3), train(4)
    assert all(np.array_equal(u, v) for u, v in zip(a.weights, b.weights))
    assert not np.allclose(a.weights[0], c.weights[0])


def test_lr_decay_scales_the_rates(digits):
    tr = Trainer(TrainSettings(layers=(64, 8, 10), dynamics=FAST_BINARY, lr=(0.1, 0.05), lr_decay=0.5))
    sub = digits.subset(20, 0)
    assert tr.lr == (0.1, 0.05)
    tr.train_epoch(sub.x_train, sub.y_train, 10)
    tr.train_epoch(sub.x_train, sub.y_train, 10)
    assert tr.lr == (0.05, 0.025)
    late = Trainer(TrainSettings(layers=(64, 8, 10), dynamics=FAST_BINARY, lr=(0.1, 0.05), lr_decay=0.5,
                                 lr_decay_start=3))
    rates = []
    for _ in range(4):
        late.train_epoch(sub.x_train, sub.y_train, 10)
        rates.append(late.lr[0])
    assert rates == [0.1, 0.1, 0.1, 0.05]


def test_fixed_mode_runs_the_fixed_model_on_requantised_weights(digits):
    """Fixed-mode phases are exactly FixedModel runs of the master weights quantised to the config."""
    layers = (64, 10, 10)
    cfg = default_config(layers).replace(n_free=12, n_nudged=4)
    tr = Trainer(TrainSettings(layers=layers, mode="fixed", config=cfg, lr=(0.1, 0.05), seed=2))
    x, y1h = digits.x_train[:5], digits.one_hot(digits.y_train[:5])
    tr.step(x, y1h)                                    # weights moved: must be re-quantised
    free, nudged = tr.phases(x, y1h, 0.5)
    w, b, _ = quantise_params(cfg, tr.params)
    m = FixedModel(cfg, w, b)
    st = m.reset(m.encode_inputs(x), m.encode_inputs(y1h))
    m.run(st, 12)
    assert all(np.array_equal(a, c * cfg.s.lsb) for a, c in zip(free, st.s))
    m.run(st, 4, 1)
    assert all(np.array_equal(a, c * cfg.s.lsb) for a, c in zip(nudged, st.s))


def test_fixed_mode_counts_clipped_weights(digits):
    layers = (64, 10, 10)
    cfg = default_config(layers).replace(n_free=5, n_nudged=2)    # weights s1.6: |W| <= 2
    p = glorot_params(layers, np.random.default_rng(0))
    p.weights[0][:3, 0] = 5.0
    tr = Trainer(TrainSettings(layers=layers, mode="fixed", config=cfg), params=p)
    tr.phases(digits.x_train[:2], digits.one_hot(digits.y_train[:2]), 0.5)
    assert tr.clipped == 3


def test_settings_validation():
    with pytest.raises(ValueError, match="one learning rate per matrix"):
        TrainSettings(layers=(4, 3, 2), lr=(0.1,))
    with pytest.raises(ValueError, match="mode must be one of"):
        TrainSettings(layers=(4, 3, 2), mode="analog")
    with pytest.raises(ConfigError, match="config is for layers"):
        TrainSettings(layers=(4, 3, 2), mode="fixed", config=default_config((5, 3, 2)))
    with pytest.raises(ConfigError, match="weights are for layers"):
        Trainer(TrainSettings(layers=(4, 3, 2)), params=glorot_params((4, 5, 2), np.random.default_rng(0)))


@pytest.mark.parametrize("dyn", [FAST_BINARY, Dynamics.continuous(),
                                 Dynamics(eps=Schedule.power(0.5, 0.3), lam=Schedule.power(0.6, 0.2))])
def test_dynamics_json_round_trip(dyn):
    assert dynamics_from_dict(dynamics_to_dict(dyn)) == dyn


def test_checkpoint_round_trip(tmp_path):
    p = glorot_params((6, 4, 3), np.random.default_rng(0))
    cfg = wide_config((6, 4, 3))
    save_checkpoint(tmp_path / "ck", p, cfg, {"dynamics": dynamics_to_dict(FAST_BINARY)}, {"test_accuracy": 0.5})
    ck = load_checkpoint(tmp_path / "ck")
    assert all(np.array_equal(a, b) for a, b in zip(ck.params.weights, p.weights))
    assert ck.config == cfg and ck.dynamics == FAST_BINARY and ck.metrics["test_accuracy"] == 0.5
    ck2 = load_checkpoint(tmp_path / "ck" / "weights.npz")
    assert ck2.config == cfg
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing")


@pytest.mark.slow
def test_digits_acceptance_of_issue_6(digits):
    """The demo's run (seed 2, 30 epochs, binary OSA, lr [0.1, 0.05] x 0.9^(epoch-1)): issue 6's
    digits figures. About 30-60 s on an idle core; ``pytest -m slow``."""
    from golden_model.config import default_config
    from experiments.evaluation import compare

    tr = Trainer(TrainSettings(layers=(64, 100, 10), dynamics=Dynamics(), lr=(0.1, 0.05), lr_decay=0.9,
                               epochs=30, seed=2))
    for _ in range(30):
        tr.train_epoch(digits.x_train, digits.y_train, 10)
    res = compare(tr.params.astype(np.float64), digits.x_test, digits.y_test, default_config((64, 100, 10)),
                  Dynamics())
    assert res.binary_accuracy >= 0.965
    assert res.agreement >= 0.99
    assert abs(res.fixed_accuracy - res.binary_hw_accuracy) <= 0.005
    assert abs(res.binary_hw_accuracy - res.binary_accuracy) <= 0.01


@pytest.mark.parametrize("mode", ["continuous", "binary"])
def test_trainer_keeps_one_float_model_that_reads_the_updated_weights(digits, mode):
    """No per-minibatch rebuild: one FloatModel reads the trainer's params live, and after each
    update its phases equal those of a freshly built reference model of the new weights."""
    dyn = FAST_BINARY if mode == "binary" else Dynamics.continuous()
    tr = Trainer(TrainSettings(layers=(64, 12, 10), mode=mode, dynamics=dyn, seed=4))
    x, y = digits.x_train[:60].astype(np.float32), digits.one_hot(digits.y_train[:60])
    tr.step(x[:20], y[:20])
    model = tr._float_model
    for i in (20, 40):
        tr.step(x[i:i + 20], y[i:i + 20])
        assert tr._float_model is model and model.params is tr.params
        free, nudged = tr.phases(x[:20], y[:20], -0.5)
        fresh = FloatModel(tr.params.copy(), dyn, dtype=np.float32, reference=True)
        st = fresh.reset(x[:20], y[:20])
        fresh.run(st, dyn.n_free)
        assert all(np.abs(a - b).max() <= 1e-6 for a, b in zip(free, st.s))
        fresh.run(st, dyn.n_nudged, -0.5)
        assert all(np.abs(a - b).max() <= 1e-6 for a, b in zip(nudged, st.s))
