"""Cycle budget: the documented formulas (rtl.network.tick_cycles) == simulation, tick by tick,
and the accumulate loop's synaptic operations per cycle on the digits network."""

import numpy as np
import pytest

from golden_model.config import Schedule, default_config
from golden_model.fixed_model import FixedModel
from golden_model.config import ConfigError
from rtl.network import accumulate_cycles, events_per_layer, group_stalls, tick_cycles, update_cycles
from sim.rtl_harness import RTLHarness, diff_registers, digits_network, random_network


def profile(cfg, model, x, y, ticks, backdoor=False, bus_stall=None):
    """Per tick: the model's spike counts of the previous tick, this tick's spikes (0/1 per
    neuron and layer) and the RTL counter increments."""
    st = model.reset(x[None], y[None])
    h = RTLHarness(cfg, bus_stall=bus_stall)

    async def body(h):
        if backdoor:
            h.load_backdoor(model)
        else:
            await h.load(model)
        await h.reset(x, y)
        rows = []
        for _ in range(ticks):
            prev = [int(q.sum()) for q in st.q]
            model.tick(st)
            rows.append((prev, [q[0].copy() for q in st.q], await h.tick_profile()))
        return rows

    return h.run(body)


@pytest.mark.parametrize("layers,lanes,update_lanes,mul_stages", [
    ((16, 12, 4), 1, 1, 1), ((20, 8, 8, 3), 3, 1, 1), ((16, 12, 4), 5, 1, 1), ((16, 12, 4), 16, 1, 1),
    ((16, 12, 4), 4, 4, 1),            # groups of 4: 16, 12, 4 neurons (divides every layer)
    ((13, 7, 5), 6, 3, 1),             # divides no layer: partial last groups
    ((20, 8, 8, 3), 2, 2, 1), ((9, 11, 2), 5, 5, 1),
    ((16, 12, 4), 5, 1, 2), ((13, 7, 5), 6, 3, 3), ((9, 11, 2), 5, 5, 3),   # pipelined multiplies
    ((16, 12, 4), 4, (4, 2, 1), 1), ((13, 7, 5), 6, (1, 3, 6), 3),          # one U per core
    ((20, 8, 8, 3), 6, (3, 1, 2, 6), 2),
])
def test_tick_cycles_formula_matches_simulation(layers, lanes, update_lanes, mul_stages):
    cfg = default_config(layers).replace(lanes=lanes, update_lanes=update_lanes, mul_stages=mul_stages,
                                         n_free=10, n_nudged=0)
    model, x, y = random_network(cfg, seed=31)
    rows = profile(cfg, model, x, y, ticks=10)
    assert sum(sum(prev) for prev, _, _ in rows) > 0
    stalls = 0
    for prev, now, p in rows:
        ev = events_per_layer(cfg, prev)
        assert p["acc_cycles"] == accumulate_cycles(cfg, prev)
        assert p["upd_cycles"] == update_cycles(cfg, now)
        assert p["cycles"] == tick_cycles(cfg, prev, now)
        assert p["events"] == ev
        assert p["issues"] == [ev[l] * cfg.chunks(l) if l else 0 for l in range(cfg.n_layers)]
        assert p["spikes"] == [int(q.sum()) for q in now]
        stalls += sum(group_stalls(cfg, l, q) for l, q in enumerate(now))
    # with groups of several neurons, ticks where a group sends two or more spikes occur
    assert (stalls > 0) == cfg.parallel_update


def test_update_cycles_needs_the_spikes_with_update_lanes():
    cfg = default_config((8, 6, 2)).replace(lanes=4, update_lanes=2)
    assert update_cycles(cfg.replace(update_lanes=1)) == max(8 + 5, 6 + 8, 2 + 8)
    with pytest.raises(ValueError, match="spikes_now"):
        update_cycles(cfg)
    q = [np.array([1, 1, 1, 0, 0, 0, 1, 1]), np.array([1, 1, 0, 1, 1, 1]), np.array([1, 1])]
    # the spike queue sends one spike per cycle from the cycle after a group's push:
    # input: groups (1,1) (1,0) (0,0) (1,1) pushed at 0, 1, -, 3 send in 1-2, 3, 4-5: 5 - 3 = 2
    # extra; hidden: (1,1) (0,1) (1,1) at 0, 1, 2 send in 1-2, 3, 4-5: 5 - 2 = 3; output (1,1): 2
    assert [group_stalls(cfg, l, q[l]) for l in range(3)] == [2, 3, 2]
    assert update_cycles(cfg, q) == max(4 + 2 + 5, 3 + 3 + 8, 1 + 2 + 8)


def test_update_lanes_per_layer_config():
    """``update_lanes`` one per layer: groups per core, JSON round trip, one-line errors for a
    wrong count, a value dividing no lane count, and per-layer values in a learning build."""
    from golden_model.config import Learning
    cfg = default_config((784, 500, 10)).replace(lanes=500, update_lanes=[10, 5, 1])
    assert cfg.update_lanes == (10, 5, 1) and [cfg.groups(l) for l in range(3)] == [79, 100, 10]
    assert cfg.stored_lanes(2) == 10 and cfg.parallel_update and "10/5/1 update lanes" in cfg.summary()
    assert type(cfg).from_json(cfg.to_json()) == cfg
    assert not cfg.replace(update_lanes=(1, 1, 1)).parallel_update
    with pytest.raises(ConfigError, match=r"one per layer \(3\), not 2"):
        cfg.replace(update_lanes=(10, 5))
    with pytest.raises(ConfigError, match=r"update_lanes\[1\] must divide lanes \(500\), not 3"):
        cfg.replace(update_lanes=(10, 3, 1))
    with pytest.raises(ConfigError, match="one value for every layer with on-chip learning"):
        default_config((8, 6, 2)).replace(lanes=4, update_lanes=(2, 4, 1), learning=Learning(rate_mult=(1, 1), rate_shift=(4, 4)))
    assert default_config((8, 6, 2)).replace(lanes=4, update_lanes=(2, 2, 2), learning=Learning(rate_mult=(1, 1), rate_shift=(4, 4))).groups(1) == 3


