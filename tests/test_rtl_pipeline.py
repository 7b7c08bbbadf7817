"""The update pipelines planned from ``cfg.mul_stages`` (rtl.pipeline): stage counts, reads
and writes, no dead or missing stage-register value, each multiply isolated by registers; and
the RTL built from every plan bit-exact against the golden model (inference, host reads,
planted faults, cycle formula). TRAIN at ``mul_stages = 3``: tests/test_rtl_learning.py."""

import numpy as np
import pytest

from golden_model.config import ConfigError, default_config, narrow_config
from rtl.layer import INPUT_WRITES, STATE_WRITES
from rtl.network import update_cycles
from rtl.pipeline import input_plan, input_stages, layer_plan, update_stages

MULS = ("dec", "st", "enc")


def _plans(P):
    cfg = default_config((8, 6, 3)).replace(mul_stages=P)
    return [(layer_plan(cfg, False), list(STATE_WRITES.values())), (layer_plan(cfg, True), list(STATE_WRITES.values())),
            (input_plan(cfg), [tuple(INPUT_WRITES.values())])]


@pytest.mark.parametrize("P,K_layer,K_input", [(1, 7, 4), (2, 10, 5), (3, 13, 6)])
def test_stage_counts_and_cycle_formula(P, K_layer, K_input):
    cfg = default_config((8, 6, 3)).replace(mul_stages=P)
    assert layer_plan(cfg, False).K == layer_plan(cfg, True).K == K_layer
    assert input_plan(cfg).K == K_input
    assert len(update_stages(cfg)) == K_layer and len(input_stages(cfg)) == K_input
    # G_l + K_l + 1 per core (U = 1, no stalls): 8 + K_input + 1 vs 6 + K_layer + 1
    assert update_cycles(cfg) == max(8 + K_input + 1, 6 + K_layer + 1, 3 + K_layer + 1)


def test_one_stage_per_multiply_is_the_original_pipeline():
    """mul_stages = 1: stage 1 the accumulator lane, 2 decoder, 3 input, 4 state, 5 encoder,
    6 sigma-delta, 7 write; the vs word is read for stage 2, bias and target for 3, xap for
    6; acc written at 2, v and s at 5, x a phi q at 7."""
    cfg = default_config((8, 6, 3))
    plan = layer_plan(cfg, True)
    assert plan.K == 7
    assert [plan.write_stage(f) for f in STATE_WRITES.values()] == [2, 5, 7]
    assert {m: plan.read_stage(m) for m in ("state_vs", "bias", "target", "state_xap")} == \
        {"state_vs": 2, "bias": 3, "target": 3, "state_xap": 6}
    assert update_stages(cfg)[1] == "decoder operand; decoder product; decoder: v"


@pytest.mark.parametrize("P", [1, 2, 3])
def test_every_register_value_is_used_and_every_use_is_available(P):
    for plan, writes in _plans(P):
        for k in range(2, plan.K + 1):
            for v in plan.live(k, writes):     # held in p_k: used in stage k or later
                assert plan.made_in(v) < k <= plan.last_use(v, writes), (P, k, v)
        for k, stage in enumerate(plan.stages, 1):
            made_here = set()
            for op in stage:
                for v in plan.uses(op):
                    assert v in made_here or v in plan.live(k, writes) or (
                        v in plan.reads and plan.read_stage(plan.reads[v]) == k), (P, k, op, v)
                made_here |= set(plan.ops[op][1])
        for fields in writes:                  # a state group's fields are all in its write stage's register
            assert set(fields) <= set(plan.live(plan.write_stage(fields), writes))


@pytest.mark.parametrize("P", [2, 3])
def test_each_multiply_has_registers_around_it(P):
    """P = 2: no stage holds a product and what consumes it; P = 3: nor the operand and the
    product. The products (and at P = 3 the operands) are stage-register values."""
    for plan, writes in _plans(P):
        names = [c for c in MULS if f"{c}_mul" in plan.all_ops] + (["nudge"] if "nudge_mul" in plan.all_ops else [])
        assert names
        for c in names:
            k_mul = plan.op_stage(f"{c}_mul")
            consumer = "nudge_sign" if c == "nudge" else f"{c}_fin"
            assert plan.op_stage(consumer) == k_mul + 1
            assert plan.op_stage(f"{c}_op") == k_mul - (P == 3)
            product = plan.ops[f"{c}_mul"][1][0]
            assert product in plan.live(k_mul + 1, writes)


