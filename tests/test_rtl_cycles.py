"""Cycle budget: the documented formulas (rtl.network.tick_cycles) == simulation, tick by tick,
and the accumulate loop's synaptic operations per cycle on the digits network."""

import pytest

from golden_model.config import default_config
from rtl.layer import chunks
from rtl.network import accumulate_cycles, events_per_layer, tick_cycles, update_cycles
from sim.rtl_harness import RTLHarness, digits_network, random_network


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
        assert p["issues"] == [ev[l] * chunks(cfg, l) if l else 0 for l in range(cfg.n_layers)]
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
            busiest = max(range(1, cfg.n_layers), key=lambda l: ev[l] * chunks(cfg, l))
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
