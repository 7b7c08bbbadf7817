"""On-chip learning in the RTL (Amaranth simulator) against golden_model.onchip.OnChipLearner.

After every TRAIN command every weight (host READ, learning-format codes) and every bias
equals the learner's, the transposed ``w_above`` copies too (backdoor), the sign answered is
the learner's, and the command's cycle count equals ``rtl.learning.train_cycles``. A build
with a planted rounding bug (``fault="learn_round"``) is caught.
"""

import numpy as np
import pytest

from golden_model.config import RegFormat, learning_config
from golden_model.float_model import glorot_params
from golden_model.lfsr import Draws, jump_matrix
from golden_model.onchip import OnChipLearner, draws_per_sample
from rtl.learning import LFSR, train_cycles, train_update_cycles
from rtl.network import Network
from sim.rtl_harness import RTLHarness, train_tick_cycles


def learner_and_samples(cfg, seed, samples, gain=1.0):
    rng = np.random.default_rng(seed)
    params = glorot_params(cfg.layers, rng)
    params.weights = [gain * w for w in params.weights]
    params.biases = [rng.uniform(-0.3, 0.3, size=n) for n in cfg.layers[1:]]
    lrn = OnChipLearner.from_float(cfg, params)
    one = 1 << cfg.s.frac
    x = rng.integers(0, one + 1, size=(samples, cfg.layers[0]))
    y = np.zeros((samples, cfg.layers[-1]), dtype=np.int64)
    y[np.arange(samples), rng.integers(cfg.layers[-1], size=samples)] = one
    return lrn, x, y


def train_and_compare(cfg, lrn, xs, ys, fault=None) -> dict:
    """TRAIN every sample; after each, compare every parameter (host reads and backdoor copies)
    and the sign with the learner. Returns what differed and the counts."""
    h = RTLHarness(cfg, fault=fault)
    out = {"signs": [], "bad": [], "cycles": [], "changed": 0}

    async def body(h):
        await h.load(lrn)
        for s, (x, y) in enumerate(zip(xs, ys)):
            before = [w.copy() for w in lrn.weights]
            sign = await h.train_sample(x, y)
            latency = h.latency
            expected_cycles = train_cycles(cfg, train_tick_cycles(lrn, x, y, sign))
            res = lrn.train_sample(x, y)
            out["signs"].append((sign, res.sign))
            out["cycles"].append((latency, expected_cycles))
            out["changed"] += sum(int((a != b).sum()) for a, b in zip(lrn.weights, before))
            w, b = await h.read_params()
            mem = h.param_memories()
            checks = [(f"W{l}", w[l], lrn.weights[l]) for l in range(len(w))]
            checks += [(f"W{l} (w_above copy)", a, lrn.weights[l]) for l, a in mem["w_above"].items()]
            checks += [(f"b{l + 1}", b[l], lrn.biases[l]) for l in range(len(b))]
            for name, got, want in checks:
                bad = np.argwhere(got != want)
                if bad.size:
                    i = tuple(int(v) for v in bad[0])
                    out["bad"].append(f"sample {s}: {name}{list(i)} rtl {int(got[i])} != model {int(want[i])} "
                                      f"({len(bad)} differ)")
            if out["bad"]:
                return

    h.run(body)
    return out


CASES = [
    # layers, lanes, rounding, n_free, n_nudged, samples, learning seed
    ((5, 3, 2), 1, "stochastic", 6, 3, 4, 0x9E3779B97F4A7C15),
    ((5, 3, 2), 2, "nearest", 6, 3, 4, 0x9E3779B97F4A7C15),
    ((16, 12, 4), 5, "nearest", 8, 4, 3, 0xDEADBEEFCAFEF00D),
    ((16, 12, 4), 1, "stochastic", 8, 4, 2, 0xDEADBEEFCAFEF00D),
    ((20, 8, 8, 3), 3, "stochastic", 8, 4, 3, 0x0123456789ABCDEF),
    ((20, 8, 8, 3), 4, "nearest", 8, 4, 3, 0xDEADBEEFCAFEF00D),
]