def test_update_lanes_must_divide_lanes():
    with pytest.raises(ConfigError, match="update_lanes must divide lanes"):
        default_config((8, 6, 2)).replace(lanes=4, update_lanes=3)
    cfg = default_config((8, 6, 2)).replace(lanes=6, update_lanes=3)
    assert cfg.groups(0) == 3 and cfg.groups(1) == 2 and cfg.groups(2) == 1
    assert type(cfg).from_json(cfg.to_json()) == cfg


def test_digits_accumulate_reaches_sop_target():
    """64-100-10 on a real digit, 10 lanes: >= 0.9 x lanes synaptic operations per accumulate cycle."""
    cfg = default_config((64, 100, 10)).replace(lanes=10)
    model, x, y = digits_network(cfg)
    rows = profile(cfg, model, x, y, ticks=8, backdoor=True)
    sops = cycles = 0
    for prev, _, p in rows:
        assert p["cycles"] == tick_cycles(cfg, prev)
        if sum(prev):
            ev = events_per_layer(cfg, prev)
            tick_sops = sum(ev[l] * cfg.layers[l] for l in range(1, cfg.n_layers))
            # the busiest core alone keeps its lanes >= 90 % busy over the whole phase
            busiest = max(range(1, cfg.n_layers), key=lambda l: ev[l] * cfg.chunks(l))
            assert ev[busiest] * cfg.layers[busiest] / p["acc_cycles"] >= 0.9 * cfg.lanes
            sops += tick_sops
            cycles += p["acc_cycles"]
    assert cycles > 0 and sops / cycles >= 0.9 * cfg.lanes


def test_backdoor_weight_layout_equals_host_writes():
    cfg = default_config((12, 7, 5)).replace(lanes=3, n_free=4, n_nudged=0)
    model, x, y = random_network(cfg, seed=41)
    h = RTLHarness(cfg)

    async def body(h):
        await h.load(model)
        bad = []
        for (l, name), words in h.weight_words(model).items():
            mem, first = h.dut.cores[l].weight_memory(name)     # W_l^T may be stacked in w_below
            got = [int(h.ctx.get(mem.data[first + a])) for a in range(len(words))]
            if got != words:
                bad.append((l, name))
        return bad

    assert h.run(body) == []


def test_silent_ticks_take_one_accumulate_cycle_and_stay_exact():
    """After a tick without spikes the accumulate phase is 1 cycle, so the next update pass
    starts 2 cycles after the tick counter moved: the schedule ROM words (re-registered) must
    already be this tick's. One RUN of back-to-back ticks, then every register compared."""
    cfg = default_config((2, 3, 2)).replace(n_free=30, n_nudged=0, lanes=2, eps=Schedule.power(0.9, 0.4))
    w = [np.array([[10, -5, 7], [3, 2, -8]]), np.array([[20, -11], [6, 9], [-4, 15]])]
    b = [np.array([600, 300, -200]), np.array([-100, 250])]      # slow spiking from the biases alone
    model = FixedModel(cfg, w, b)
    x = np.zeros(2, dtype=np.int64)                               # silent input layer
    st = model.reset(x[None])
    prevs = []
    for _ in range(cfg.n_free):
        prevs.append([int(q.sum()) for q in st.q])
        model.tick(st)
    silent = [t for t, p in enumerate(prevs) if t > 0 and accumulate_cycles(cfg, p) == 1]
    assert silent and any(sum(p) for p in prevs), "the test needs silent ticks between active ones"
    h = RTLHarness(cfg)

    async def body(h):
        await h.load(model)
        await h.reset(x)
        assert await h.run_ticks(cfg.n_free) == cfg.n_free
        return diff_registers(h.registers(), st), await h.status("cycles")

    bad, cycles = h.run(body)
    assert bad == []
    assert cycles == sum(tick_cycles(cfg, p) for p in prevs)


def test_spike_queue_waits_match_simulation():
    """Inputs at their maximum make the input core's groups of 4 carry several spikes each:
    its spike queue (``rtl.layer.SPIKE_QUEUE_DEPTH``) fills and the pipeline waits for it;
    the formula still equals the simulation, tick by tick."""
    from rtl.network import spike_queue_pass
    cfg = default_config((32, 8, 4)).replace(lanes=4, update_lanes=4, n_free=8, n_nudged=0)
    model, x, y = random_network(cfg, seed=5)
    x = np.full_like(x, x.max())
    rows = profile(cfg, model, x, y, ticks=8)
    waits = 0
    for prev, now, p in rows:
        assert p["upd_cycles"] == update_cycles(cfg, now)
        assert p["cycles"] == tick_cycles(cfg, prev, now)
        waits += spike_queue_pass(now[0].reshape(-1, 4).sum(axis=1))[1]
    assert waits > 0
