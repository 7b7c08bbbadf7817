"""Rounding, saturation and wrap as Amaranth expressions: the RTL twins of
:mod:`golden_model.fixedpoint`.

Each function here mirrors one helper there and is named after it; its docstring repeats the
formula. Amaranth's ``+``, ``-`` and ``*`` grow their result width so no intermediate ever
overflows (exactly like the golden model's int64 arithmetic); narrowing happens only in
:func:`narrow` and :func:`clip_unit`, at the architectural registers.

A ``fault`` argument selects a deliberately broken variant (used only by the tests that prove
the RTL-vs-model comparison catches arithmetic bugs): ``"wrap"`` wraps where the format says
saturate, ``"floor"`` rounds floor where the format says half_up.
"""

from __future__ import annotations


import numpy as np
from amaranth.hdl import Cat, Const, Mux, Shape, Value, signed, unsigned

from golden_model.config import RegFormat
from golden_model.fixedpoint import OVERFLOW_MODES, ROUNDING_MODES

__all__ = ["FAULTS", "reg_shape", "shift_right_floor", "shift_right_half_up", "round_shift",
           "align", "saturate", "wrap", "narrow", "overflows", "clip_unit", "mul", "const_mul",
           "check_dsp_width", "add_round_shift", "const_divmod"]

#: Deliberate arithmetic faults the RTL can be built with (tests only).
FAULTS = (None, "wrap", "floor")


def _check_fault(fault):
    if fault not in FAULTS:
        raise ValueError(f"fault must be one of {FAULTS}, not {fault!r}")


def reg_shape(fmt: RegFormat) -> Shape:
    """Amaranth shape of a register: ``signed(width)`` or ``unsigned(width)``."""
    return signed(fmt.width) if fmt.signed else unsigned(fmt.width)


def shift_right_floor(x: Value, n: int) -> Value:
    """fixedpoint.shift_right_floor: ``floor(x / 2**n)`` (arithmetic shift right)."""
    if n < 0:
        raise ValueError(f"shift must be >= 0, not {n!r}")
    return x >> n


def shift_right_half_up(x: Value, n: int) -> Value:
    """fixedpoint.shift_right_half_up: ``floor((x + 2**(n-1)) / 2**n)``; ``x`` when ``n == 0``."""
    if n < 0:
        raise ValueError(f"shift must be >= 0, not {n!r}")
    if n == 0:
        return x
    return (x + (1 << (n - 1))) >> n


def round_shift(x: Value, n: int, rounding: str, fault=None) -> Value:
    """fixedpoint.round_shift: divide by ``2**n`` with the named rounding; ``n <= 0`` is ``x << -n``."""
    _check_fault(fault)
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"rounding must be one of {ROUNDING_MODES}, not {rounding!r}")
    if n <= 0:
        return x << (-n)
    if rounding == "floor" or fault == "floor":
        return shift_right_floor(x, n)
    return shift_right_half_up(x, n)


def add_round_shift(base: Value, x: Value, n: int, rounding: str, fault=None) -> Value:
    """``base + round_shift(x, n, rounding)`` (exact) with one adder: for ``n > 0`` it is
    ``(x + base * 2**n + 2**(n-1)) >> n`` (half_up; no ``2**(n-1)`` for floor), and
    ``base * 2**n + 2**(n-1)`` is a concatenation, not a sum. Shortens the neuron's
    multiply-round-accumulate paths by one carry chain."""
    _check_fault(fault)
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"rounding must be one of {ROUNDING_MODES}, not {rounding!r}")
    base, x = Value.cast(base), Value.cast(x)
    if n <= 0:
        return base + round_shift(x, n, rounding, fault)
    half = 0 if (rounding == "floor" or fault == "floor") else 1 << (n - 1)
    offset = Cat(Const(half, n), base)
    if base.shape().signed:
        offset = offset.as_signed()
    return (x + offset) >> n


def align(x: Value, from_frac: int, to_frac: int, rounding: str = "half_up", fault=None) -> Value:
    """fixedpoint.align: ``x * 2**(to_frac - from_frac)``, rounded by :func:`round_shift` when narrowing."""
    return round_shift(x, from_frac - to_frac, rounding, fault)


