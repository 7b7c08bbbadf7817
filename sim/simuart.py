"""A byte transport into :class:`synth.top.SerialTop` running in Amaranth's simulator.

The host side of the serial line is simulated bit by bit: ``write`` queues bytes that a
background process shifts onto ``rx`` (8N1, ``divisor`` cycles per bit, a fraction when the
rate is not a whole divisor of the clock: bit edges then fall on the nearest cycle); a second process
decodes ``tx`` into bytes for ``read``. ``read`` advances the simulation until enough bytes
came or ``idle_cycles`` passed with the board idle (busy LED off) and no byte on the wire, so
:class:`synth.driver.Board` drives the simulated board exactly as a serial port.
"""

from __future__ import annotations

import math
from collections import deque
from fractions import Fraction

from amaranth.sim import Simulator

from synth.top import SerialTop

__all__ = ["SimTransport"]

CLOCK_PERIOD = 1e-6    # simulated seconds per cycle (the value does not matter)


class SimTransport:
    """Simulated board behind a byte transport.

    Parameters
    ----------
    cfg : EqSpikeConfig
    divisor : int or Fraction
        Cycles per bit on the simulated line (small: simulation time is the cost), the board's
        bit period too (``Fraction(50, 3)``: 3 Mbaud at 50 MHz).
    timeout : int
        The host link's mid-frame timeout, in cycles.
    idle_cycles : int
        ``read`` gives up after this many cycles with the board idle and nothing received.
    preload : FixedModel or None
        Weights and biases written straight into the network's memories before the first
        cycle (``sim.rtl_harness``'s backdoor; the layout the host link's WRITEs produce), so
        a test of a large network need not send every weight through the simulated line.
    vcd : str or None
        Write a waveform (slow; debugging only).

    Members
    -------
    top : SerialTop
    cycles : int
        Cycles simulated so far.
    """

    def __init__(self, cfg, divisor=4, timeout: int = 2000, idle_cycles: int = 4000, preload=None,
                 vcd=None):
        self.divisor, self.idle_cycles = Fraction(divisor), idle_cycles
        # the clock rate only feeds INFO and the LED timings: a multiple of 115200 baud
        p, q = self.divisor.numerator, self.divisor.denominator
        self.top = SerialTop(cfg, clk_hz=p * 115200, baud=q * 115200, bit_period=self.divisor, timeout=timeout)
        self.to_board = deque()
        self.from_board = bytearray()
        self.cycles = 0
        self.sim = Simulator(self.top)
        self.sim.add_clock(CLOCK_PERIOD)
        self.sim.add_testbench(self._drive_rx, background=True)
        self.sim.add_testbench(self._watch_tx, background=True)
        self.sim.add_testbench(self._watch_busy, background=True)
        self._busy = False
        if preload is not None:
            self.sim.add_testbench(self._preload(preload))
        self._vcd = self.sim.write_vcd(vcd) if vcd else None
        if self._vcd:
            self._vcd.__enter__()
        self._sending = False

    # The processes await one-shot triggers only (no ``tick().repeat`` or ``async for``): a
    # background process left suspended inside an async generator complains when collected.
    @staticmethod
    async def _ticks(ctx, n: int):
        for _ in range(n):
            await ctx.tick()

    def _bit_cycles(self, n_bits: int):
        """Cycles of each of ``n_bits`` bits of a frame: edges ``round(i * divisor)`` cycles
        after its start."""
        edges = [round(i * self.divisor) for i in range(n_bits + 1)]
        return [b - a for a, b in zip(edges, edges[1:])]

    async def _drive_rx(self, ctx):
        ctx.set(self.top.rx, 1)
        idle = round(self.divisor)
        while True:
            if not self.to_board:
                self._sending = False
                await self._ticks(ctx, idle)
                continue
            self._sending = True
            byte = self.to_board.popleft()
            bits = [0] + [(byte >> i) & 1 for i in range(8)] + [1]
            for bit, cycles in zip(bits, self._bit_cycles(len(bits))):
                ctx.set(self.top.rx, bit)
                await self._ticks(ctx, cycles)

    async def _watch_tx(self, ctx):
        # sample the middle of each bit: floor((i + 1/2) * divisor) cycles after the start edge
        at = [math.floor((i + Fraction(1, 2)) * self.divisor) for i in range(10)]
        waits = [at[0]] + [b - a for a, b in zip(at, at[1:])]
        while True:
            await ctx.negedge(self.top.tx)
            await self._ticks(ctx, waits[0])     # middle of the start bit
            byte = 0
            for i in range(8):
                await self._ticks(ctx, waits[1 + i])
                byte |= ctx.get(self.top.tx) << i
            await self._ticks(ctx, waits[9])     # stop bit
            self.from_board.append(byte)

    def _step(self, cycles: int):
        self.cycles += cycles
        self.sim.run_until(self.cycles * CLOCK_PERIOD)

    # -- transport interface ---------------------------------------------------------------------
    def write(self, data: bytes) -> int:
        self.to_board.extend(bytes(data))
        return len(data)

    def read(self, n: int) -> bytes:
        idle = 0
        chunk = 8 * round(self.divisor)
        while len(self.from_board) < n and idle < self.idle_cycles:
            before = len(self.from_board)
            self._step(chunk)
            busy = self._sending or self.to_board or self.sim_busy()
            idle = 0 if (busy or len(self.from_board) != before) else idle + chunk
        out = bytes(self.from_board[:n])
        del self.from_board[:n]
        return out

    def sim_busy(self) -> bool:
        """The board's busy LED: a frame is being received or answered."""
        return self._busy

    def _preload(self, model):
        async def preload(ctx):
            from sim.rtl_harness import RTLHarness
            h = RTLHarness.__new__(RTLHarness)
            h.cfg, h.dut, h.ctx = model.cfg, self.top.network, ctx
            h.load_backdoor(model)
        return preload

    async def _watch_busy(self, ctx):
        while True:
            await ctx.changed(self.top.leds)
            self._busy = bool(ctx.get(self.top.leds) & 2)

    def close(self):
        if self._vcd:
            self._vcd.__exit__(None, None, None)
            self._vcd = None
