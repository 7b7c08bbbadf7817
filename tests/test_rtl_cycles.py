"""Cycle budget: the documented formulas (rtl.network.tick_cycles) == simulation, tick by tick,
and the accumulate loop's synaptic operations per cycle on the digits network."""

import numpy as np
import pytest

from golden_model.config import Schedule, default_config
from golden_model.fixed_model import FixedModel
from rtl.network import accumulate_cycles, events_per_layer, tick_cycles, update_cycles
from sim.rtl_harness import RTLHarness, diff_registers, digits_network, random_network


def profile(cfg, model, x, y, ticks, backdoor=False, bus_stall=None):
    """Per tick: the model's spike counts of the previous tick and the RTL counter increments."""
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
            rows.append((prev, [int(q.sum()) for q in st.q], await h.tick_profile()))
        return rows

    return h.run(body)


@pytest.mark.parametrize("layers,lanes", [((16, 12, 4), 1), ((20, 8, 8, 3), 3), ((16, 12, 4), 5),
                                          ((16, 12, 4), 16)])
def test_tick_cycles_formula_matches_simulation(layers, lanes):
    cfg = default_config(layers).replace(lanes=lanes, n_free=10, n_nudged=0)
    model, x, y = random_network(cfg, seed=31)
    rows = profile(cfg, model, x, y, ticks=10)
    assert sum(sum(prev) for prev, _, _ in rows) > 0
    for prev, now, p in rows:
        ev = events_per_layer(cfg, prev)
        assert p["acc_cycles"] == accumulate_cycles(cfg, prev)
        assert p["upd_cycles"] == update_cycles(cfg)
        assert p["cycles"] == tick_cycles(cfg, prev)
        assert p["events"] == ev
        assert p["issues"] == [ev[l] * cfg.chunks(l) if l else 0 for l in range(cfg.n_layers)]
        assert p["spikes"] == now


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
            mem = getattr(h.dut.cores[l], name)
            got = [int(h.ctx.get(mem.data[a])) for a in range(len(words))]
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
