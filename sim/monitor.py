"""AER spike-bus monitor: records every spike event on the network's internal spike bus with its tick.

The network top exposes only the host streams, so the monitor watches each core's spike stream
inside the design (``core{l}.spikes__valid/ready/payload``, kept visible by Verilator's
``--public-flat-rw`` and always visible in Icarus): one event per handshake (valid and ready
high at a rising edge), tagged with its tick ``t_done + 1`` (the top's tick counter counts
finished ticks; a tick's spikes travel during its update phase). The payload is the neuron
address; within a tick a layer's events must arrive in address order.

Cost: the monitor sleeps until ``valid`` rises and then wakes once per cycle while it stays high,
so Python runs about once per spike, not once per cycle.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import cocotb
from cocotb.triggers import FallingEdge, RisingEdge

from golden_model.config import EqSpikeConfig

__all__ = ["SpikeMonitor"]


class SpikeMonitor:
    """Records ``(tick, layer, neuron)`` for every spike on the bus.

    Members
    -------
    events : list of (tick, layer, neuron)
        In bus order.
    stalls : list of int
        Per layer: cycles a spike was offered but not taken (bus backpressure seen).
    """

    def __init__(self, dut, cfg: EqSpikeConfig):
        self.dut, self.cfg = dut, cfg
        self.events = []
        self.stalls = [0] * cfg.n_layers
        self._tasks = []
        self._by_tick = defaultdict(list)

    def start(self):
        for l in range(self.cfg.n_layers):
            self._tasks.append(cocotb.start_soon(self._watch(l)))
        return self

    def stop(self):
        for t in self._tasks:
            t.cancel()
        self._tasks = []

    async def _watch(self, l: int):
        core = getattr(self.dut, f"core{l}")
        valid, ready, payload = core.spikes__valid, core.spikes__ready, core.spikes__payload
        t_done, clk = self.dut.t_done, self.dut.clk
        while True:
            if not valid.value:
                await RisingEdge(valid)
            # mid-cycle: valid, ready and payload are settled for the coming rising edge
            await FallingEdge(clk)
            if valid.value:
                if ready.value:
                    ev = (int(t_done.value) + 1, l, int(payload.value))
                    self.events.append(ev)
                    self._by_tick[ev[0]].append(ev)
                else:
                    self.stalls[l] += 1

    def spikes(self, tick: int) -> list:
        """Spikes of ``tick`` as one (n_l,) 0/1 array per layer; raises if a layer's events of
        the tick are out of address order or repeat a neuron."""
        out = [np.zeros(n, dtype=np.int64) for n in self.cfg.layers]
        last = [-1] * self.cfg.n_layers
        for _, l, n in self._by_tick.get(tick, ()):
            if n <= last[l]:
                raise AssertionError(f"tick {tick} layer {l}: spike of neuron {n} after neuron {last[l]} "
                                     "(bus events must be in address order, once per neuron)")
            if n >= self.cfg.layers[l]:
                raise AssertionError(f"tick {tick} layer {l}: spike address {n} outside the layer")
            last[l] = n
            out[l][n] = 1
        return out

    def forget(self, before_tick: int | None = None):
        """Drop recorded events (all, and the stall counts, or only those of ticks before
        ``before_tick``): call at every RESET, since the tick counter restarts."""
        if before_tick is None:
            self.events.clear()
            self._by_tick.clear()
            self.stalls = [0] * self.cfg.n_layers
            return
        for t in [t for t in self._by_tick if t < before_tick]:
            del self._by_tick[t]
