"""rtl.arith expressions == golden_model.fixedpoint helpers, on random and edge-case codes."""

import random

import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from golden_model import fixedpoint as fp
from golden_model.config import RegFormat
from rtl import arith


def evaluate(build, values, width=16):
    """Evaluate ``build(x)`` (an expression of one signed input) for every value, combinationally."""
    x = Signal(signed(width))
    expr = build(x)
    out = Signal(signed(len(expr) + 1))
    m = Module()
    m.d.comb += out.eq(expr)
    sim = Simulator(m)
    got = []

    async def tb(ctx):
        for v in values:
            ctx.set(x, v)
            got.append(ctx.get(out))

    sim.add_testbench(tb)
    sim.run()
    return got


VALUES = [-(1 << 15), -(1 << 15) + 1, -1025, -1024, -513, -512, -511, -3, -2, -1, 0, 1, 2, 3, 511, 512, 513,
          (1 << 15) - 1] + [random.Random(1).randrange(-(1 << 15), 1 << 15) for _ in range(150)]


@pytest.mark.parametrize("n", [0, 1, 4, 10])
@pytest.mark.parametrize("rounding", ["floor", "half_up"])
def test_round_shift(n, rounding):
    assert evaluate(lambda x: arith.round_shift(x, n, rounding), VALUES) == \
        [fp.round_shift(v, n, rounding) for v in VALUES]


def test_round_shift_negative_is_exact_left_shift():
    assert evaluate(lambda x: arith.round_shift(x, -3, "half_up"), VALUES) == [v << 3 for v in VALUES]


@pytest.mark.parametrize("from_frac,to_frac", [(12, 4), (4, 12), (6, 6)])
def test_align(from_frac, to_frac):
    assert evaluate(lambda x: arith.align(x, from_frac, to_frac, "half_up"), VALUES) == \
        [fp.align(v, from_frac, to_frac, "half_up") for v in VALUES]


@pytest.mark.parametrize("fmt", [RegFormat(7, 4), RegFormat(8, 3, overflow="wrap"), RegFormat(5, 3),
                                 RegFormat(9, 2, signed=False, overflow="wrap")])
def test_narrow_saturate_and_wrap(fmt):
    if fmt.overflow == "wrap":
        want = [fp.wrap(v, fmt.width, fmt.signed) for v in VALUES]
    else:
        want = [fp.saturate(v, fmt.min_code, fmt.max_code) for v in VALUES]
    assert evaluate(lambda x: arith.narrow(x, fmt), VALUES) == want
    assert evaluate(lambda x: arith.overflows(x, fmt), VALUES) == \
        [int(v < fmt.min_code or v > fmt.max_code) for v in VALUES]


@pytest.mark.parametrize("frac", [6, 12])
def test_clip_unit(frac):
    assert evaluate(lambda x: arith.clip_unit(x, frac), VALUES) == [fp.clip_unit(v, frac) for v in VALUES]


def test_faults_break_the_rules():
    fmt = RegFormat(7, 4)
    assert evaluate(lambda x: arith.narrow(x, fmt, fault="wrap"), [100]) == [fp.wrap(100, 7, True)] != [63]
    assert evaluate(lambda x: arith.round_shift(x, 2, "half_up", fault="floor"), [3]) == [0]
    with pytest.raises(ValueError):
        arith.narrow(Signal(4), fmt, fault="bogus")
    with pytest.raises(ValueError):
        arith.narrow(Signal(4), RegFormat(7, 6, signed=False, overflow="clip"))


@pytest.mark.parametrize("sa,sb", [("u12", "s19"), ("u11", "s20"), ("u14", "s14"), ("s13", "s22"),
                                   ("u12", "u20"), ("s19", "u12"), ("u4", "s3")])
@pytest.mark.parametrize("dsp", [None, 18, 16, 9])
def test_mul_split_for_small_dsp_is_exact(sa, sb, dsp):
    """arith.mul with a DSP width (one DSP product + shifts and adds) == the integer product,
    random operands and every corner; const_mul (canonical signed digits) == x * c."""
    from amaranth.hdl import unsigned
    shapes = [(signed if t[0] == "s" else unsigned)(int(t[1:])) for t in (sa, sb)]
    a, b, x, xs = Signal(shapes[0]), Signal(shapes[1]), Signal(10), Signal(signed(11))
    consts = (0, 1, 3, 7, 10, 100, 255, 392, 500, 784)
    p = arith.mul(a, b, dsp)
    cm = [arith.const_mul(x, c, dsp) for c in consts] + [arith.const_mul(xs, c, dsp) for c in consts]
    m = Module()
    o = Signal(signed(len(a) + len(b) + 2))
    co = [Signal(signed(34)) for _ in cm]
    m.d.comb += [o.eq(p)] + [q.eq(e) for q, e in zip(co, cm)]
    assert len(p) <= len(a) + len(b) + 1
    rng = random.Random(len(sa) * 31 + len(sb) + (dsp or 0))

    def corners(s):
        return (-(1 << (s.width - 1)), -1, 0, 1, (1 << (s.width - 1)) - 1) if s.signed else (0, 1, (1 << s.width) - 1)

    def rand(s):
        return rng.randint(*corners(s)[::len(corners(s)) - 1])

    pairs = [(va, vb) for va in corners(shapes[0]) for vb in corners(shapes[1])]
    pairs += [(rand(shapes[0]), rand(shapes[1])) for _ in range(300)]

    async def tb(ctx):
        for va, vb in pairs:
            ctx.set(a, va)
            ctx.set(b, vb)
            ctx.set(x, abs(vb) % 1024)
            ctx.set(xs, va % 2048 - 1024)
            assert ctx.get(o) == va * vb, (va, vb)
            for i, (q, c) in enumerate(zip(co, consts * 2)):
                xv = abs(vb) % 1024 if i < len(consts) else va % 2048 - 1024
                assert ctx.get(q) == xv * c, (i, c)

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()


