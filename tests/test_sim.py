"""sim/ helpers that need no simulator: command packing, scoreboard reports, spike
monitor bookkeeping, build cache keys, random stimulus."""

import numpy as np
import pytest
from amaranth.hdl import Const

from golden_model.config import default_config
from rtl.network import Op, Phase, Space, command_layout
from sim.driver import CommandPacker
from sim.monitor import SpikeMonitor
from sim.runner import SIMULATORS, _variant_name, require_simulator
from sim.scoreboard import DATAFLOW_ORDER, Mismatch, Scoreboard
from sim.stimulus import random_config, random_narrow_config, random_network, random_samples


@pytest.mark.parametrize("layers", [(64, 100, 10), (20, 8, 8, 3), (3, 2, 1)])
def test_command_packer_matches_amaranth_layout(layers):
    cfg = default_config(layers)
    packer = CommandPacker(cfg)
    layout = command_layout(cfg)
    fields = {"op": Op.RUN, "space": Space.STATE, "layer": cfg.n_layers - 1, "reg": 5, "phase": Phase.NUDGE_NEG,
              "row": max(layers) - 1, "col": 1, "data": -3}
    want = Const.cast(layout.const(fields)).value
    assert packer.pack(**fields) == want
    assert packer.width == layout.size
    with pytest.raises(ValueError, match="does not fit"):
        packer.pack(row=1 << 20)


def _network(seed=3):
    rng = np.random.default_rng(seed)
    cfg = random_config(rng, (10, 7, 4))
    model = random_network(cfg, rng)
    x, y = random_samples(cfg, rng, 1)
    return cfg, model, x[0], y[0]


def test_scoreboard_accepts_the_golden_model_and_names_the_first_difference():
    cfg, model, x, y = _network()
    sb = Scoreboard(cfg, model)
    ref = Scoreboard(cfg, model.__class__(cfg, model.weights, model.biases))
    sb.start(x, y, sample=4)
    ref.start(x, y)
    for t in range(5):
        ref.step(0)
        regs = [{k: v[0].copy() for k, v in ref.st.registers(l).items()} for l in range(cfg.n_layers)]
        spikes = [q[0].copy() for q in ref.st.q]
        if t == 4:
            regs[1]["v"][2] += 1          # a register one LSB off
            regs[1]["s"][0] += 1          # and a later register of the dataflow
        try:
            sb.check_tick(0, spikes, regs)
        except Mismatch as e:
            assert t == 4
            assert (e.sample, e.tick, e.layer, e.neuron, e.register) == (4, 5, 1, 2, "v")
            assert e.got == e.expected + 1
            assert "first mismatch: sample 4 tick 5 layer 1 neuron 2 register v" in str(e)
            break
    else:
        pytest.fail("the corrupted register was not reported")
    assert sb.checked_registers > 0 and sb.checked_spikes > 0
    assert DATAFLOW_ORDER.index("v") < DATAFLOW_ORDER.index("s")


def test_scoreboard_float_bound():
    cfg, model, x, y = _network()
    sb = Scoreboard(cfg, model, float_bound=0.0)
    sb.start(x, y)
    with pytest.raises(AssertionError, match="exceeds the bound"):
        for _ in range(cfg.n_free):
            sb.step(0)
            sb.compare_float()


class _FakeDut:
    pass


def test_spike_monitor_orders_and_bounds_events():
    cfg = default_config((4, 3, 2))
    mon = SpikeMonitor(_FakeDut(), cfg)
    for ev in [(1, 0, 0), (1, 0, 3), (1, 2, 1), (2, 1, 2)]:
        mon.events.append(ev)
        mon._by_tick[ev[0]].append(ev)
    s1 = mon.spikes(1)
    assert [list(a) for a in s1] == [[1, 0, 0, 1], [0, 0, 0], [0, 1]]
    assert [list(a) for a in mon.spikes(3)] == [[0] * 4, [0] * 3, [0] * 2]
    mon._by_tick[2].append((2, 1, 2))
    with pytest.raises(AssertionError, match="address order"):
        mon.spikes(2)
    mon.forget()
    assert mon.events == [] and mon.spikes(1)[0].sum() == 0


def test_runner_names_and_errors():
    assert SIMULATORS == ("verilator", "icarus")
    assert _variant_name(None, None) == "plain"
    assert _variant_name("floor", 7) == "fault-floor+stall-7"
    with pytest.raises(ValueError, match="simulator must be one of"):
        require_simulator("xsim")


def test_random_stimulus_is_seeded_and_in_range():
    for seed in range(20):
        a = random_config(np.random.default_rng(seed))
        assert a == random_config(np.random.default_rng(seed))
        n = random_narrow_config(np.random.default_rng(seed))
        m = random_network(n, np.random.default_rng(seed), full_range=True)
        assert all(w.shape == (i, o) for w, i, o in zip(m.weights, n.layers[:-1], n.layers[1:]))
    x, y = random_samples(a, np.random.default_rng(0), 5)
    assert x.min() >= 0 and x.max() <= 1 << a.s.frac and (y.sum(axis=1) == 1 << a.s.frac).all()