@pytest.mark.parametrize("bad", [0, 4, "2", 1.5, True])
def test_mul_stages_is_validated(bad):
    with pytest.raises(ConfigError, match="mul_stages"):
        default_config((8, 6, 3)).replace(mul_stages=bad)


def test_mul_stages_round_trips_and_defaults_to_one():
    cfg = default_config((8, 6, 3)).replace(mul_stages=3)
    assert type(cfg).from_json(cfg.to_json()).mul_stages == 3
    old = {k: v for k, v in cfg.to_dict().items() if k != "mul_stages"}   # a config written before the field
    assert type(cfg).from_dict(old).mul_stages == 1


@pytest.mark.parametrize("seed", [401, 402, 404, 410, 415, 420, 439])
def test_pipelined_multiplies_match_model_random(seed):
    """Random mul_stages (2 or 3) on random topologies, lanes, U (1, values dividing no layer),
    formats (saturating or not), bus stalls and nudge sign: every register every tick, every
    overflow counted.

    These seeds draw layers/lanes/U/P (10, 3, 6)/6/1/3 narrow, (4, 2, 12, 12)/2/2/3,
    (4, 8, 6, 11)/2/2/2 narrow, (6, 13, 12)/5/5/2 narrow, (11, 8, 10)/4/4/3,
    (11, 2, 13)/6/6/2, (13, 10, 8)/6/6/3 narrow."""
    from test_rtl_network import compare, random_parallel_design
    rng = np.random.default_rng(seed)
    layers, lanes, U, narrow, base = random_parallel_design(rng)
    P = int(rng.integers(2, 4))
    cfg = base.replace(lanes=lanes, update_lanes=U, mul_stages=P, n_free=int(rng.integers(4, 12)),
                       n_nudged=int(rng.integers(1, 6)))
    stall = int(rng.integers(1, 65535)) if rng.integers(2) else None
    bad, model, totals = compare(cfg, seed, nudge_sign=int(rng.choice([-1, 1])), bus_stall=stall, full_range=narrow)
    assert bad == [], (layers, lanes, U, P, narrow, stall)
    assert totals["ticks"] == cfg.n_steps and totals["spikes"] > 0
    assert totals["rtl_overflows"] == sum(model.overflows.values())


def test_pipelined_multiplies_saturate_and_read_back():
    """mul_stages = 3 with saturating formats and groups of 3: registers every tick, overflow
    counts, then host reads of every register."""
    from sim.rtl_harness import RTLHarness, random_network
    from test_rtl_network import _read_state_after, compare
    cfg = narrow_config((14, 10, 5)).replace(lanes=6, update_lanes=3, mul_stages=3)
    bad, model, totals = compare(cfg, seed=17, nudge_sign=-1, full_range=True)
    assert bad == []
    assert sum(model.overflows.values()) > 0 and totals["rtl_overflows"] == sum(model.overflows.values())
    cfg = default_config((14, 10, 5)).replace(lanes=6, update_lanes=3, mul_stages=3, n_free=6, n_nudged=2)
    model, x, y = random_network(cfg, 23)
    h = RTLHarness(cfg)

    async def body(h):
        await _read_state_after(h, model, x, y, 5, lambda l: range(cfg.layers[l]))
        return True

    assert h.run(body)


@pytest.mark.parametrize("fault", ["wrap", "floor"])
def test_broken_pipelined_rtl_is_caught(fault):
    from test_rtl_network import compare
    base = narrow_config((16, 12, 4)) if fault == "wrap" else default_config((16, 12, 4)).replace(n_free=16, n_nudged=4)
    bad, _, _ = compare(base.replace(mul_stages=3), seed=13, fault=fault, full_range=fault == "wrap",
                        stop_at_first=True)
    assert bad, f"an RTL built with fault={fault!r} must not match the model"
