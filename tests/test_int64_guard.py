"""The int64 guard (golden_model/int64_guard.py): every intermediate of FixedModel and
OnChipLearner has a bound derived from the config, configs that could wrap int64 are refused,
and no intermediate is formed outside a probe."""

import ast
import inspect

import numpy as np
import pytest

from golden_model import datapath
from golden_model.config import (ConfigError, EqSpikeConfig, Learning, RegFormat, Schedule, TableFormats,
                                 default_config, learning_config, narrow_config, wide_config)
from golden_model.fixed_model import FixedModel, Int64Audit
from golden_model.int64_guard import INT64_LIMIT, intermediate_bounds, int64_violation
from golden_model.onchip import OnChipLearner


def _issue_case(layers=(1, 1)):
    """The configuration of the verification issue: align(a -> phi.frac) shifts a s40.8 code
    left by 36 bits, which wrapped in int64 while the RTL computed the exact sum."""
    return EqSpikeConfig(layers=layers, n_free=7, n_nudged=3,
                         a=RegFormat(48, 8), phi=RegFormat(48, 44),
                         s=RegFormat(2, 1, signed=False, overflow="clip"),
                         lam=Schedule.power(1.0, 6.0), tables=TableFormats(lam_frac=24, inv_lam_frac=1),
                         eps=Schedule.constant(1.0))


@pytest.mark.parametrize("layers", [(1, 1), (4, 5, 3)])
def test_issue_config_is_refused_with_one_line(layers):
    with pytest.raises(ConfigError) as e:
        _issue_case(layers)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("register phi, operation align(a -> phi.frac)")
    assert "int64" in msg


def test_shipped_configs_pass_with_margin():
    for cfg in (default_config(), default_config((784, 500, 10)), narrow_config(), wide_config(),
                learning_config(), learning_config((784, 500, 10))):
        assert int64_violation(cfg) is None
        assert max(b for b, _ in intermediate_bounds(cfg).values()) < INT64_LIMIT


def test_encoder_alignment_is_guarded_too():
    """align(num -> a.frac): the numerator has inv_lam_frac + s.frac fraction bits; a finer
    ``a`` shifts it left."""
    cfg = default_config((3, 2))
    bad = dict(a=RegFormat(48, 47), s=RegFormat(41, 40, signed=False, overflow="clip"),
               tables=TableFormats(inv_lam_frac=20))
    with pytest.raises(ConfigError, match=r"register a, operation"):
        cfg.replace(**bad)


# -- audits on exact integers -----------------------------------------------------------------------

def _draw_config(rng, layers, learning: str | None):
    """A random config with wide formats, accepted by the guard (redrawn until it is)."""
    for _ in range(500):
        fmt = lambda lo=4: RegFormat(int(w := rng.integers(lo, 49)), int(rng.integers(0, w)),
                                     rounding=str(rng.choice(["floor", "half_up"])),
                                     overflow=str(rng.choice(["saturate", "wrap"])))
        fs = int(rng.integers(1, 40))
        wbits = int(rng.integers(1, 24))
        try:
            cfg = EqSpikeConfig(
                layers=layers, n_free=int(rng.integers(3, 8)), n_nudged=int(rng.integers(2, 5)),
                weights=tuple(RegFormat(wbits, int(rng.integers(0, wbits + 8))) for _ in layers[1:]),
                biases=tuple(RegFormat(int(b := rng.integers(2, 49)), int(rng.integers(0, b))) for _ in layers[1:]),
                v=fmt(), x=fmt(), a=fmt(), phi=RegFormat(int(w := rng.integers(4, 49)), int(rng.integers(1, w)),
                                                        overflow=str(rng.choice(["saturate", "wrap"]))),
                s=RegFormat(fs + 1, fs, signed=False, overflow="clip",
                            rounding=str(rng.choice(["floor", "half_up"]))),
                eps=Schedule.power(float(rng.uniform(0.3, 1.0)), float(rng.uniform(0, 1))),
                lam=Schedule.power(float(rng.uniform(0.05, 1.0)), float(rng.uniform(0, 1.5))),
                tables=TableFormats(*(int(v) for v in rng.integers(8, 25, 3))),
                beta=float(rng.uniform(0.1, 8.0)), beta_frac=int(rng.integers(0, 25)))
            if learning is not None:
                cfg = cfg.replace(learning=Learning(
                    rate_mult=tuple(int(v) for v in rng.integers(8, 16, len(layers) - 1)),
                    rate_shift=tuple(int(v) for v in rng.integers(2 * fs + 8 + 6, 2 * fs + 40, len(layers) - 1)),
                    extra_frac=int(rng.integers(0, 7)), rounding=learning, rng_bits=int(rng.integers(1, 17)),
                    seed=int(rng.integers(1, 1 << 62))))
        except ConfigError:
            continue
        return cfg
    raise AssertionError("no accepted config drawn")


def _extreme_codes(rng, shape, fmt):
    """Codes at both ends of ``fmt`` and random ones between (the worst cases of the bounds)."""
    c = rng.integers(fmt.min_code, fmt.max_code + 1, shape, dtype=np.int64)
    pick = rng.random(shape)
    c[pick < 0.3] = fmt.max_code
    c[pick > 0.7] = fmt.min_code
    return c