@pytest.mark.parametrize("n", [-2, 0, 1, 5, 12])
@pytest.mark.parametrize("rounding", ["half_up", "floor"])
@pytest.mark.parametrize("base_signed", [True, False])
def test_add_round_shift_is_base_plus_round_shift(n, rounding, base_signed):
    from amaranth.hdl import unsigned
    x, base = Signal(signed(20)), Signal(signed(14) if base_signed else unsigned(13))
    m = Module()
    out = Signal(signed(40))
    m.d.comb += out.eq(arith.add_round_shift(base, x, n, rounding))
    rng = random.Random(n * 7 + len(rounding) + base_signed)
    lo = -(1 << 13) if base_signed else 0
    hi = (1 << 13) - 1 if base_signed else (1 << 13) - 1
    vals = [(rng.randint(-(1 << 19), (1 << 19) - 1), rng.randint(lo, hi)) for _ in range(300)]
    vals += [(xv, bv) for xv in (-(1 << 19), -1, 0, 1, (1 << 19) - 1) for bv in (lo, 0, hi)]

    async def tb(ctx):
        for xv, bv in vals:
            ctx.set(x, xv)
            ctx.set(base, bv)
            assert ctx.get(out) == bv + fp.round_shift(xv, n, rounding), (xv, bv)

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()


@pytest.mark.parametrize("width,d,dsp", [(10, 500, None), (10, 10, None), (10, 10, 18), (7, 3, None),
                                         (4, 5, None), (11, 7, 16), (10, 1, None), (10, 16, None),
                                         (3, 9, None), (10, 784, 9)])
def test_const_divmod_is_exact_for_every_input(width, d, dsp):
    """``const_divmod`` (reciprocal product, no divider) gives ``x // d`` and ``x % d`` for every
    unsigned ``x`` of its width: powers of two, 1, ``d`` past the range, the paper's 500 lanes
    and U = 10, with and without the DSP split."""
    from amaranth.hdl import unsigned

    x = Signal(unsigned(width))
    q, r = arith.const_divmod(x, d, dsp)
    assert len(r) <= max((d - 1).bit_length(), 1) or d > (1 << width) - 1
    m = Module()
    qq, rr = Signal(len(q)), Signal(len(r))
    m.d.comb += [qq.eq(q), rr.eq(r)]
    sim = Simulator(m)
    bad = []

    async def tb(ctx):
        for v in range(1 << width):
            ctx.set(x, v)
            if (ctx.get(qq), ctx.get(rr)) != (v // d, v % d):
                bad.append(v)

    sim.add_testbench(tb)
    sim.run()
    assert bad == []


def test_const_divmod_refuses_signed_and_zero():
    with pytest.raises(ValueError, match="unsigned x and d >= 1"):
        arith.const_divmod(Signal(signed(8)), 3)
    with pytest.raises(ValueError, match="unsigned x and d >= 1"):
        arith.const_divmod(Signal(8), 0)


def _has_multiply(v) -> bool:
    from amaranth.hdl._ast import Operator
    if isinstance(v, Operator):
        return v.operator == "*" or any(_has_multiply(o) for o in v.operands)
    return any(_has_multiply(o) for o in getattr(v, "operands", ()))


@pytest.mark.parametrize("c,digits", [(0, 0), (1, 1), (10, 2), (500, 3), (784, 3), (392, 3), (255, 2), (0x5555, 8)])
def test_csd_digits_are_fewest_and_exact(c, digits):
    """The canonical signed digits sum to c, none adjacent, and their count is the known one."""
    ds = arith._csd_digits(c)
    assert sum(d * (1 << i) for i, d in ds) == c
    assert len(ds) == digits
    assert all(b - a >= 2 for (a, _), (b, _) in zip(ds, ds[1:]))


def test_const_mul_without_dsp_width_is_shifts_and_adds_for_few_digits():
    """Without a DSP width (ECP5, where Yosys would map ``x * c`` onto a distant DSP block), a
    constant of at most CONST_MUL_MAX_DIGITS signed digits is shifts and adds; more stay x * c."""
    x = Signal(10)
    assert not _has_multiply(arith.const_mul(x, 500))
    assert not _has_multiply(arith.const_mul(x, 10))
    assert _has_multiply(arith.const_mul(x, 0x5555))        # 8 digits: the DSP block is cheaper
    assert not _has_multiply(arith.const_mul(x, 0x5555, 18))   # a DSP width: always shifts and adds