@pytest.mark.parametrize("layers,lanes,rounding,n_free,n_nudged,samples,seed", CASES)
def test_train_matches_onchip_learner(layers, lanes, rounding, n_free, n_nudged, samples, seed):
    cfg = learning_config(layers, rounding=rounding, seed=seed).replace(lanes=lanes, n_free=n_free,
                                                                       n_nudged=n_nudged)
    lrn, xs, ys = learner_and_samples(cfg, len(layers) * 10 + lanes, samples)
    out = train_and_compare(cfg, lrn, xs, ys)
    assert out["bad"] == []
    assert [a for a, _ in out["signs"]] == [b for _, b in out["signs"]]
    assert out["changed"] > 0                      # the weights did move
    assert [a for a, _ in out["cycles"]] == [b for _, b in out["cycles"]]


@pytest.mark.parametrize("mul_stages", [2, 3])
def test_train_with_pipelined_multiplies_matches_onchip_learner(mul_stages):
    """TRAIN with the neuron multiplies pipelined (cfg.mul_stages) and groups of 3: parameters,
    sign and cycles equal the learner's (the held states are written with v and s, later)."""
    cfg = learning_config((7, 9, 4), rounding="stochastic", seed=0x5DEECE66D).replace(
        lanes=6, update_lanes=3, mul_stages=mul_stages, n_free=6, n_nudged=3)
    lrn, xs, ys = learner_and_samples(cfg, 77, 2)
    out = train_and_compare(cfg, lrn, xs, ys)
    assert out["bad"] == []
    assert [a for a, _ in out["signs"]] == [b for _, b in out["signs"]]
    assert out["changed"] > 0
    assert [a for a, _ in out["cycles"]] == [b for _, b in out["cycles"]]


@pytest.mark.parametrize("seed", [301, 302, 303, 304])
def test_train_with_parallel_update_matches_onchip_learner(seed):
    """TRAIN with random ``update_lanes`` U (a divisor of random ``lanes``, values dividing no
    layer included) and random rounding: parameters, sign and cycles equal the learner's.

    These seeds draw layers/lanes/U/rounding (5, 3, 3)/4/2/stochastic, (8, 9, 8, 3)/6/3/nearest,
    (3, 9, 5)/4/4/stochastic, (7, 9, 10, 7)/3/3/stochastic."""
    rng = np.random.default_rng(seed)
    layers = tuple(int(n) for n in rng.integers(2, 11, size=int(rng.integers(3, 5))))
    lanes = int(rng.integers(2, 7))
    U = int(rng.choice([d for d in range(2, lanes + 1) if lanes % d == 0]))
    rounding = str(rng.choice(["stochastic", "nearest"]))
    cfg = learning_config(layers, rounding=rounding, seed=int(rng.integers(1, 1 << 62))).replace(
        lanes=lanes, update_lanes=U, n_free=6, n_nudged=3)
    lrn, xs, ys = learner_and_samples(cfg, seed, 2)
    out = train_and_compare(cfg, lrn, xs, ys)
    assert out["bad"] == [], (layers, lanes, U, rounding)
    assert [a for a, _ in out["signs"]] == [b for _, b in out["signs"]]
    assert out["changed"] > 0
    assert [a for a, _ in out["cycles"]] == [b for _, b in out["cycles"]]


def test_both_signs_covered():
    """The cases above train with beta's sign +1 and -1 (their LFSR seeds)."""
    signs = set()
    for layers, lanes, rounding, _, _, samples, seed in CASES:
        cfg = learning_config(layers, rounding=rounding, seed=seed).replace(lanes=lanes)
        draws = Draws(seed, cfg.learning.rng_bits)
        for _ in range(samples):
            signs.add(-1 if draws.take(1)[0] & 1 else 1)
            draws.take(draws_per_sample(cfg) - 1)
    assert signs == {1, -1}


def test_train_saturates_like_the_model():
    """Narrow weights (range [-1, 1)) with large initial weights and a large gain: updates hit the
    learning format's limits; the RTL saturates exactly as the model."""
    cfg = learning_config((6, 5, 3), lr=(0.9, 0.9), seed=0xDEADBEEFCAFEF00D).replace(
        lanes=2, n_free=8, n_nudged=6, weights=(RegFormat(3, 2), RegFormat(3, 2)))
    lrn, xs, ys = learner_and_samples(cfg, 3, 4, gain=4.0)
    out = train_and_compare(cfg, lrn, xs, ys)
    assert out["bad"] == []
    assert lrn.saturations > 0