def _audit_inference(cfg, rng, audit):
    L = cfg.layers
    w = [_extreme_codes(rng, (L[i], L[i + 1]), cfg.weights[i]) for i in range(len(L) - 1)]
    b = [_extreme_codes(rng, (L[i + 1],), cfg.biases[i]) for i in range(len(L) - 1)]
    one = 1 << cfg.s.frac
    x = rng.choice([0, one, one // 2, one - 1], (3, L[0])).astype(np.int64)
    y = rng.choice([0, one], (3, L[-1])).astype(np.int64)
    exact, fast = FixedModel(cfg, w, b, audit=audit), FixedModel(cfg, w, b)
    se, sf = exact.reset(x, y), fast.reset(x, y)
    sign = int(rng.choice([-1, 1]))
    for t in range(cfg.n_steps):
        nudge = 0 if t < cfg.n_free else sign
        exact.tick(se, nudge)
        fast.tick(sf, nudge)
        for l in range(len(L)):
            for name, reg in se.registers(l).items():
                assert np.array_equal(np.asarray(reg, dtype=object), sf.registers(l)[name].astype(object)), \
                    f"int64 run differs from the exact run: register {name}, layer {l}, tick {t + 1}"
    assert exact.overflows == fast.overflows


def _audit_learning(cfg, rng, audit):
    L = cfg.layers
    w = [_extreme_codes(rng, (L[i], L[i + 1]), cfg.learn_format(i)) for i in range(len(L) - 1)]
    b = [_extreme_codes(rng, (L[i + 1],), cfg.biases[i]) for i in range(len(L) - 1)]
    exact, fast = OnChipLearner(cfg, w, b, audit=audit), OnChipLearner(cfg, w, b)
    one = 1 << cfg.s.frac
    for _ in range(3):
        x = rng.choice([0, one, one - 1], L[0]).astype(np.int64)
        y = rng.choice([0, one], L[-1]).astype(np.int64)
        exact.train_sample(x, y)
        fast.train_sample(x, y)
        for a, c in zip(exact.weights + exact.biases, fast.weights + fast.biases):
            assert np.array_equal(np.asarray(a, dtype=object), c.astype(object))


def test_every_intermediate_stays_inside_its_bound_and_every_bound_is_used():
    """Exact-integer runs of random wide configs at extreme codes: each probed intermediate
    respects its bound (Int64Audit raises otherwise), the int64 run equals the exact one, and
    the probes name exactly the intermediates the guard bounds (a new one cannot be unguarded)."""
    rng = np.random.default_rng(20261202)
    seen, bounded = set(), set()
    for i in range(36):
        layers = [(2, 3), (3, 4, 2), (2, 3, 3, 2)][i % 3]
        learning = [None, "stochastic", "nearest"][(i // 3) % 3]
        cfg = _draw_config(rng, layers, learning)
        audit = Int64Audit(cfg)
        (_audit_learning if learning else _audit_inference)(cfg, rng, audit)
        seen |= set(audit.seen)
        bounded |= set(intermediate_bounds(cfg))
    assert seen == bounded, f"bounded but never formed: {bounded - seen}; formed but unbounded: {seen - bounded}"


def test_configs_near_the_limit_still_compute_exactly():
    """Accepted configs whose largest bound is within 2**6 of int64's limit compute the same
    integers in int64 as in exact arithmetic."""
    rng = np.random.default_rng(7)
    near = 0
    for _ in range(400):
        cfg = _draw_config(rng, (2, 3, 2), None)
        top = max(b for b, _ in intermediate_bounds(cfg).values())
        if top < INT64_LIMIT >> 6:
            continue
        near += 1
        _audit_inference(cfg, rng, Int64Audit(cfg))
        if near == 6:
            break
    assert near >= 3


# -- no intermediate outside a probe -----------------------------------------------------------------

_GROWING = (ast.Add, ast.Sub, ast.Mult, ast.LShift)
_CALLS = {"align", "round_shift", "outer"}
# scalars derived from the config (shift amounts, gains): arithmetic on them cannot overflow
_SCALARS = {"cfg", "vf", "xf", "sf", "bf", "af", "pf", "F", "G", "nf", "D", "e", "r", "ilf", "m", "l"}


def _outside_probes(fn):
    tree = ast.parse(inspect.cleandoc("\n" + inspect.getsource(fn)))
    bad = []

    def visit(node, inside):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "probe":
            for arg in node.args:
                visit(arg, True)
            return
        if not inside:
            if isinstance(node, ast.BinOp) and isinstance(node.op, _GROWING):
                names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
                if not names <= _SCALARS:
                    bad.append(ast.unparse(node))
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if name in _CALLS:
                    bad.append(ast.unparse(node))
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    visit(tree, False)
    return bad


@pytest.mark.parametrize("fn", [f for f in vars(datapath).values()
                                if callable(f) and getattr(f, "datapath_stage", None)] + [datapath.rounding_offset],
                         ids=lambda f: f.__name__)
def test_datapath_forms_no_intermediate_outside_a_probe(fn):
    assert _outside_probes(fn) == []
