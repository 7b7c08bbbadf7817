"""cocotb driver of the network top's host interface (the generated Verilog's ``cmd``/``rsp`` streams).

Same transaction API as :class:`sim.rtl_harness.RTLHarness` (Amaranth's simulator), so tests
compare with ``==`` the same way: ``load(model)``, ``reset(x, y)``, ``tick(nudge_sign)``,
``run_ticks(n, sign)``, ``read_reg``, ``status``, ``counters`` and the zero-time backdoor
``registers()`` (every per-neuron register, read from the state memories through VPI).

Host-side stream patterns (cocotbext-axi style): ``idle`` is the probability of 1..``max_gap``
idle cycles before a command is offered; ``backpressure`` the probability that the response is
held (``rsp.ready`` low) for 1..``max_gap`` cycles after it is offered. Results must not change.

Stream timing: inputs are driven after a rising edge; handshakes are decided from values read in
the ReadOnly phase (settled after that edge, valid up to the next one), which reads the same in
Verilator and Icarus.
"""

from __future__ import annotations

import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge, with_timeout
from cocotb.utils import get_sim_time

from golden_model.config import EqSpikeConfig
from rtl.layer import DERIVED, state_memories
from rtl.network import Op, Phase, Reg, Space, Status, command_layout
from rtl.verilog import layout_table

from .rtl_harness import HostSequences, register_names

__all__ = ["CommandPacker", "HostDriver", "StateReader", "ParamReader", "CLOCK_NS"]

#: Clock period of the testbenches (ns).
CLOCK_NS = 10


def _field_reader(layout) -> list:
    """``(name, lsb, width, signed)`` of every field of a struct layout."""
    from amaranth.hdl import Shape
    return [(name, f.offset, Shape.cast(f.shape).width, Shape.cast(f.shape).signed) for name, f in layout]


class CommandPacker:
    """Packs a command into the flat ``cmd__payload`` vector (layout from :func:`command_layout`)."""

    def __init__(self, cfg: EqSpikeConfig):
        self.fields = {name: (lsb, width) for name, lsb, width in layout_table(command_layout(cfg))}
        self.width = sum(w for _, w in self.fields.values())

    def pack(self, **values) -> int:
        word = 0
        for name, value in values.items():
            lsb, width = self.fields[name]
            value = value.value if hasattr(value, "value") else int(value)
            if not -(1 << width) < value < (1 << width):
                raise ValueError(f"command field {name} = {value} does not fit {width} bits")
            word |= (value & ((1 << width) - 1)) << lsb
        return word


