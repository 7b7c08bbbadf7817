"""rtl.neuron datapaths == FixedModel.tick on random register states (every code range, any tick)."""

import gc
import warnings

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from golden_model.config import Schedule, default_config, narrow_config, wide_config
from golden_model.fixed_model import FixedModel
from rtl.neuron import Encoder, StateUpdate


def random_state(cfg, rng, batch):
    """A model, a random mid-sample state (registers anywhere in range) and its tick index."""
    w = [rng.integers(f.min_code, f.max_code + 1, size=(a, b))
         for f, a, b in zip(cfg.weights, cfg.layers[:-1], cfg.layers[1:])]
    b = [rng.integers(f.min_code, f.max_code + 1, size=n) for f, n in zip(cfg.biases, cfg.layers[1:])]
    model = FixedModel(cfg, w, b)
    one = 1 << cfg.s.frac
    st = model.reset(rng.integers(0, one + 1, size=(batch, cfg.layers[0])),
                     rng.integers(0, one + 1, size=(batch, cfg.layers[-1])))
    rnd = lambda f, n: rng.integers(f.min_code, f.max_code + 1, size=(batch, n))
    for l, n in enumerate(cfg.layers):
        if l:
            st.s[l] = rng.integers(0, one + 1, size=(batch, n))
            st.v[l] = rnd(cfg.v, n)
        st.rho_last[l] = rng.integers(0, one + 1, size=(batch, n))
        st.phi[l] = rng.integers(-(1 << (cfg.phi.frac - 1)), (1 << (cfg.phi.frac - 1)) + 1, size=(batch, n))
        st.q[l] = rng.integers(0, 2, size=(batch, n))
    st.t = int(rng.integers(0, cfg.n_steps))
    return model, st


def run_comb(dut, vectors, outputs):
    """Apply each dict of input values to a combinational component, collect output values."""
    m = Module()
    m.submodules.dut = dut
    sim = Simulator(m)
    got = []

    async def tb(ctx):
        for vec in vectors:
            for name, value in vec.items():
                ctx.set(getattr(dut, name), int(value))
            got.append({name: ctx.get(getattr(dut, name)) for name in outputs})

    sim.add_testbench(tb)
    sim.run()
    return got


CONFIGS = {
    "default": default_config((16, 12, 4)),
    "narrow": narrow_config((16, 12, 4)),
    "wide": wide_config((8, 6, 3)),
    "constant-no-predictive": default_config((16, 12, 4)).replace(eps=Schedule.constant(0.5),
                                                                  lam=Schedule.constant(1.0)),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("sign", [0, 1, -1])
@pytest.mark.parametrize("dsp", [None, 16])
def test_state_update_and_encoder_match_model(name, sign, dsp):
    """dsp=16: products mapped for iCE40 MAC16s (the cores' ``dsp_width``), same integers."""
    _check_state_update_and_encoder(name, sign, dsp)


def _check_state_update_and_encoder(name, sign, dsp):
    cfg = CONFIGS[name]
    rng = np.random.default_rng(len(name) * 7 + sign)
    k = cfg.n_layers - 1
    checked = 0
    for _ in range(3):
        model, st = random_state(cfg, rng, batch=6)
        old = st.copy()
        model.tick(st, sign)
        t = st.t - 1
        roms = {"eps": cfg.eps_rom[t], "lam": cfg.lam_rom[t], "inv_lam": cfg.inv_lam_rom[t]}
        for l in range(1, k + 1):
            dut = StateUpdate(cfg, l, dsp=dsp)
            vecs, want = [], []
            for bi in range(old.s[l].shape[0]):
                for n in range(cfg.layers[l]):
                    vec = {"acc": st.acc[l][bi, n], "v": old.v[l][bi, n], "s": old.s[l][bi, n],
                           "b": model.biases[l - 1][n], "eps": roms["eps"], "lam": roms["lam"]}
                    if l == k:
                        vec.update(y=old.y[bi, n], nudge=sign)
                    vecs.append(vec)
                    want.append({"v_next": st.v[l][bi, n], "x_next": st.x[l][bi, n], "s_next": st.s[l][bi, n]})
            assert run_comb(dut, vecs, ("v_next", "x_next", "s_next")) == want
            checked += len(vecs)
        for l in range(k + 1):
            dut = Encoder(cfg, dsp=dsp)
            vecs, want = [], []
            for bi in range(old.s[l].shape[0]):
                for n in range(cfg.layers[l]):
                    vecs.append({"s": st.s[l][bi, n], "rho_last": old.rho_last[l][bi, n],
                                 "phi": old.phi[l][bi, n], "inv_lam": roms["inv_lam"]})
                    want.append({"a_next": st.a[l][bi, n], "rho_last_next": st.rho_last[l][bi, n],
                                 "phi_next": st.phi[l][bi, n], "q": st.q[l][bi, n]})
            assert run_comb(dut, vecs, ("a_next", "rho_last_next", "phi_next", "q")) == want
    assert checked > 0
    if name == "narrow":
        assert sum(model.overflows.values()) > 0


def test_output_layer_alone_has_target_and_nudge_ports():
    cfg = default_config((20, 8, 8, 3))
    with warnings.catch_warnings():     # the components are inspected, never elaborated
        warnings.simplefilter("ignore")
        out, hidden = StateUpdate(cfg, 3), StateUpdate(cfg, 2)
        assert "y" in out.signature.members and "nudge" in out.signature.members
        assert "nudge" not in hidden.signature.members and "y" not in hidden.signature.members
        with pytest.raises(ValueError):
            StateUpdate(cfg, 0)
        del out, hidden
        gc.collect()
