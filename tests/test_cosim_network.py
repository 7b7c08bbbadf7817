"""cocotb co-simulation of the generated Verilog against the golden model (Verilator always,
Icarus when iverilog is on PATH).

Each test builds the Verilog of a randomized config (cached per config hash under build/cosim),
runs samples through the host interface with random idle cycles and response backpressure, and
compares every bus spike and every per-neuron register with the golden model every tick
(sim.scoreboard). A failing cocotb test raises CosimError here (sim.runner reads the results
file), so it fails pytest. Seeds are printed; replay with ``pytest --seed N``.
"""

import dataclasses
import shutil

import numpy as np
import pytest

from sim.runner import CosimError, available_simulators, build, run_samples
from sim.stimulus import random_config, random_narrow_config, random_network, random_samples

SIMULATORS = ["verilator", pytest.param("icarus", marks=pytest.mark.skipif(
    shutil.which("iverilog") is None, reason="iverilog not on PATH (apt-get install iverilog)"))]

#: mean |s_rtl - s_float| per layer and tick, asserted for the default-like random configs
#: (measured worst over seeds 0-11: 0.115; the narrow saturating config is not bounded).
FLOAT_BOUND = 0.25


@pytest.fixture
def seed(request):
    """The test's seed: --seed N, or the test's fixed default (so builds stay cached)."""
    def get(default):
        s = request.config.getoption("--seed")
        s = default if s is None else s
        print(f"co-simulation seed {s} (replay: pytest {request.node.nodeid} --seed {s})")
        return s
    return get


def digits_shaped_config(seed):
    """The random config of the digits-shaped tests (64 inputs, 10 outputs; also used by the CLI test)."""
    rng = np.random.default_rng(seed)
    return random_config(rng, (64, int(rng.integers(6, 17)), 10))


def test_verilator_is_always_available():
    assert "verilator" in available_simulators()


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_random_config_matches_golden_model(simulator, seed):
    """Random sizes/lanes/widths/rounding/schedules, random weights and inputs, free + nudged phases
    (both nudge signs and a free-only sample), host idle cycles and response backpressure."""
    s = seed(101)
    cfg = digits_shaped_config(s)
    rng = np.random.default_rng(s + 1)
    model = random_network(cfg, rng)
    x, y = random_samples(cfg, rng, 3)
    b = build(cfg, simulator)
    res = run_samples(b, model, x, y, nudge=[1, -1, 0], name=f"random-{s}", idle=0.3, backpressure=0.3,
                      max_gap=3, seed=s, float_bound=FLOAT_BOUND, read_checks=6)
    rows = res["samples"]
    assert [r["bit_exact"] for r in rows] == [True] * 3
    assert [r["ticks"] for r in rows] == [cfg.n_steps, cfg.n_steps, cfg.n_free]
    assert all(r["spikes"] > 0 for r in rows)
    # every register of every neuron every tick, and every spike slot, was compared
    n_regs = 5 * cfg.layers[0] + 8 * sum(cfg.layers[1:])
    assert res["checked_registers"] == n_regs * sum(r["ticks"] for r in rows)
    assert res["checked_spikes"] == sum(cfg.layers) * sum(r["ticks"] for r in rows)
    assert max(max(r["float_diff_max"]) for r in rows) <= FLOAT_BOUND
    assert res["commands"] > res["load_commands"] > 0


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_narrow_saturating_config_with_bus_stalls(simulator, seed):
    """Narrow formats and full-range random weights (every register saturates), and random idle
    and backpressure on every internal spike-bus link (an RTL variant with Throttles)."""
    s = seed(202)
    rng = np.random.default_rng(s)
    cfg = random_narrow_config(rng)
    model = random_network(cfg, rng, full_range=True)
    x, y = random_samples(cfg, rng, 2)
    b = build(cfg, simulator, bus_stall=s % 4093 + 1)
    res = run_samples(b, model, x, y, nudge=[-1, 1], name=f"narrow-{s}", idle=0.5, backpressure=0.5,
                      seed=s, read_checks=4)
    rows = res["samples"]
    assert [r["bit_exact"] for r in rows] == [True, True]
    assert sum(r["overflows"] for r in rows) > 0, "the narrow config must reach saturation"
    assert sum(sum(r["bus_stalls"]) for r in rows) > 0, "the throttled bus must stall spikes"


