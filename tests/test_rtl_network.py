"""RTL network vs fixed-point golden model, tick by tick, in Amaranth's simulator.

Compares every spike and every per-neuron register (acc, v, x, s, a, rho_last, phi, q) of
every layer with ``==`` after every RUN (mostly single ticks, see RUN_PATTERN); also the
overflow counters against the model's.
"""

import numpy as np
import pytest
from amaranth.hdl import Shape

from golden_model.config import RegFormat, Schedule, default_config, narrow_config
from rtl.layer import host_data_width
from rtl.network import Op, Space, command_layout
from sim.rtl_harness import RTLHarness, diff_registers, random_network


#: Ticks per RUN command, cycled: mostly single ticks (compared after each), and runs of
#: back-to-back ticks (compared at their end) so tick-to-tick transitions inside one RUN are
#: covered too.
RUN_PATTERN = (1, 1, 3, 1, 2, 4)


def compare(cfg, seed=0, nudge_sign=1, fault=None, bus_stall=None, full_range=False, stop_at_first=False):
    """Run free then nudged phase on model and RTL; returns (mismatches, model, totals)."""
    model, x, y = random_network(cfg, seed, full_range=full_range)
    st = model.reset(x[None], y[None])
    h = RTLHarness(cfg, fault=fault, bus_stall=bus_stall)

    async def body(h):
        await h.load(model)
        await h.reset(x, y)
        bad, spikes, done, i = [], 0, 0, 0
        while done < cfg.n_steps:
            sign = 0 if done < cfg.n_free else nudge_sign
            phase_end = cfg.n_free if done < cfg.n_free else cfg.n_steps
            n = min(RUN_PATTERN[i % len(RUN_PATTERN)], phase_end - done)
            i += 1
            for _ in range(n):
                q_model = model.tick(st, sign)
                spikes += sum(int(q.sum()) for q in q_model)
            assert await h.run_ticks(n, sign) == done + n
            done += n
            regs = h.registers()
            for l, qm in enumerate(q_model):
                if not np.array_equal(qm[0], regs[l]["q"]):
                    bad.append(f"tick {st.t} layer {l} spikes differ")
            bad += diff_registers(regs, st)
            if bad and stop_at_first:
                break
        rtl_ovf = sum([await h.status("overflows", l) for l in range(cfg.n_layers)])
        ticks = await h.status("tick")
        cycles = await h.status("cycles")
        return bad, {"spikes": spikes, "rtl_overflows": rtl_ovf, "ticks": ticks, "cycles": cycles}

    bad, totals = h.run(body)
    return bad, model, totals


CASES = {
    # name: (config, seed, nudge sign, bus_stall)
    "16-12-4-default-lanes1": (default_config((16, 12, 4)).replace(n_free=16, n_nudged=8), 1, +1, None),
    "20-8-8-3-default-lanes3": (default_config((20, 8, 8, 3)).replace(n_free=16, n_nudged=8, lanes=3), 2, -1, None),
    "16-12-4-lanes4-divides": (default_config((16, 12, 4)).replace(n_free=12, n_nudged=6, lanes=4), 3, -1, None),
    "20-8-8-3-lanes16-wider-than-layers": (default_config((20, 8, 8, 3)).replace(n_free=12, n_nudged=6, lanes=16),
                                           4, +1, None),
    "16-12-4-constant-schedules": (default_config((16, 12, 4)).replace(
        n_free=14, n_nudged=6, eps=Schedule.constant(0.5), lam=Schedule.constant(0.4), lanes=5), 5, +1, None),
    "16-12-4-no-predictive-power-eps": (default_config((16, 12, 4)).replace(
        n_free=14, n_nudged=6, eps=Schedule.power(0.9, 0.5), lam=Schedule.constant(1.0), lanes=2), 6, -1, None),
    "5-3-1-single-output-neuron": (default_config((5, 3, 1)).replace(n_free=10, n_nudged=5, lanes=2),
                                   9, +1, None),
    "20-8-8-3-bus-stalls": (default_config((20, 8, 8, 3)).replace(n_free=12, n_nudged=6, lanes=2), 7, +1, 0x1D3),
    # W0, W1 one format (core 1 stacks W1^T under W0), W2 another (core 2 keeps w_above)
    "20-8-8-3-mixed-weight-formats": (default_config((20, 8, 8, 3)).replace(
        n_free=12, n_nudged=6, lanes=3, update_lanes=3,
        weights=(RegFormat(8, 6), RegFormat(8, 6), RegFormat(7, 5))), 10, -1, 0x2B7),
}