def saturate(x: Value, lo: int, hi: int) -> Value:
    """fixedpoint.saturate: ``min(max(x, lo), hi)``."""
    return Mux(x < lo, lo, Mux(x > hi, hi, x))


def wrap(x: Value, width: int, signed_: bool) -> Value:
    """fixedpoint.wrap: two's-complement wrap-around to ``width`` bits (keep the low bits)."""
    low = x.as_unsigned()[:width]
    return low.as_signed() if signed_ else low


def overflows(x: Value, fmt: RegFormat) -> Value:
    """1 when ``x`` (already at ``fmt.frac``) lies outside ``fmt``'s code range (FixedModel._narrow counts these)."""
    return (x < fmt.min_code) | (x > fmt.max_code)


def narrow(x: Value, fmt: RegFormat, fault=None) -> Value:
    """FixedModel._narrow: fit ``x`` into ``fmt`` by its overflow rule (fixedpoint.saturate or fixedpoint.wrap).

    The result has exactly ``reg_shape(fmt)``.
    """
    _check_fault(fault)
    if fmt.overflow not in OVERFLOW_MODES or fmt.overflow == "clip":
        raise ValueError(f"overflow must be 'saturate' or 'wrap' here, not {fmt.overflow!r}")
    if fmt.overflow == "wrap" or fault == "wrap":
        return wrap(x, fmt.width, fmt.signed)
    sat = saturate(x, fmt.min_code, fmt.max_code)
    return sat.as_unsigned()[:fmt.width].as_signed() if fmt.signed else sat.as_unsigned()[:fmt.width]


def clip_unit(x: Value, frac: int) -> Value:
    """fixedpoint.clip_unit: the state clamp ``min(max(x, 0), 2**frac)``, as ``unsigned(frac + 1)``."""
    return saturate(x, 0, 1 << frac).as_unsigned()[:frac + 1]


# -- multipliers -------------------------------------------------------------------------------
# The DSP operand width is a build option passed down explicitly (``Network(cfg, dsp_width=..)``
# -> cores -> the neuron's expression builders -> ``mul(.., dsp=..)``); ``None`` maps every
# product as a plain ``*``.

def check_dsp_width(width):
    """``width`` as an int >= 2, or None (no DSP mapping)."""
    if width is None:
        return None
    if isinstance(width, bool) or not isinstance(width, int) or width < 2:
        raise ValueError(f"dsp width must be an int >= 2 or None, not {width!r}")
    return int(width)


def _shift_add(a: Value, b: Value) -> Value:
    """``a * b`` as shifts and adds over the bits of ``b`` (two's complement: its top bit, when
    ``b`` is signed, weighs ``-2**(width-1)``); for a narrow ``b``."""
    b_shape = b.shape()
    terms = []
    for i in range(b_shape.width):
        t = Mux(b[i], a << i, 0)
        terms.append(-t if (b_shape.signed and i == b_shape.width - 1) else t)
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def mul(a: Value, b: Value, dsp=None) -> Value:
    """``a * b`` (exact). With ``dsp`` (the DSP blocks' operand width) a product whose wider
    operand is too wide for one DSP block is split: ``b = b_hi * 2**k + b_lo`` with ``b_lo`` the low ``k`` bits
    (unsigned), ``a * b_lo`` one DSP block and ``a * b_hi`` (a few bits) shifts and adds. Without
    it, or when both operands fit, plain ``a * b``."""
    a, b = Value.cast(a), Value.cast(b)
    w = check_dsp_width(dsp)
    if w is None:
        return a * b
    if a.shape().width > b.shape().width:
        a, b = b, a
    a_shape, b_shape = a.shape(), b.shape()
    # a DSP operand of w bits, or w-1 magnitude bits when the product is signed
    k = w if not a_shape.signed else w - 1
    limit_b = w if not (a_shape.signed or b_shape.signed) else w - 1
    if a_shape.width > k or b_shape.width <= limit_b:
        return a * b
    lo = b[:k]                                   # unsigned
    hi = b[k:].as_signed() if b_shape.signed else b[k:]
    out = (a * lo + (_shift_add(a, hi) << k)).as_unsigned()[:a_shape.width + b_shape.width]
    return out.as_signed() if (a_shape.signed or b_shape.signed) else out   # the exact product's width