def test_per_layer_update_lanes_are_bit_exact(seed):
    """One update width per core (``update_lanes`` a tuple, each a random divisor of 6 lanes):
    the generated Verilog, every register every tick, cycles per sample equal to the formula
    (``rtl.network.tick_cycles`` of the model's spikes) and the state reader's per-core words."""
    s = seed(404)
    rng = np.random.default_rng(s)
    cfg = digits_shaped_config(s).replace(lanes=6, n_free=20, n_nudged=6)
    cfg = cfg.replace(update_lanes=tuple(int(rng.choice([1, 2, 3, 6])) for _ in cfg.layers))
    assert len(set(cfg.update_lanes)) > 1, cfg.update_lanes
    model = random_network(cfg, rng)
    x, y = random_samples(cfg, rng, 2)
    b = build(cfg, "verilator")
    res = run_samples(b, model, x, y, nudge=[1, -1], name=f"per-layer-u-{s}", seed=s, read_checks=4,
                      float_bound=FLOAT_BOUND)
    rows = res["samples"]
    assert [r["bit_exact"] for r in rows] == [True, True]
    assert all(r["spikes"] > 0 for r in rows)
    assert [r["cycles"] for r in rows] == [r["formula_cycles"] for r in rows]
    n_regs = 5 * cfg.layers[0] + 8 * sum(cfg.layers[1:])
    assert res["checked_registers"] == n_regs * sum(r["ticks"] for r in rows)


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_planted_rounding_bug_is_caught(simulator, seed):
    """Verilog generated from a config whose state register s floors, checked against a golden
    model that rounds s half up: the first mismatch is reported with tick, layer, neuron,
    register, expected and got, and the cocotb failure reaches pytest as CosimError.

    (s is chosen because its rounding acts every tick: eps * (x - s) always has bits below s's
    LSB, whereas x's rounding can be exact for a config, e.g. when v, b and x share a format.)"""
    s = seed(303)
    rng = np.random.default_rng(s)
    golden_cfg = random_config(rng, (12, 10, 4)).replace(n_free=16, n_nudged=4)
    golden_cfg = golden_cfg.replace(s=dataclasses.replace(golden_cfg.s, rounding="half_up"))
    rtl_cfg = golden_cfg.replace(s=dataclasses.replace(golden_cfg.s, rounding="floor"))
    model = random_network(golden_cfg, rng)
    x, y = random_samples(golden_cfg, rng, 2)
    b = build(rtl_cfg, simulator)
    with pytest.raises(CosimError) as info:
        run_samples(b, model, x, y, nudge=[1, 1], model_cfg=golden_cfg, name=f"planted-{s}", seed=s)
    msg = str(info.value)
    print(msg)
    mm = info.value.result["mismatch"]
    assert "cocotb tests failed" in msg and "first mismatch: sample 0 tick" in msg
    assert mm["register"] == "s"          # the dataflow's first register that differs is the planted one
    assert mm["expected"] != mm["got"] and abs(mm["expected"] - mm["got"]) == 1   # one LSB: rounding
    assert f"layer {mm['layer']} neuron {mm['neuron']} register s: expected {mm['expected']}, got {mm['got']}" in msg
    assert 1 <= mm["tick"] <= golden_cfg.n_steps
    assert info.value.result["samples"] == []      # stopped at the first mismatch, in sample 0


def test_registers_every_k_ticks_still_checks_every_spike(seed):
    """--registers-every 4: K ticks per RUN command, registers at chunk ends and at the end of the
    free phase, bus spikes every tick (same build as the random test)."""
    s = seed(101)
    cfg = digits_shaped_config(s)
    rng = np.random.default_rng(s + 2)
    model = random_network(cfg, rng)
    x, y = random_samples(cfg, rng, 1)
    b = build(cfg, "verilator")
    res = run_samples(b, model, x, y, nudge=[1], name=f"every4-{s}", registers_every=4, seed=s)
    assert res["samples"][0]["bit_exact"] and res["samples"][0]["ticks"] == cfg.n_steps
    chunks = -(-cfg.n_free // 4) + -(-cfg.n_nudged // 4)
    assert res["checked_registers"] == (5 * cfg.layers[0] + 8 * sum(cfg.layers[1:])) * chunks
    assert res["checked_spikes"] == sum(cfg.layers) * cfg.n_steps