def test_mixed_weight_formats_case_stacks_one_core_only():
    cfg = CASES["20-8-8-3-mixed-weight-formats"][0]
    assert [cfg.weights_stacked(l) for l in range(4)] == [False, True, False, False]


@pytest.mark.parametrize("name", sorted(CASES))
def test_rtl_matches_model(name):
    cfg, seed, sign, stall = CASES[name]
    bad, model, totals = compare(cfg, seed, sign, bus_stall=stall)
    assert bad == []
    assert totals["ticks"] == cfg.n_steps
    assert totals["spikes"] > 0          # the comparison saw real traffic
    assert totals["rtl_overflows"] == sum(model.overflows.values())


@pytest.mark.parametrize("layers,lanes,stall", [((16, 12, 4), 1, None), ((20, 8, 8, 3), 3, 0xBEE)])
def test_rtl_matches_model_narrow_saturating(layers, lanes, stall):
    cfg = narrow_config(layers).replace(lanes=lanes)
    bad, model, totals = compare(cfg, seed=11, nudge_sign=-1, bus_stall=stall, full_range=True)
    assert bad == []
    assert sum(model.overflows.values()) > 0, "the narrow config must reach saturation"
    assert totals["rtl_overflows"] == sum(model.overflows.values())


def test_bus_stalls_cost_cycles_not_results():
    """Random idle/backpressure on every bus link: same registers every tick, more cycles."""
    cfg = default_config((20, 8, 8, 3)).replace(n_free=8, n_nudged=2, lanes=2)
    bad_free, _, plain = compare(cfg, seed=8)
    bad_stall, _, stalled = compare(cfg, seed=8, bus_stall=0x5EED)
    assert bad_free == [] and bad_stall == []
    assert stalled["spikes"] == plain["spikes"] > 0
    assert stalled["cycles"] > plain["cycles"]


def test_rtl_matches_model_wrap_and_floor_formats():
    """Registers declared wrap / floor in the config: the RTL follows the declaration."""
    base = narrow_config((16, 12, 4))
    cfg = base.replace(v=RegFormat(7, 4, overflow="wrap"), phi=RegFormat(5, 3, overflow="wrap", rounding="floor"),
                       a=RegFormat(5, 3, rounding="floor"), lanes=3)
    bad, model, totals = compare(cfg, seed=12, nudge_sign=1, full_range=True)
    assert bad == []
    assert model.overflows["v"] > 0 and model.overflows["phi"] > 0


@pytest.mark.parametrize("fault,cfg", [
    ("wrap", narrow_config((16, 12, 4))),                                   # wraps where it must saturate
    ("floor", default_config((16, 12, 4)).replace(n_free=16, n_nudged=4)),  # floors where it must round half up
])
def test_broken_rtl_is_caught(fault, cfg):
    bad, _, _ = compare(cfg, seed=13, fault=fault, full_range=fault == "wrap", stop_at_first=True)
    assert bad, f"an RTL built with fault={fault!r} must not match the model"


async def _read_state_after(h, model, x, y, ticks, neurons):
    """Load ``model``, run ``ticks`` ticks of sample ``(x, y)``, then READ STATE every register of
    the ``neurons(l)`` of each layer and assert it equals the backdoor value."""
    await h.load(model)
    await h.reset(x, y)
    assert await h.run_ticks(ticks) == ticks
    regs = h.registers()
    for l in range(len(regs)):
        for name in regs[l]:
            for n in neurons(l):
                assert await h.read_reg(l, name, n) == regs[l][name][n], (l, name, n)


