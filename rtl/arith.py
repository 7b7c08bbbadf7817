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

from amaranth.hdl import Mux, Shape, Value, signed, unsigned

from golden_model.config import RegFormat
from golden_model.fixedpoint import OVERFLOW_MODES, ROUNDING_MODES

__all__ = ["FAULTS", "reg_shape", "shift_right_floor", "shift_right_half_up", "round_shift",
           "align", "saturate", "wrap", "narrow", "overflows", "clip_unit"]

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