#: Without a DSP width, a constant product of at most this many canonical signed digits is
#: still shifts and adds (at most two adders): on ECP5 a DSP block for ``row * 500`` costs its
#: 3.9 ns plus two trips to the DSP row (6.5 ns of routing in the paper network's build), two
#: carry chains in place about 2 ns.
CONST_MUL_MAX_DIGITS = 3


def _csd_digits(c: int) -> list:
    """``[(i, d)]``: ``c = sum d * 2**i`` with ``d`` in {+1, -1} and no two adjacent digits
    (the canonical signed-digit, non-adjacent form: the fewest nonzero digits)."""
    digits, i, n = [], 0, c
    while n:
        if n & 1:
            d = 2 - (n & 3)         # +1 or -1
            digits.append((i, d))
            n -= d
        n >>= 1
        i += 1
    return digits


def const_mul(x: Value, c: int, dsp=None) -> Value:
    """``x * c`` for a constant integer ``c >= 0`` (exact). Shifts and adds over ``c``'s
    canonical signed digits (500 = 512 - 16 + 4: two adders) instead of a DSP block when
    ``dsp`` is set, or when ``c`` has at most :data:`CONST_MUL_MAX_DIGITS` of them; otherwise
    plain ``x * c``."""
    x = Value.cast(x)
    c = int(c)
    if c < 0:
        raise ValueError(f"c must be >= 0, not {c!r}")
    digits = _csd_digits(c)
    if check_dsp_width(dsp) is None and len(digits) > CONST_MUL_MAX_DIGITS:
        return x * c
    if not digits:
        return Const(0)
    pos = [x << i for i, d in digits if d > 0]
    neg = [x << i for i, d in digits if d < 0]
    out = pos[0]
    for t in pos[1:]:
        out = out + t
    for t in neg:
        out = out - t
    # the value is c * x >= 0 for unsigned x: keep the result unsigned like x * c
    if not x.shape().signed:
        out = out.as_unsigned()[:x.shape().width + c.bit_length()]
    return out


def const_divmod(x: Value, d: int, dsp=None) -> tuple:
    """``(x // d, x % d)`` for an unsigned ``x`` and a constant ``d >= 1``, without a divider:
    ``q = (x * M) >> s`` with ``M = ceil(2**s / d)`` and the smallest ``s`` that is exact for
    every ``x`` of its width (checked for each at elaboration), then ``r = x - q * d``. A power
    of two is a slice. Yosys builds ``x // d`` as a full array divider, a chain of ``width``
    subtractors (about 30 ns for 10 bits on an ECP5); this is one product and one subtraction."""
    x = Value.cast(x)
    d = int(d)
    if x.shape().signed or d < 1:
        raise ValueError(f"const_divmod needs an unsigned x and d >= 1, not {x.shape()} and {d}")
    w = x.shape().width
    top = (1 << w) - 1
    qw, rw = max((top // d).bit_length(), 1), max((d - 1).bit_length(), 1)
    if d > top:
        return Const(0, qw), x
    if d & (d - 1) == 0:
        k = d.bit_length() - 1
        return x >> k, (x[:k] if k else Const(0, 1))
    xs = np.arange(top + 1, dtype=np.int64)
    s = w
    while True:
        M = -(-(1 << s) // d)
        if w + M.bit_length() < 62 and np.array_equal((xs * M) >> s, xs // d):
            break
        s += 1
        if s > 2 * w + d.bit_length():      # cannot happen (s = w + ceil(log2 d) is exact)
            raise AssertionError(f"no exact reciprocal of {d} for {w} bits")
    q = (const_mul(x, M, dsp) >> s)[:qw]
    r = (x - const_mul(q, d, dsp))[:rw]
    return q, r