@pytest.mark.parametrize("rounding", ["stochastic", "nearest"])
def test_planted_rounding_fault_is_caught(rounding):
    """``fault="learn_round"`` drops the weight update's rounding offset: the comparison fails."""
    cfg = learning_config((5, 3, 2), rounding=rounding, seed=0x9E3779B97F4A7C15).replace(lanes=2, n_free=6,
                                                                                         n_nudged=3)
    lrn, xs, ys = learner_and_samples(cfg, 7, 3)
    out = train_and_compare(cfg, lrn, xs, ys, fault="learn_round")
    assert out["bad"], "the planted rounding bug went unnoticed"


def test_lfsr_lanes_equal_the_draw_stream():
    """The LFSR module's ``lanes`` draws per step and single draws equal golden_model.lfsr.Draws."""
    from amaranth.sim import Simulator
    seed, bits, lanes = 0x0123456789ABCDEF, 5, 3
    dut = LFSR(seed, bits, lanes)
    ref = Draws(seed, bits)
    got, want = [], []

    async def bench(ctx):
        for step in range(12):
            many = step % 3 != 2
            d = ctx.get(dut.draws)
            got.extend([(d >> (t * bits)) & ((1 << bits) - 1) for t in range(lanes if many else 1)])
            want.extend(int(v) for v in ref.take(lanes if many else 1))
            ctx.set(dut.step_many, many)
            ctx.set(dut.step_one, not many)
            await ctx.tick()
        assert ctx.get(dut.state) == ref.state

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == want
    assert jump_matrix(bits * lanes).apply(seed) != seed


def test_update_cycle_formula_terms():
    """train_update_cycles for the documented networks (docs/learning.md)."""
    digits = learning_config((64, 100, 10))
    assert train_update_cycles(digits) == (64 * 100 + 100 * 10) + 5 + 100 * 10 + 110 + 5
    assert train_update_cycles(digits.replace(lanes=10)) == (64 * 10 + 100 * 1) + 5 + 100 * 10 + 110 + 5


def test_learning_none_builds_no_engine():
    from golden_model.config import default_config
    net = Network(default_config((5, 3, 2)))
    assert net.engine is None
    with pytest.raises(ValueError):
        Network(default_config((5, 3, 2)), fault="learn_round")


def test_run_in_a_learning_build_uses_the_rounded_inference_weights():
    """RUN ticks of a learning build equal FixedModel with OnChipLearner.inference_weights():
    learning codes rounded half up to the inference format, the top code clamped (codes at
    both ends of the learning format included)."""
    from sim.rtl_harness import diff_registers
    cfg = learning_config((12, 7, 4), seed=5).replace(lanes=3, n_free=10, n_nudged=4)
    rng = np.random.default_rng(11)
    w = [rng.integers(cfg.learn_format(l).min_code, cfg.learn_format(l).max_code + 1, size=(a, b))
         for l, (a, b) in enumerate(zip(cfg.layers, cfg.layers[1:]))]
    for l, m in enumerate(w):
        m[0, :2] = cfg.learn_format(l).max_code, cfg.learn_format(l).min_code
    b = [rng.integers(-200, 200, size=n) for n in cfg.layers[1:]]
    lrn = OnChipLearner(cfg, w, b)
    model = lrn.model()
    x = rng.integers(0, (1 << cfg.s.frac) + 1, size=cfg.layers[0])
    y = np.zeros(cfg.layers[-1], dtype=np.int64)
    y[1] = 1 << cfg.s.frac
    st = model.reset(x[None], y[None])
    h = RTLHarness(cfg)

    async def body(h):
        await h.load(lrn)
        await h.reset(x, y)
        bad, spikes = [], 0
        for t in range(cfg.n_steps):
            sign = 0 if t < cfg.n_free else -1
            model.tick(st, sign)
            await h.tick(sign)
            bad += diff_registers(h.registers(), st)
            spikes += int(st.q[1].sum())
        return bad, spikes

    bad, spikes = h.run(body)
    assert bad == []
    assert spikes > 0                                                  # the hidden layer is active
    assert lrn.inference_weights()[0][0, 0] == cfg.weights[0].max_code  # the clamp is exercised
