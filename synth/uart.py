"""8N1 UART receiver and transmitter with byte streams, at an exact fractional bit period.

A bit lasts ``period = clk_hz / baud`` clock cycles, kept as an exact fraction ``p / q``
(:func:`baud_period`): a bit clock adds ``q`` to a phase accumulator every cycle and ticks when
it passes ``p``, so each bit lasts ``floor(p/q)`` or ``ceil(p/q)`` cycles, every bit edge lies
within one cycle of its ideal time, and the rate is exact (3 Mbaud from 50 MHz: 50/3 cycles,
bits of 17, 17, 16 cycles). An integer period (``q == 1``) is a plain divider.

The receiver samples each bit in its middle: after the falling edge of the start bit it waits
half a bit, checks the start bit is still low (else the edge was a glitch), then takes one
sample per bit. A byte whose stop bit is low is a framing error and is dropped (``frame_err``
pulses). A byte the consumer has not taken when the next one completes is lost (``overrun``
pulses): the host link answers a frame before the host sends the next one, so this happens
only when a host ignores the protocol. The transmitter's bit clock runs freely and a byte
starts on one of its ticks, so back-to-back bytes keep the exact rate.
"""

from __future__ import annotations

from fractions import Fraction
from numbers import Rational

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["MIN_DIVISOR", "baud_period", "UARTRx", "UARTTx"]

#: Fewest clock cycles per bit the receiver handles (middle-of-bit sampling needs a few).
MIN_DIVISOR = 4


def baud_period(clk_hz, baud) -> Fraction:
    """Exact clock cycles per bit, ``clk_hz / baud``, as a fraction.

    Raises ValueError when the clock is not a whole number of Hz, ``baud`` is not a positive
    integer, or the period is shorter than ``MIN_DIVISOR`` cycles."""
    if isinstance(baud, bool) or not isinstance(baud, int) or baud <= 0:
        raise ValueError(f"baud must be a positive integer, not {baud!r}")
    if isinstance(clk_hz, bool) or not isinstance(clk_hz, (int, float, Fraction)) or clk_hz <= 0 \
            or int(clk_hz) != clk_hz:
        raise ValueError(f"clk_hz must be a positive whole number of Hz, not {clk_hz!r}")
    period = Fraction(int(clk_hz), baud)
    if period < MIN_DIVISOR:
        raise ValueError(f"baud {baud} is too fast for a {clk_hz / 1e6:g} MHz clock "
                         f"(needs at least {MIN_DIVISOR} cycles per bit, has {float(period):.2f})")
    return period


def _check_period(period) -> Fraction:
    if isinstance(period, bool) or not isinstance(period, Rational) or period < MIN_DIVISOR:
        raise ValueError(f"period must be an integer or Fraction >= {MIN_DIVISOR} cycles, not {period!r}")
    return Fraction(period)


class _BitClock:
    """``tick`` once every ``period`` cycles on average, each tick within one cycle of its ideal
    time: ``phase`` (in units of 1/q cycle) grows by ``q`` a cycle and ticks when it passes ``p``.
    :meth:`restart` (written after the free-running update, so it wins) sets the phase."""

    def __init__(self, m: Module, period: Fraction, name: str):
        self.p, self.q = period.numerator, period.denominator
        self.phase = Signal(range(self.p), name=f"{name}_phase")
        self.tick = Signal(name=f"{name}_tick")
        m.d.comb += self.tick.eq(self.phase >= self.p - self.q)
        with m.If(self.tick):
            m.d.sync += self.phase.eq(self.phase + self.q - self.p)
        with m.Else():
            m.d.sync += self.phase.eq(self.phase + self.q)

    def restart_half(self, m: Module):
        """The next tick comes half a bit from now (``floor(p/2)`` cycles when ``q == 1``)."""
        m.d.sync += self.phase.eq(self.p - self.p // 2)


class UARTRx(wiring.Component):
    """Receiver: ``rx`` wire in, one byte per stream transfer out.

    Parameters
    ----------
    period : int or Fraction
        Clock cycles per bit (:func:`baud_period`).

    Members
    -------
    rx : In(1)
        The serial line (idle high); synchronised internally (two flip-flops).
    data : Out(stream of 8 bits)
    frame_err, overrun : Out(1)
        One-cycle pulses (see the module docstring).
    """

    def __init__(self, period):
        self.period = _check_period(period)
        super().__init__({
            "rx": In(1, init=1),
            "data": Out(stream.Signature(8)),
            "frame_err": Out(1),
            "overrun": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)
        clock = _BitClock(m, self.period, "rx_bit")
        bit = Signal(range(9))
        shreg = Signal(8)
        with m.If(self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    clock.restart_half(m)
                    m.next = "START"
            with m.State("START"):
                with m.If(clock.tick):
                    with m.If(rx):              # glitch, not a start bit
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += bit.eq(0)
                        m.next = "DATA"
            with m.State("DATA"):
                with m.If(clock.tick):
                    m.d.sync += [shreg.eq((shreg >> 1) | (rx << 7)), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(clock.tick):
                    with m.If(rx):
                        m.d.sync += [self.data.payload.eq(shreg), self.data.valid.eq(1)]
                        m.d.comb += self.overrun.eq(self.data.valid & ~self.data.ready)
                    with m.Else():
                        m.d.comb += self.frame_err.eq(1)
                    # wait in IDLE for the line to go low again (the stop bit is high)
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """Transmitter: one byte per stream transfer in, ``tx`` wire out (1 start, 8 data, 1 stop bit)
    at ``period`` clock cycles per bit (an int or a Fraction, :func:`baud_period`). Members:
    ``data`` (In, stream of 8 bits) and ``tx`` (Out(1), the serial line, idle high)."""

    def __init__(self, period):
        self.period = _check_period(period)
        super().__init__({"data": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        clock = _BitClock(m, self.period, "tx_bit")
        shreg = Signal(10, init=0x3FF)    # stop . data[7:0] . start, LSB first
        bits = Signal(range(11))
        m.d.comb += self.tx.eq(shreg[0])
        with m.If(clock.tick):
            with m.If(bits <= 1):       # idle, or the stop bit ends now: the next byte may start
                m.d.comb += self.data.ready.eq(1)
                with m.If(self.data.valid):
                    m.d.sync += [shreg.eq((self.data.payload << 1) | (1 << 9)), bits.eq(10)]
                with m.Else():
                    m.d.sync += bits.eq(0)
            with m.Else():
                m.d.sync += [shreg.eq((shreg >> 1) | (1 << 9)), bits.eq(bits - 1)]
        return m
