"""Named rounding, saturation and wrap helpers: the arithmetic rules of the hardware.

Every narrowing in the fixed-point model (and every matching RTL expression) goes through one
of these functions, so a rounding mode or an overflow rule is written exactly once. All
functions work on Python ints and on int64 numpy arrays alike.

Notation: a code ``c`` with ``f`` fraction bits stands for the real value ``c * 2**-f``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ROUNDING_MODES", "OVERFLOW_MODES",
    "shift_right_floor", "shift_right_half_up", "round_shift", "align",
    "code_range", "saturate", "wrap", "clip_unit", "quantise_real",
]

#: Rounding modes a register may declare.
#: ``"floor"``: truncate towards minus infinity (what an arithmetic right shift does).
#: ``"half_up"``: round to nearest, ties towards plus infinity.
ROUNDING_MODES = ("floor", "half_up")

#: Overflow rules a register may declare.
#: ``"saturate"``: clamp to the representable range; ``"wrap"``: two's-complement wrap-around;
#: ``"clip"``: the algorithm's clamp of a state to the closed interval [0, 1] (spec section 1).
OVERFLOW_MODES = ("saturate", "wrap", "clip")


def shift_right_floor(x, n: int):
    """Arithmetic shift right: ``floor(x / 2**n)`` for ``n >= 0``."""
    if n < 0:
        raise ValueError(f"shift must be >= 0, not {n!r}")
    return x >> n


def shift_right_half_up(x, n: int):
    """Round to nearest, ties up: ``floor((x + 2**(n-1)) / 2**n)`` for ``n > 0``; ``x`` if ``n == 0``."""
    if n < 0:
        raise ValueError(f"shift must be >= 0, not {n!r}")
    if n == 0:
        return x
    return (x + (1 << (n - 1))) >> n


def round_shift(x, n: int, rounding: str):
    """Divide by ``2**n`` with the named rounding; a negative ``n`` is an exact left shift.

    ``n > 0``: ``floor(x / 2**n)`` (``"floor"``) or ``floor((x + 2**(n-1)) / 2**n)`` (``"half_up"``).
    ``n <= 0``: ``x * 2**-n`` (exact, no rounding).
    """
    if n == 0:
        return x
    if n < 0:
        return x << (-n)
    if rounding == "floor":
        return shift_right_floor(x, n)
    if rounding == "half_up":
        return shift_right_half_up(x, n)
    raise ValueError(f"rounding must be one of {ROUNDING_MODES}, not {rounding!r}")


def align(x, from_frac: int, to_frac: int, rounding: str = "half_up"):
    """Re-express a code with ``from_frac`` fraction bits as one with ``to_frac`` fraction bits.

    ``x * 2**(to_frac - from_frac)``, exact when ``to_frac >= from_frac``, otherwise rounded by
    :func:`round_shift` with the named rounding.
    """
    return round_shift(x, from_frac - to_frac, rounding)


def code_range(width: int, signed: bool) -> tuple[int, int]:
    """Smallest and largest code of a ``width``-bit register.

    signed: ``[-2**(width-1), 2**(width-1) - 1]``; unsigned: ``[0, 2**width - 1]``.
    """
    if signed:
        return -(1 << (width - 1)), (1 << (width - 1)) - 1
    return 0, (1 << width) - 1


def saturate(x, lo: int, hi: int):
    """Clamp to the closed range: ``min(max(x, lo), hi)``."""
    if isinstance(x, np.ndarray):
        return np.clip(x, lo, hi)
    return min(max(x, lo), hi)


def wrap(x, width: int, signed: bool):
    """Two's-complement wrap-around to ``width`` bits.

    unsigned: ``x mod 2**width``; signed: ``((x + 2**(width-1)) mod 2**width) - 2**(width-1)``.
    """
    m = 1 << width
    if signed:
        h = 1 << (width - 1)
        return ((x + h) % m) - h
    return x % m


def clip_unit(x, frac: int):
    """The algorithm's state clamp ``clip(s, 0, 1)`` on codes: ``min(max(x, 0), 2**frac)``."""
    return saturate(x, 0, 1 << frac)


def quantise_real(x, frac: int, rounding: str = "half_up"):
    """Real value(s) to integer code(s) with ``frac`` fraction bits (no range check).

    ``floor(x * 2**frac + 1/2)`` for ``"half_up"``, ``floor(x * 2**frac)`` for ``"floor"``.
    """
    scaled = np.asarray(x, dtype=np.float64) * float(2.0 ** frac)
    if rounding == "half_up":
        out = np.floor(scaled + 0.5)
    elif rounding == "floor":
        out = np.floor(scaled)
    else:
        raise ValueError(f"rounding must be one of {ROUNDING_MODES}, not {rounding!r}")
    out = out.astype(np.int64)
    return int(out) if np.ndim(out) == 0 else out
