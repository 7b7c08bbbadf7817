"""8N1 UART receiver and transmitter with byte streams.

Both count ``divisor`` clock cycles per bit (``divisor = round(clk_hz / baud)``, at least 4).
The receiver samples each bit in its middle: after the falling edge of the start bit it waits
``divisor // 2`` cycles, checks the start bit is still low (else the edge was a glitch), then
takes one sample every ``divisor`` cycles. A byte whose stop bit is low is a framing error and
is dropped (``frame_err`` pulses). A byte the consumer has not taken when the next one
completes is lost (``overrun`` pulses): the host link answers a frame before the host sends the
next one, so this happens only when a host ignores the protocol.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["MIN_DIVISOR", "baud_divisor", "UARTRx", "UARTTx"]

#: Fewest clock cycles per bit the receiver handles (middle-of-bit sampling needs a few).
MIN_DIVISOR = 4


def baud_divisor(clk_hz: float, baud: int) -> int:
    """Cycles per bit for ``baud`` at ``clk_hz``; raises ValueError if the rate error exceeds 2 %."""
    if baud <= 0:
        raise ValueError(f"baud must be positive, not {baud!r}")
    div = round(clk_hz / baud)
    if div < MIN_DIVISOR:
        raise ValueError(f"baud {baud} is too fast for a {clk_hz / 1e6:g} MHz clock "
                         f"(needs at least {MIN_DIVISOR} cycles per bit)")
    err = abs(clk_hz / div - baud) / baud
    if err > 0.02:
        raise ValueError(f"baud {baud} at {clk_hz / 1e6:g} MHz is off by {100 * err:.1f} % (max 2 %)")
    return div


def _check_divisor(divisor) -> int:
    if not isinstance(divisor, int) or divisor < MIN_DIVISOR:
        raise ValueError(f"divisor must be an integer >= {MIN_DIVISOR}, not {divisor!r}")
    return divisor


class UARTRx(wiring.Component):
    """Receiver: ``rx`` wire in, one byte per stream transfer out.

    Members
    -------
    rx : In(1)
        The serial line (idle high); synchronised internally (two flip-flops).
    data : Out(stream of 8 bits)
    frame_err, overrun : Out(1)
        One-cycle pulses (see the module docstring).
    """

    def __init__(self, divisor: int):
        self.divisor = _check_divisor(divisor)
        super().__init__({
            "rx": In(1, init=1),
            "data": Out(stream.Signature(8)),
            "frame_err": Out(1),
            "overrun": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(div))
        bit = Signal(range(9))
        shreg = Signal(8)
        with m.If(self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(div // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(rx):            # glitch, not a start bit
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [timer.eq(div - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [timer.eq(div - 1), shreg.eq((shreg >> 1) | (rx << 7)), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    with m.If(rx):
                        m.d.sync += [self.data.payload.eq(shreg), self.data.valid.eq(1)]
                        m.d.comb += self.overrun.eq(self.data.valid & ~self.data.ready)
                    with m.Else():
                        m.d.comb += self.frame_err.eq(1)
                    # wait in IDLE for the line to go low again (the stop bit is high)
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """Transmitter: one byte per stream transfer in, ``tx`` wire out (1 start, 8 data, 1 stop bit).

    Members
    -------
    data : In(stream of 8 bits)
    tx : Out(1)
        The serial line (idle high).
    """

    def __init__(self, divisor: int):
        self.divisor = _check_divisor(divisor)
        super().__init__({"data": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        timer = Signal(range(div))
        shreg = Signal(10, init=0x3FF)    # stop . data[7:0] . start, LSB first
        bits = Signal(range(11))
        m.d.comb += self.tx.eq(shreg[0])
        with m.If(bits == 0):
            m.d.comb += self.data.ready.eq(1)
            with m.If(self.data.valid):
                m.d.sync += [shreg.eq((self.data.payload << 1) | (1 << 9)), bits.eq(10), timer.eq(div - 1)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            m.d.sync += [shreg.eq((shreg >> 1) | (1 << 9)), bits.eq(bits - 1), timer.eq(div - 1)]
        return m