def test_host_reads_match_backdoor_and_reset_starts_a_new_sample():
    """READ STATE == backdoor, parameter read-back, RUN stops at n_steps, RESET = fresh sample."""
    cfg = default_config((16, 12, 4)).replace(n_free=10, n_nudged=4, lanes=2)
    model, x, y = random_network(cfg, 21)
    _, x2, y2 = random_network(cfg, 22)
    h = RTLHarness(cfg)

    async def body(h):
        await _read_state_after(h, model, x, y, 7, lambda l: (0, cfg.layers[l] - 1))
        # parameters read back as written (weights through core l+1's row copy)
        for mat, w in enumerate(model.weights):
            for j, kk in ((0, 0), (w.shape[0] - 1, w.shape[1] - 1), (1, w.shape[1] // 2)):
                assert await h.read_param("weight", mat, j, kk) == w[j, kk]
        for l, b in enumerate(model.biases, start=1):
            assert await h.read_param("bias", l, b.shape[0] - 1) == b[-1]
        assert await h.read_param("input", 0, 3) == x[3]
        assert [await h.read_param("target", 0, n) for n in range(cfg.layers[-1])] == list(y)
        # a RUN past the schedule stops at n_steps
        assert await h.run_ticks(100, 1) == cfg.n_steps
        assert await h.status("tick") == cfg.n_steps
        # second sample after RESET: must equal a fresh model run (no leftover state or spikes)
        st2 = model.reset(x2[None], y2[None])
        await h.reset(x2, y2)
        assert await h.status("tick") == 0
        model.run(st2, 5)
        assert await h.run_ticks(5) == 5
        return diff_registers(h.registers(), st2)

    assert h.run(body) == []


def test_command_layout_is_built_from_config():
    cfg = default_config((20, 8, 8, 3))
    layout = command_layout(cfg)
    widths = {name: Shape.cast(field.shape).width for name, field in layout}
    assert layout.size == sum(widths.values())
    assert widths["row"] == widths["col"] == 5          # 20 neurons in the largest layer
    assert widths["layer"] == 2                           # 4 layers
    assert widths["data"] == host_data_width(cfg) >= max(cfg.acc_format(l).width for l in (1, 2, 3))
    assert Op.RUN.value == 3 and Space.STATUS.value == 5


@pytest.mark.parametrize("seed", [101, 102, 103, 104, 105])
def test_rtl_matches_model_random_topologies(seed):
    """Random depth (2-4 layers), sizes 1-13, lanes 1-6, default or narrow formats, stalls or not.

    These seeds give (13, 10), (3, 8, 8), (5, 1, 3), (11, 5, 9, 4), (9, 13): two-layer networks,
    a one-neuron hidden layer, lanes wider than a layer."""
    rng = np.random.default_rng(seed)
    layers = tuple(int(n) for n in rng.integers(1, 14, size=int(rng.integers(2, 5))))
    layers = (max(layers[0], 2),) + layers[1:]
    narrow = bool(rng.integers(2))
    base = narrow_config(layers) if narrow else default_config(layers)
    cfg = base.replace(lanes=int(rng.integers(1, 7)), n_free=int(rng.integers(4, 12)),
                       n_nudged=int(rng.integers(0, 6)))
    stall = int(rng.integers(1, 65535)) if rng.integers(2) else None
    bad, model, totals = compare(cfg, seed, nudge_sign=int(rng.choice([-1, 1])), bus_stall=stall, full_range=narrow)
    assert bad == [], (layers, cfg.lanes, narrow, stall)
    assert totals["ticks"] == cfg.n_steps
    assert totals["rtl_overflows"] == sum(model.overflows.values())


def test_network_for_small_fpgas_matches_model():
    """``Network(counters=False, dsp_width=16)`` (the iCE40 build: products split for MAC16s,
    constant multiplies as shifts and adds): same registers; counters read 0, TICK counts."""
    from rtl.network import Network
    cfg = default_config((16, 12, 4)).replace(n_free=8, n_nudged=4, lanes=3)
    model, x, y = random_network(cfg, 31, full_range=True)
    st = model.reset(x[None], y[None])
    h = RTLHarness(cfg)
    h.dut = Network(cfg, counters=False, dsp_width=16)

    async def body(h):
        await h.load(model)
        await h.reset(x, y)
        for t in range(cfg.n_steps):
            model.tick(st, 0 if t < cfg.n_free else -1)
        assert await h.run_ticks(cfg.n_free) == cfg.n_free
        assert await h.run_ticks(cfg.n_nudged, -1) == cfg.n_steps
        assert await h.status("tick") == cfg.n_steps
        assert [await h.status(name) for name in ("cycles", "acc_cycles", "upd_cycles")] == [0, 0, 0]
        assert [await h.status(name, 1) for name in ("issues", "events", "spikes", "overflows")] == [0, 0, 0, 0]
        return diff_registers(h.registers(), st)

    assert h.run(body) == []


def _divisors(n: int) -> list:
    return [d for d in range(1, n + 1) if n % d == 0]


def random_parallel_design(rng):
    """``(layers, lanes, U, narrow, base config)`` drawn from ``rng`` (in this order): 2-4 layers
    of 1-13 neurons, 1-6 lanes, U a divisor of the lanes, default or narrow formats."""
    layers = tuple(int(n) for n in rng.integers(1, 14, size=int(rng.integers(2, 5))))
    layers = (max(layers[0], 2),) + layers[1:]
    lanes = int(rng.integers(1, 7))
    U = int(rng.choice(_divisors(lanes)))
    narrow = bool(rng.integers(2))
    return layers, lanes, U, narrow, (narrow_config(layers) if narrow else default_config(layers))


@pytest.mark.parametrize("seed", [201, 202, 203, 204, 205, 206, 209])
def test_parallel_update_matches_model_random(seed):
    """Random ``update_lanes`` U (a divisor of a random ``lanes``: 1, values that divide no layer,
    U = lanes) on random topologies and formats, bus stalls or not: every register every RUN.

    These seeds draw layers/lanes/U (13, 2)/4/4, (5, 6)/3/1 narrow, (11, 13)/3/3,
    (7, 12, 11, 3)/4/2, (12, 7, 3)/3/3 narrow, (12, 10, 6)/2/2, (4, 8, 8, 6)/5/5: partial last
    groups, a group wider than a layer, four layers."""
    rng = np.random.default_rng(seed)
    layers, lanes, U, narrow, base = random_parallel_design(rng)
    cfg = base.replace(lanes=lanes, update_lanes=U, n_free=int(rng.integers(4, 12)), n_nudged=int(rng.integers(1, 6)))
    stall = int(rng.integers(1, 65535)) if rng.integers(2) else None
    bad, model, totals = compare(cfg, seed, nudge_sign=int(rng.choice([-1, 1])), bus_stall=stall, full_range=narrow)
    assert bad == [], (layers, lanes, U, narrow, stall)
    assert totals["ticks"] == cfg.n_steps
    assert totals["spikes"] > 0
    assert totals["rtl_overflows"] == sum(model.overflows.values())


@pytest.mark.parametrize("lanes,update_lanes", [(4, 4), (6, 3)])
def test_parallel_update_saturating_and_host_reads(lanes, update_lanes):
    """Narrow formats (saturation) with groups of U neurons, and host reads of every register,
    weight, bias, input and target through the group words (element selected by the host)."""
    cfg = narrow_config((14, 10, 5)).replace(lanes=lanes, update_lanes=update_lanes)
    bad, model, totals = compare(cfg, seed=17, nudge_sign=-1, full_range=True)
    assert bad == []
    assert sum(model.overflows.values()) > 0 and totals["rtl_overflows"] == sum(model.overflows.values())
    cfg = default_config((14, 10, 5)).replace(lanes=lanes, update_lanes=update_lanes, n_free=6, n_nudged=2)
    _check_host_reads(cfg, 23, weight=(1, 9, 4))


def _check_host_reads(cfg, seed, weight=None):
    """After 5 ticks, host READs of every register, bias, input and target (and ``weight`` =
    (matrix, row, col) when given) equal the model's."""
    model, x, y = random_network(cfg, seed)
    h = RTLHarness(cfg)

    async def body(h):
        await _read_state_after(h, model, x, y, 5, lambda l: range(cfg.layers[l]))
        for l, b in enumerate(model.biases, start=1):
            assert [await h.read_param("bias", l, n) for n in range(b.shape[0])] == list(b)
        assert [await h.read_param("input", 0, n) for n in range(cfg.layers[0])] == list(x)
        assert [await h.read_param("target", 0, n) for n in range(cfg.layers[-1])] == list(y)
        if weight is not None:
            m_, j, k = weight
            assert await h.read_param("weight", m_, j, k) == model.weights[m_][j, k]
        return True

    assert h.run(body)


@pytest.mark.parametrize("seed", [301, 302, 303, 304])
def test_per_layer_update_lanes_match_model_random(seed):
    """One ``U_l`` per core (``update_lanes`` as a tuple, each a random divisor of the lanes,
    1 among them): random topologies and formats, bus stalls or not, every register every RUN,
    overflow counters, and the update phase's cycles (``rtl.network.tick_cycles``) per run."""
    rng = np.random.default_rng(seed)
    layers, lanes, _, narrow, base = random_parallel_design(rng)
    U = tuple(int(rng.choice(_divisors(lanes))) for _ in layers)
    cfg = base.replace(lanes=lanes, update_lanes=U, n_free=int(rng.integers(4, 12)), n_nudged=int(rng.integers(1, 6)))
    stall = int(rng.integers(1, 65535)) if rng.integers(2) else None
    bad, model, totals = compare(cfg, seed, nudge_sign=int(rng.choice([-1, 1])), bus_stall=stall, full_range=narrow)
    assert bad == [], (layers, lanes, U, narrow, stall)
    assert totals["ticks"] == cfg.n_steps and totals["spikes"] > 0
    assert totals["rtl_overflows"] == sum(model.overflows.values())


def test_per_layer_update_lanes_host_reads():
    """Cores of different ``U_l`` (10 neurons per word, 5, 1): host reads of every register,
    bias, input and target find each neuron in its own core's group words."""
    cfg = default_config((14, 10, 5)).replace(lanes=10, update_lanes=(2, 5, 1), n_free=6, n_nudged=2)
    assert [cfg.groups(l) for l in range(3)] == [7, 2, 5]
    bad, model, totals = compare(cfg, seed=19, nudge_sign=1)
    assert bad == []
    _check_host_reads(cfg, 29)


@pytest.mark.parametrize("layers,lanes,U,cycles", [((14, 10, 5), 10, (2, 5, 1), 17), ((4, 3, 20), 2, (1, 1, 2), 23)])
def test_per_layer_update_lanes_reset_latency(layers, lanes, U, cycles):
    """RESET answers ``max_l rtl.ports.clear_words(cfg, l) + 3`` cycles after acceptance whatever
    spikes are left queued: with some core at U > 1 every core's sweep counts at least its
    queues' depth (a U = 1 core next to a 20-neuron layer too: (4, 3, 20) with U (1, 1, 2))."""
    from rtl.ports import clear_words
    cfg = default_config(layers).replace(lanes=lanes, update_lanes=U, n_free=8, n_nudged=0)
    model, x, y = random_network(cfg, 5, full_range=True)
    want = max(clear_words(cfg, l) for l in range(cfg.n_layers)) + 3
    assert want == cycles      # (4, 3, 20): the hidden core's sweep counts its 20-deep queue from above
    h = RTLHarness(cfg)

    async def body(h):
        await h.load(model)
        got = []
        for ticks in (0, 3, 8):        # queues empty, then holding the last tick's spikes
            await h.reset(x, y)
            if ticks:
                await h.run_ticks(ticks, 0)
            await h.command(Op.RESET, Space.WEIGHT)
            got.append(h.latency)
        return got

    assert h.run(body) == [want] * 3


def test_lanes_wider_than_a_layer_store_only_its_neurons():
    """A core stores ``cfg.stored_lanes(l) = min(lanes, U ceil(n_l / U))`` lanes: 500 lanes
    on 784-500-10 keep the output core's weights in 10-lane words (not 500), and a host weight
    write (a read-modify-write of the word) leaves the word's other lanes as they were."""
    from rtl.layer import LayerCore

    cfg = default_config((784, 500, 10)).replace(lanes=500, update_lanes=10)
    assert [cfg.stored_lanes(l) for l in (1, 2)] == [500, 10]
    out = LayerCore(cfg, 2)
    assert Shape.cast(out.w_below.shape).width == 10 * cfg.weights[1].width
    assert out.acc_width == 10 * cfg.acc_format(2).width and out.acc_mem is None    # one word: a register
    hidden = LayerCore(cfg, 1)      # W_1^T in the rows after W_0's: one memory (cfg.weights_stacked)
    assert hidden.stacked and not hasattr(hidden, "w_above")
    assert Shape.cast(hidden.w_below.shape).width == 500 * cfg.weights[1].width
    assert hidden.w_below.depth == 784 + 10 and hidden.weight_memory("w_above") == (hidden.w_below, 784)
    assert default_config((8, 7, 3)).replace(lanes=8, update_lanes=2).stored_lanes(1) == 8   # 7 -> 4 groups of 2
    assert default_config((8, 7, 3)).replace(lanes=8, update_lanes=2).stored_lanes(2) == 4
    assert default_config((8, 7, 3)).replace(lanes=4).stored_lanes(1) == 4                   # 2 chunks: all lanes

    small = default_config((6, 7, 3)).replace(lanes=4, n_free=2, n_nudged=1)
    h = RTLHarness(small)

    async def body(h):
        for k in (5, 4, 6):     # lanes 1, 0, 2 of row 2's second word, in that order
            await h.command(Op.WRITE, Space.WEIGHT, layer=0, row=2, col=k, data=k - 9)
            assert h.latency == 4
        w = h.param_memories()["w_below"][0]
        back = []
        for k in range(7):
            back.append(await h.command(Op.READ, Space.WEIGHT, layer=0, row=2, col=k))
            assert h.latency == 5       # READ_ADDRESS, READ_WORD, READ_LANE (two-level pick), READ
        return w, back

    w, back = h.run(body)
    assert w[2].tolist() == [0, 0, 0, 0, -5, -4, -3] and not w[[0, 1, 3, 4, 5]].any()
    assert back == [0, 0, 0, 0, -5, -4, -3]
