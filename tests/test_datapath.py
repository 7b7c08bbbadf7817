"""The datapath written once (golden_model/datapath.py): the formulas in FORMULAS are the
docstrings of the model's stage functions and of their RTL twins, and the block the docs show;
each stage is tested here by name against a scalar rendering of its formula."""

from pathlib import Path

import numpy as np
import pytest

from golden_model import datapath
from golden_model.config import default_config, learning_config, narrow_config
from golden_model.datapath import FORMULAS, LEARNING_STAGES, STAGES, formula_block
from golden_model.fixed_model import FixedModel

ROOT = Path(__file__).resolve().parents[1]


def test_every_formula_has_exactly_one_model_stage():
    model_stages = {f.datapath_stage: f for f in vars(datapath).values() if getattr(f, "datapath_stage", None)}
    model_stages["accumulate"] = FixedModel._synaptic_sum
    assert set(model_stages) == set(FORMULAS) == set(STAGES) | set(LEARNING_STAGES)
    for name, fn in model_stages.items():
        assert fn.datapath_stage == name
        assert fn.__doc__.startswith(FORMULAS[name]), f"{fn.__qualname__} does not state its formula"


def test_docs_quote_the_formulas():
    assert formula_block(STAGES) in (ROOT / "docs" / "fixed_point.md").read_text(), \
        "docs/fixed_point.md is stale: paste golden_model.datapath.formula_block()"
    learning = "\n".join("   " + line for line in formula_block(LEARNING_STAGES).splitlines())
    assert learning in (ROOT / "docs" / "learning.md").read_text(), \
        "docs/learning.md is stale: paste golden_model.datapath.formula_block(LEARNING_STAGES)"


def test_model_docstring_does_not_restate_the_formulas():
    import golden_model.fixed_model as fm
    for line in formula_block(STAGES).splitlines():
        assert line.split("=", 1)[-1].strip()[:30] not in fm.__doc__


# -- each stage against a scalar rendering of its formula (Python ints, no numpy) ---------------

def _round(x, n, rounding):
    if n <= 0:
        return x << -n
    return (x + (1 << (n - 1))) >> n if rounding == "half_up" else x >> n


def _narrow(x, fmt):
    if fmt.min_code <= x <= fmt.max_code:
        return x
    if fmt.overflow == "wrap":
        m = 1 << fmt.width
        return ((x - fmt.min_code) % m) + fmt.min_code
    return min(max(x, fmt.min_code), fmt.max_code)


def _narrow_np(cfg):
    return lambda value, name: np.vectorize(lambda c: _narrow(int(c), getattr(cfg, name)), otypes=[np.int64])(value)


CONFIGS = [default_config((6, 5, 3)), narrow_config((6, 5, 3)),
           narrow_config((6, 5, 3)).replace(v=narrow_config().v.__class__(7, 4, overflow="wrap"))]


@pytest.mark.parametrize("cfg", CONFIGS, ids=["default", "narrow", "narrow-wrap"])
def test_stage_decode_v(cfg):
    rng = np.random.default_rng(1)
    acc_fmt = cfg.acc_format(1)
    acc = rng.integers(acc_fmt.min_code, acc_fmt.max_code + 1, 50)
    v = rng.integers(cfg.v.min_code, cfg.v.max_code + 1, 50)
    lam = int(cfg.lam_rom.max())
    got = datapath.decode_v(cfg, 1, acc, v, lam, _narrow_np(cfg))
    for i in range(50):
        u = _round(int(acc[i]), acc_fmt.frac - cfg.v.frac, cfg.v.rounding)
        want = _narrow(int(v[i]) + _round(lam * (u - int(v[i])), cfg.tables.lam_frac, cfg.v.rounding), cfg.v)
        assert got[i] == want


@pytest.mark.parametrize("cfg", CONFIGS, ids=["default", "narrow", "narrow-wrap"])
@pytest.mark.parametrize("nudge", [0, 1, -1])
def test_stage_neuron_input(cfg, nudge):
    rng = np.random.default_rng(2)
    k = cfg.n_layers - 1
    bf, one = cfg.biases[k - 1], 1 << cfg.s.frac
    v = rng.integers(cfg.v.min_code, cfg.v.max_code + 1, 40)
    b = rng.integers(bf.min_code, bf.max_code + 1, 40)
    y, s = rng.integers(0, one + 1, 40), rng.integers(0, one + 1, 40)
    got = datapath.neuron_input(cfg, k, v, b, y, s, nudge, _narrow_np(cfg))
    for i in range(40):
        F = max(cfg.v.frac, bf.frac, cfg.x.frac, cfg.beta_frac + cfg.s.frac if nudge else 0)
        total = (int(v[i]) << (F - cfg.v.frac)) + (int(b[i]) << (F - bf.frac))
        if nudge:
            total += (nudge * cfg.beta2_code * (int(y[i]) - int(s[i]))) << (F - cfg.beta_frac - cfg.s.frac)
        assert got[i] == _narrow(_round(total, F - cfg.x.frac, cfg.x.rounding), cfg.x)


