"""Quantisation of trained weights, float vs fixed comparison and format sweeps."""

import dataclasses

import numpy as np
import pytest

from experiments.data import load_digits
from golden_model.config import ConfigError, RegFormat, default_config, wide_config
from experiments.evaluation import JSON_KEYS, compare
from golden_model.fixed_model import choose_frac, fit_weight_formats, quantise_params
from golden_model.float_model import Dynamics, Params, glorot_params
from experiments.sweep import run_sweep, smallest_within, state_frac_config, sweep_variants, weight_bits_config
from experiments.training import Trainer, TrainSettings

LAYERS = (64, 16, 10)


@pytest.fixture(scope="module")
def trained():
    """A small digits net trained briefly (continuous: fast) and its test data; the comparison
    uses the paper's binary dynamics as the 'training' dynamics."""
    d = load_digits()
    tr = Trainer(TrainSettings(layers=LAYERS, mode="continuous", dynamics=Dynamics.continuous(20, 4),
                               lr=(0.2, 0.1), seed=0))
    for _ in range(2):
        tr.train_epoch(d.x_train, d.y_train, 10)
    return tr.params.astype(np.float64), Dynamics(), d.x_test[:60], d.y_test[:60]


def test_quantiser_round_trip_of_representable_weights():
    cfg = default_config((6, 5, 4))
    rng = np.random.default_rng(0)
    w = [rng.integers(f.min_code, f.max_code + 1, (a, b)) * f.lsb
         for f, a, b in zip(cfg.weights, (6, 5), (5, 4))]
    bias = [rng.integers(-100, 100, n) * f.lsb for f, n in zip(cfg.biases, (5, 4))]
    wc, bc, rep = quantise_params(cfg, Params(w, bias))
    assert all(np.array_equal(c * f.lsb, x) for c, f, x in zip(wc, cfg.weights, w))
    assert all(np.array_equal(c * f.lsb, x) for c, f, x in zip(bc, cfg.biases, bias))
    assert not rep.any_clipped


def test_quantiser_rounds_to_nearest_within_half_an_lsb():
    p = glorot_params((20, 10, 5), np.random.default_rng(1))
    cfg = fit_weight_formats(default_config((20, 10, 5)), p)
    wc, _, rep = quantise_params(cfg, p)
    for c, f, w in zip(wc, cfg.weights, p.weights):
        assert np.max(np.abs(c * f.lsb - w)) <= f.lsb / 2 + 1e-15
    assert rep.weight_clipped == [0, 0]


def test_clipping_report_counts_saturated_values():
    cfg = default_config((4, 3, 2))            # weights s1.6: [-2, 1.984375]
    p = glorot_params((4, 3, 2), np.random.default_rng(0))
    p.weights[0][0, :] = [3.0, -2.5, 1.995]    # all three clip (1.995 rounds to code 128 > 127)
    p.weights[1][0, 0] = -2.0                  # exactly the minimum: not clipped
    p.biases[1][:] = [100.0, 0.0]              # biases s4.12: [-8, 8)
    wc, bc, rep = quantise_params(cfg, p)
    assert rep.weight_clipped == [3, 0] and rep.bias_clipped == [0, 1]
    assert rep.any_clipped
    assert wc[0][0, 0] == cfg.weights[0].max_code and wc[0][0, 1] == cfg.weights[0].min_code
    assert "W0: 3 of 12 clipped" in rep.describe() and "b2: 1 of 2 clipped" in rep.describe()


def test_fitted_formats_never_clip_and_use_the_range():
    p = glorot_params((30, 20, 5), np.random.default_rng(2))
    p.weights[0] *= 7.0
    cfg = fit_weight_formats(default_config((30, 20, 5)), p)
    _, _, rep = quantise_params(cfg, p)
    assert rep.weight_clipped == [0, 0]
    for f, w in zip(cfg.weights, p.weights):
        finer = dataclasses.replace(f, frac=f.frac + 1)
        assert np.abs(w).max() * 2 ** finer.frac + 0.5 > finer.max_code   # one step finer would clip
    assert choose_frac(0.0, RegFormat(8, 6)) == 0


def test_compare_reports_every_key_and_wide_fixed_point_tracks_float(trained):
    params, dyn, x, y = trained
    res = compare(params, x, y, wide_config(LAYERS), dyn, batch=25)
    js = res.to_json()
    assert all(k in js for k in JSON_KEYS)
    assert res.agreement == 1.0 and res.fixed_accuracy == res.binary_hw_accuracy
    assert max(res.state_diff) < 1e-4
    assert len(res.spikes_per_inference) == 3 and all(s > 0 for s in res.spikes_per_inference)
    assert res.binary_accuracy > 0.9 and res.float_accuracy > 0.9
    for r in res.registers:
        assert r.lo <= r.obs_min <= r.obs_max <= r.hi


def test_compare_default_config_is_close_and_narrow_config_overflows(trained):
    params, dyn, x, y = trained
    res = compare(params, x, y, default_config(LAYERS), dyn)
    assert res.agreement >= 0.95 and max(res.state_diff) < 0.02
    assert not res.quant.any_clipped and sum(res.overflows.values()) == 0
    narrow = default_config(LAYERS).replace(v=RegFormat(5, 3), x=RegFormat(5, 3))
    res_n = compare(params, x, y, narrow, dyn, skip_float=True)
    assert res_n.overflows["v"] > 0 and res_n.overflows["x"] > 0


def test_compare_rejects_mismatched_layers(trained):
    params, dyn, x, y = trained
    with pytest.raises(ConfigError, match="weights are for layers"):
        compare(params, x, y, default_config((64, 17, 10)), dyn)


def test_sweep_variants_have_the_requested_formats(trained):
    params = trained[0]
    base = default_config(LAYERS)
    for bits in (3, 8, 12):
        cfg = weight_bits_config(base, params, bits)
        assert all(f.width == bits for f in cfg.weights)
        assert not quantise_params(cfg, params)[2].any_clipped
    cfg = state_frac_config(base, params, 6)
    assert cfg.s.frac == 6 and cfg.s.width == 7
    assert cfg.v.frac == 6 and cfg.v.width - cfg.v.frac == base.v.width - base.v.frac


def test_sweep_parallel_equals_serial_and_more_bits_agree_more(trained):
    params, dyn, x, y = trained
    base = default_config(LAYERS)
    res = compare(params, x, y, base, dyn, skip_float=True)
    from experiments.training import predict
    ref = predict(params, Dynamics.from_config(base), x)
    assert np.mean(ref == y) == res.binary_hw_accuracy
    variants = sweep_variants(base, params, weight_bits=(3, 12), state_fracs=(3, 12))
    from runtime.executor import Executor
    serial = run_sweep(params, x, y, base, ref, variants, executor=Executor(jobs=1, quiet=True))
    parallel = run_sweep(params, x, y, base, ref, variants, executor=Executor(jobs=2, quiet=True))
    assert serial == parallel
    by = {(r["sweep"], r["bits"]): r for r in serial}
    assert by[("weight_bits", 12)]["agreement"] >= by[("weight_bits", 3)]["agreement"]
    assert by[("weight_bits", 12)]["agreement"] >= 0.95
    rows = [{"sweep": "w", "bits": b, "fixed_accuracy": a} for b, a in ((3, 0.5), (4, 0.89), (5, 0.9), (6, 0.91))]
    assert smallest_within(rows, "w", 0.894) == 4
    assert smallest_within(rows, "w", 0.9) == 5
    assert smallest_within(rows, "w", 0.99) is None