class StateReader:
    """Zero-time reads of every per-neuron register from the cores' state memories (VPI).

    The memories are those of :func:`rtl.layer.state_memories` (``rho_last`` of a layer core is
    :data:`rtl.layer.DERIVED` from ``s``); the input core keeps ``s`` in ``core0.inputs``.
    """

    def __init__(self, dut, cfg: EqSpikeConfig):
        self.cfg = cfg
        self.layers = []
        for l, n in enumerate(cfg.layers):
            core = getattr(dut, f"core{l}")
            # neurons per word (U_l) as the design was built: a word holds U register structs (the
            # job's config may be the golden model's, built with other hardware parameters)
            name, layout = next(iter(state_memories(cfg, l).items()))
            U = len(getattr(core, name)[0]._handle.get_signal_val_binstr()) // layout.size
            G = -(-n // U)    # one word per update group of U neurons
            # raw simulator handles: reading binary strings skips LogicArray construction (3x faster)
            mems = [(_field_reader(layout), layout.size, [getattr(core, name)[g]._handle for g in range(G)])
                    for name, layout in state_memories(cfg, l).items()]
            inputs = [core.inputs[g]._handle for g in range(G)] if l == 0 else None
            self.layers.append((mems, inputs, U))

    @staticmethod
    def _ints(handles) -> list:
        return [int(h.get_signal_val_binstr(), 2) for h in handles]

    def read(self) -> list:
        """One dict per layer: register name -> int64 array of (n_l,) codes (like FixedState)."""
        out = []
        for l, (mems, inputs, U) in enumerate(self.layers):
            n = self.cfg.layers[l]
            regs = {}
            for fields, size, words in mems:
                groups = self._ints(words)      # neuron i: element i % U of word i // U
                raw = [(groups[i // U] >> (i % U * size)) for i in range(n)]
                for name, lsb, width, signed in fields:
                    mask = (1 << width) - 1
                    vals = np.array([(w >> lsb) & mask for w in raw], dtype=np.int64)
                    if signed:
                        vals = np.where(vals >= 1 << (width - 1), vals - (1 << width), vals)
                    regs[name] = vals
            if inputs is not None:
                sw, groups = self.cfg.s.width, self._ints(inputs)
                regs["s"] = np.array([(groups[i // U] >> (i % U * sw)) & ((1 << sw) - 1) for i in range(n)],
                                     dtype=np.int64)
            if l > 0:
                regs.update({reg: regs[src] for reg, src in DERIVED.items()})
            out.append({name: regs[name] for name in register_names(l)})
        return out


class ParamReader:
    """Zero-time reads of every stored parameter copy (VPI; on-chip learning builds make the
    memories visible): ``w_below`` of core ``l`` is ``W_{l-1}`` by rows, ``w_above`` of core ``l``
    is ``W_l`` transposed, ``bias`` of core ``l`` is ``b_l``; lanes past a layer's end are
    skipped. Formats: learning format of each matrix, bias formats."""

    def __init__(self, dut, cfg: EqSpikeConfig):
        self.cfg = cfg
        L, n = cfg.lanes, cfg.layers
        self.mems = []       # (kind, matrix, handles, width, n_src, n_dst, C)
        for l in range(1, len(n)):
            core = getattr(dut, f"core{l}")
            C = cfg.chunks(l)
            self.mems.append(("w_below", l - 1, [core.w_below[a]._handle for a in range(n[l - 1] * C)],
                              cfg.learn_format(l - 1).width, n[l - 1], n[l], C))
            if l + 1 < len(n):     # W_l^T: its own memory, or stacked under W_{l-1} (rtl.layer)
                stacked = cfg.weights_stacked(l)
                first, copy = (n[l - 1] * C, core.w_below) if stacked else (0, core.w_above)
                self.mems.append(("w_above", l, [copy[first + a]._handle for a in range(n[l + 1] * C)],
                                  cfg.learn_format(l).width, n[l + 1], n[l], C))
            # update_lanes biases per word, as the design was built (from the word's width)
            bw = cfg.biases[l - 1].width
            U = len(core.bias[0]._handle.get_signal_val_binstr()) // bw
            handles = [core.bias[a]._handle for a in range(-(-n[l] // U))]
            self.mems.append(("bias", l - 1, handles, bw, n[l], U, 1))

    @staticmethod
    def _signed(v, width):
        return np.where(v >= 1 << (width - 1), v - (1 << width), v)

    def read(self) -> dict:
        """``{"w_below": [W_0, ...], "w_above": {l: W_l}, "bias": [b_1, ...]}`` as int64 arrays
        (``W_l`` shaped ``(n_l, n_{l+1})`` for both copies)."""
        L = self.cfg.lanes
        out = {"w_below": [], "w_above": {}, "bias": []}
        for kind, mat, handles, width, n_src, n_dst, C in self.mems:
            raw = [int(h.get_signal_val_binstr(), 2) for h in handles]
            if kind == "bias":     # one update group (U_l biases, n_dst here) per word
                U, mask = n_dst, (1 << width) - 1
                codes = [(raw[j // U] >> (j % U * width)) & mask for j in range(n_src)]
                out["bias"].append(self._signed(np.array(codes, dtype=np.int64), width))
                continue
            w = np.zeros((n_src, n_dst), dtype=np.int64)
            mask = (1 << width) - 1
            for src in range(n_src):
                for c in range(C):
                    word = raw[src * C + c]
                    for t in range(min(L, n_dst - c * L)):
                        w[src, c * L + t] = (word >> (t * width)) & mask
            w = self._signed(w, width)
            if kind == "w_below":
                out["w_below"].append(w)
            else:
                out["w_above"][mat] = w.T
        return out


class HostDriver(HostSequences):
    """Drives ``cmd``/``rsp`` of the network top; mirrors :class:`sim.rtl_harness.RTLHarness`.

    Parameters
    ----------
    dut : cocotb handle of ``eqspike_top``
    cfg : EqSpikeConfig
        The config the Verilog was generated from (command layout, sizes).
    rng : numpy Generator, optional
        Source of the idle/backpressure pattern.
    idle, backpressure : float
        Probabilities of an idle gap before a command / a held response (0 = none).
    max_gap : int
        Longest idle gap or response hold, in cycles.

    Members
    -------
    commands : int
        Commands completed.
    latency : int
        Cycles the last command took, from the edge that accepted it to the edge that raised
        the response's valid (READ: 3; TRAIN: ``rtl.learning.train_cycles``).
    """

    def __init__(self, dut, cfg: EqSpikeConfig, rng=None, idle: float = 0.0, backpressure: float = 0.0,
                 max_gap: int = 4):
        self.dut, self.cfg = dut, cfg
        self.clk = dut.clk
        self.packer = CommandPacker(cfg)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.idle, self.backpressure, self.max_gap = idle, backpressure, max_gap
        self.commands = 0
        self.latency = 0
        self._state = None
        dut.cmd__valid.value = 0
        dut.rsp__ready.value = 0

    def _gap(self, p: float) -> int:
        return int(self.rng.integers(1, self.max_gap + 1)) if p and self.rng.random() < p else 0

    async def start(self, reset_cycles: int = 2):
        """Pulse the synchronous reset (the clock must be running)."""
        self.dut.rst.value = 1
        for _ in range(reset_cycles):
            await RisingEdge(self.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.clk)

    # -- host command streams ----------------------------------------------------------------------
    async def command(self, op, space=Space.WEIGHT, layer=0, reg=0, phase=Phase.FREE, row=0, col=0,
                      data=0) -> int:
        """Send one command, wait for its response, return the response data (signed)."""
        dut, clk = self.dut, self.clk
        for _ in range(self._gap(self.idle)):
            await RisingEdge(clk)
        dut.cmd__payload.value = self.packer.pack(op=op, space=space, layer=layer, reg=reg, phase=phase,
                                                  row=row, col=col, data=data)
        dut.cmd__valid.value = 1
        while True:                    # offered now; taken at the next edge where ready is high
            await ReadOnly()
            taken = bool(dut.cmd__ready.value)
            await RisingEdge(clk)
            if taken:
                break
        dut.cmd__valid.value = 0
        t_accept = get_sim_time("ns")
        if not dut.rsp__valid.value:            # set at a clock edge; holds until the handshake
            limit = self.response_limit(op, data)
            try:
                await with_timeout(RisingEdge(dut.rsp__valid), limit * CLOCK_NS, "ns")
            except TimeoutError:
                raise AssertionError(f"no response to {Op(op).name} (data {data}) within {limit} cycles: "
                                     "the design hangs") from None
        self.latency = round((get_sim_time("ns") - t_accept) / CLOCK_NS)
        for _ in range(self._gap(self.backpressure)):
            await RisingEdge(clk)
        dut.rsp__ready.value = 1
        await ReadOnly()
        value = dut.rsp__payload.value.to_signed()
        await RisingEdge(clk)          # handshake at this edge
        dut.rsp__ready.value = 0
        self.commands += 1
        return value

    def response_limit(self, op, data=0) -> int:
        """Cycles a command may take before the design counts as hung (generous worst cases: a
        tick where every neuron spikes, at one lane, with bus stalls)."""
        cfg = self.cfg
        worst_tick = sum(cfg.layers) * max(cfg.layers) + 8 * sum(cfg.layers) + 100
        if Op(op) == Op.RUN:
            return 4 * worst_tick * max(1, min(int(data), cfg.n_steps)) + 1000
        if op == Op.TRAIN:
            from rtl.learning import train_update_cycles
            return 4 * worst_tick * cfg.n_steps + 2 * train_update_cycles(cfg) + 1000
        return 4 * max(cfg.layers) + 1000

    async def read_reg(self, l: int, name: str, n: int) -> int:
        """One register of one neuron through the host READ command."""
        return await self.command(Op.READ, Space.STATE, layer=l, reg=Reg[name.upper()], row=n)

    async def check_random_read(self, rng, regs, where: str) -> None:
        """READ one random register of one random neuron through the host port and check it
        equals ``regs`` (the state memories read by the backdoor, :meth:`registers`)."""
        l = int(rng.integers(self.cfg.n_layers))
        name = register_names(l)[int(rng.integers(len(register_names(l))))]
        n = int(rng.integers(self.cfg.layers[l]))
        got = await self.read_reg(l, name, n)
        if got != regs[l][name][n]:
            raise AssertionError(f"{where}: host READ of layer {l} {name}[{n}] = {got}, state memory "
                                 f"holds {regs[l][name][n]}")

    async def status(self, name: str, l: int = 0) -> int:
        return await self.command(Op.READ, Space.STATUS, layer=l, reg=Status[name.upper()])

    async def counters(self) -> dict:
        """Every performance counter (see rtl.network.Status); per-layer ones as lists."""
        out = {name: await self.status(name) for name in ("tick", "cycles", "acc_cycles", "upd_cycles")}
        for name in ("issues", "events", "spikes", "overflows"):
            out[name] = [await self.status(name, l) for l in range(self.cfg.n_layers)]
        return out

    # -- backdoor ------------------------------------------------------------------------------------
    def registers(self) -> list:
        """Every per-neuron register of every layer, read from the memories in zero time."""
        if self._state is None:
            self._state = StateReader(self.dut, self.cfg)
        return self._state.read()