@pytest.mark.parametrize("cfg", CONFIGS, ids=["default", "narrow", "narrow-wrap"])
def test_stage_state_step(cfg):
    rng = np.random.default_rng(3)
    one = 1 << cfg.s.frac
    x = rng.integers(cfg.x.min_code, cfg.x.max_code + 1, 50)
    s = rng.integers(0, one + 1, 50)
    eps = int(cfg.eps_rom.max())
    got = datapath.state_step(cfg, x, s, eps)
    G = max(cfg.x.frac, cfg.s.frac)
    for i in range(50):
        d = (int(x[i]) << (G - cfg.x.frac)) - (int(s[i]) << (G - cfg.s.frac))
        want = int(s[i]) + _round(eps * d, cfg.tables.eps_frac + G - cfg.s.frac, cfg.s.rounding)
        assert got[i] == min(max(want, 0), one)


@pytest.mark.parametrize("cfg", CONFIGS, ids=["default", "narrow", "narrow-wrap"])
def test_stage_predictive_encode_and_sigma_delta(cfg):
    rng = np.random.default_rng(4)
    one = 1 << cfg.s.frac
    s, rho = rng.integers(0, one + 1, 50), rng.integers(0, one + 1, 50)
    phi = rng.integers(cfg.phi.min_code, cfg.phi.max_code + 1, 50)
    il = int(cfg.inv_lam_rom.max())
    a = datapath.predictive_encode(cfg, s, rho, il, _narrow_np(cfg))
    phi2, q = datapath.sigma_delta(cfg, a, phi, _narrow_np(cfg))
    ilf = cfg.tables.inv_lam_frac
    for i in range(50):
        num = (int(rho[i]) << ilf) + il * (int(s[i]) - int(rho[i]))
        want_a = _narrow(_round(num, ilf + cfg.s.frac - cfg.a.frac, cfg.a.rounding), cfg.a)
        assert a[i] == want_a
        wide = _narrow(int(phi[i]) + _round(want_a, cfg.a.frac - cfg.phi.frac, cfg.phi.rounding), cfg.phi)
        spike = int(wide > (1 << (cfg.phi.frac - 1)))
        assert (q[i], phi2[i]) == (spike, wide - (spike << cfg.phi.frac))


@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
def test_stages_weight_update_bias_update_inference_weight(rounding):
    cfg = learning_config((4, 3, 2), lr=(0.4,), rounding=rounding)
    rng = np.random.default_rng(5)
    one = 1 << cfg.s.frac
    s_free = [rng.integers(0, one + 1, n) for n in cfg.layers]
    s_nudged = [rng.integers(0, one + 1, n) for n in cfg.layers]
    lrn = cfg.learning
    for l in range(2):
        fmt = cfg.learn_format(l)
        w = rng.integers(fmt.min_code, fmt.max_code + 1, (cfg.layers[l], cfg.layers[l + 1]))
        D = cfg.update_shift(l)
        draws = rng.integers(0, 1 << lrn.rng_bits, w.shape)
        R = datapath.rounding_offset(cfg, D, draws)
        got = datapath.weight_update(cfg, l, w, s_free, s_nudged, -1, R)
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                am, ap, bm, bp = (int(v) for v in (s_free[l][i], s_nudged[l][i], s_free[l + 1][j], s_nudged[l + 1][j]))
                H = am * (bp - bm) + ((ap - am) * bm if l > 0 else 0)
                r = (1 << (D - 1)) if rounding == "nearest" else (
                    (int(draws[i, j]) << (D - lrn.rng_bits)) + (1 << (D - lrn.rng_bits - 1))
                    if D > lrn.rng_bits else int(draws[i, j]) >> (lrn.rng_bits - D))
                assert got[i, j] == int(w[i, j]) + ((-lrn.rate_mult[l] * H + r) >> D)
        e = lrn.extra_frac
        inf = datapath.inference_weight(cfg, l, w)
        assert inf.tolist() == [[min((int(c) + (1 << (e - 1))) >> e, cfg.weights[l].max_code) for c in row] for row in w]
        b = rng.integers(cfg.biases[l].min_code, cfg.biases[l].max_code + 1, cfg.layers[l + 1])
        Db = cfg.bias_update_shift(l)
        got_b = datapath.bias_update(cfg, l, b, s_free, s_nudged, 1, 1 << (Db - 1))
        assert got_b.tolist() == [int(b[j]) + ((lrn.rate_mult[l] * (int(s_nudged[l + 1][j]) - int(s_free[l + 1][j]))
                                                 + (1 << (Db - 1))) >> Db) for j in range(len(b))]


def test_every_rtl_stage_is_the_twin_of_a_model_stage():
    """rtl/neuron.py and rtl/learning.py name their stage functions as the model does and carry
    the same formula (the accumulate stage is the layer core's loop, rtl/layer.py)."""
    import rtl.learning
    import rtl.neuron
    rtl_stages = {f.datapath_stage: f for mod in (rtl.neuron, rtl.learning) for f in vars(mod).values()
                  if callable(f) and getattr(f, "datapath_stage", None)}
    assert set(rtl_stages) == set(STAGES[1:]) | {"inference_weight"}
    for name, fn in rtl_stages.items():
        assert fn.__name__ == name and fn.__doc__.startswith(FORMULAS[name])
        assert getattr(datapath, name).datapath_stage == name
