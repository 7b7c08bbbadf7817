"""The spike bus: address-event (AER) streams between layer cores.

A spike of neuron ``j`` of layer ``l`` travels as one ``amaranth.lib.stream`` transfer whose
payload is ``j``. The link it travels on says which layer sent it and in which direction
(every receiving core has one queue per neighbour), so the payload needs no layer id.
Transfers follow the ``lib.stream`` rules: a payload moves on a cycle where ``valid & ready``;
``valid`` never waits for ``ready``.

:class:`Fork` copies one stream to several (a layer's spikes go both up and down);
:class:`Throttle` inserts pseudo-random idle and backpressure cycles (test builds only).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

__all__ = ["address_shape", "spike_signature", "Fork", "Throttle"]


def address_shape(n: int):
    """Shape of a neuron address in a layer of ``n`` neurons (at least one bit)."""
    if n < 1:
        raise ValueError(f"layer size must be >= 1, not {n!r}")
    return unsigned(max(1, ceil_log2(n)))


def spike_signature(n: int) -> stream.Signature:
    """AER stream of a layer of ``n`` neurons: payload = source neuron address."""
    return stream.Signature(address_shape(n))


class Fork(wiring.Component):
    """Broadcast one stream to ``n`` streams; the input transfer completes once every output took it.

    Each output takes the payload at its own pace (a ``done`` flag per output remembers which
    have), so a stalled output delays but never duplicates or drops the event for the others.

    Members
    -------
    i : In(stream)
    o : Out(stream).array(n)
    busy : Out(1)
        An event is partly delivered.
    """

    def __init__(self, payload_shape, n: int):
        if n < 1:
            raise ValueError(f"n must be >= 1, not {n!r}")
        self.n = n
        super().__init__({
            "i": In(stream.Signature(payload_shape)),
            "o": Out(stream.Signature(payload_shape)).array(n),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        done = Signal(self.n)
        taken = Cat(done[k] | (self.o[k].valid & self.o[k].ready) for k in range(self.n))
        for k in range(self.n):
            m.d.comb += [self.o[k].payload.eq(self.i.payload), self.o[k].valid.eq(self.i.valid & ~done[k])]
        m.d.comb += [self.i.ready.eq(taken.all()), self.busy.eq(done.any())]
        with m.If(self.i.valid):
            with m.If(taken.all()):
                m.d.sync += done.eq(0)
            with m.Else():
                m.d.sync += done.eq(taken)
        return m


class Throttle(wiring.Component):
    """Pass a stream through, blocking it on pseudo-random cycles (a 16-bit Fibonacci LFSR).

    While blocked the output shows no ``valid`` (idle) and the input sees no ``ready``
    (backpressure). A ``valid`` once shown stays until its transfer (the AXI-stream rule).
    Holds no payload, so it can neither drop nor duplicate one.
    """

    def __init__(self, payload_shape, seed: int):
        if not 1 <= seed < (1 << 16):
            raise ValueError(f"seed must be in 1..65535, not {seed!r}")
        self.seed = seed
        super().__init__({
            "i": In(stream.Signature(payload_shape)),
            "o": Out(stream.Signature(payload_shape)),
        })

    def elaborate(self, platform):
        m = Module()
        lfsr = Signal(16, init=self.seed)
        m.d.sync += lfsr.eq(Cat(lfsr[15] ^ lfsr[13] ^ lfsr[12] ^ lfsr[10], lfsr[:15]))
        shown = Signal()                # valid shown last cycle, not yet taken
        go = lfsr[0] | lfsr[3] | shown  # open about 3 cycles in 4
        m.d.sync += shown.eq(self.o.valid & ~self.o.ready)
        m.d.comb += [
            self.o.payload.eq(self.i.payload),
            self.o.valid.eq(self.i.valid & go),
            self.i.ready.eq(self.o.ready & go),
        ]
        return m
