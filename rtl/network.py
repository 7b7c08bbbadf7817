"""The network top: layer cores joined by the spike bus, tick controller, schedule ROMs and the
host command interface.

Host interface: two ``lib.stream`` ports. ``cmd`` takes one :func:`command_layout` word per
command; every command answers exactly one :func:`response_layout` word on ``rsp`` (in order,
one outstanding command at a time). Commands (``op``):

``WRITE``  ``space`` WEIGHT (``layer`` = matrix m, ``row`` = j, ``col`` = k: W_m[j, k]), BIAS
           (``layer`` l >= 1, ``row`` n), INPUT (``row`` n), TARGET (``row`` n); answers 0.
``READ``   ``space`` STATE (``layer``, ``reg`` a :class:`Reg`, ``row`` n), STATUS (``reg`` a
           :class:`Status`, ``layer`` for the per-layer counters), or any space WRITE takes
           (read-back, same addressing); answers the value, sign-extended (``s``,
           ``rho_last``, ``q`` and counters are non-negative).
``RUN``    ``data`` = N ticks in ``phase`` (FREE, NUDGE_POS, NUDGE_NEG); answers the tick
           counter afterwards. Stops early at ``cfg.n_steps`` (the schedule ROMs' length).
``RESET``  new sample: zeroes every per-neuron register, the queued spikes, the tick counter
           and the performance counters (weights, biases, inputs and targets are kept); answers 0.

One tick (Jacobi: tick t reads only the spikes of tick t-1):

1. ACCUMULATE: every non-input core drains its spike queues (filled during tick t-1) into its
   accumulators, all cores in parallel; ends when every core is idle.
2. UPDATE: every core, the input core too, runs its update pass with this tick's eps, lambda
   and 1/lambda ROM words; the spikes it emits travel on the bus into its neighbours' queues.
   Ends when every core is done (a core is done only after the bus took all its spikes).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from golden_model.config import EqSpikeConfig

from .arith import check_dsp_width
from .bus import Fork, Throttle
from .layer import InputCore, LayerCore
from .pipeline import input_plan, layer_plan
from .learning import LEARN_FAULTS, LearningEngine
from .ports import HostSel, host_data_width, index_shape, mem_depth, tick_signature

__all__ = ["Op", "Space", "Reg", "Status", "Phase", "command_layout", "response_layout",
           "COUNTER_WIDTH", "Network", "events_per_layer", "accumulate_cycles", "group_stalls",
           "update_cycles", "tick_cycles", "spike_queue_pass"]

#: Width of the performance counters (they wrap).
COUNTER_WIDTH = 32


class Op(enum.Enum, shape=3):
    NOP = 0
    WRITE = 1
    READ = 2
    RUN = 3
    RESET = 4
    TRAIN = 5     # on-chip learning builds only (cfg.learning): one training sample


class Space(enum.Enum, shape=3):
    """What a command addresses: parameters, the sample's input and target, state, counters."""

    WEIGHT, BIAS, INPUT, TARGET, STATE, STATUS = range(6)


class Reg(enum.Enum, shape=3):
    """Per-neuron registers (the golden model's names); the input layer has no acc, v, x."""

    ACC, V, X, S, A, RHO_LAST, PHI, Q = range(8)


class Status(enum.Enum, shape=3):
    """Counters (since the last RESET). The last four are per layer (``layer`` field)."""

    TICK = 0          # ticks done in this sample
    CYCLES = 1        # cycles spent running ticks
    ACC_CYCLES = 2    # cycles in the accumulate phase
    UPD_CYCLES = 3    # cycles in the update phase
    ISSUES = 4        # accumulate chunk operations (each = lanes synaptic operations)
    EVENTS = 5        # spikes consumed by the layer's accumulator
    SPIKES = 6        # spikes emitted by the layer
    OVERFLOWS = 7     # register saturations/wraps (the model's ``overflows`` events)


class Phase(enum.Enum, shape=2):
    FREE = 0
    NUDGE_POS = 1
    NUDGE_NEG = 2


def events_per_layer(cfg: EqSpikeConfig, spikes_prev) -> list:
    """Events ``E_l`` each non-input layer accumulates: spikes of layers ``l-1`` and ``l+1`` last tick.

    ``spikes_prev[l]`` is the number of spikes layer ``l`` emitted in the previous tick.
    Returns a list indexed by layer (entry 0 is 0: the input layer accumulates nothing).
    """
    k = cfg.n_layers - 1
    return [0] + [spikes_prev[l - 1] + (spikes_prev[l + 1] if l < k else 0) for l in range(1, k + 1)]


def accumulate_cycles(cfg: EqSpikeConfig, spikes_prev) -> int:
    """Cycles of the accumulate phase: ``1 + M + 2 (M > 0)`` with ``M = max_l E_l * C_l``.

    ``C_l = ceil(n_l / lanes)`` chunk operations per event, issued back to back, one per
    cycle; +2 when there were any, for the pipeline stages that register the weight address
    and the weight word; +1 is the cycle in which every core is idle (the last adder write,
    and the start of the update pass).
    """
    ev = events_per_layer(cfg, spikes_prev)
    most = max(ev[l] * cfg.chunks(l) for l in range(1, cfg.n_layers))
    return 1 + most + (2 if most > 0 else 0)


def group_stalls(cfg: EqSpikeConfig, l: int, spikes) -> int:
    """Extra update-pass cycles of core ``l`` for sending its spikes one per cycle
    (``U = cfg.update_lanes_of(l)`` > 1; 0 when U == 1: a group of one never waits, and when
    the layer is silent).

    With U > 1 the last stage pushes each group that has spikes into a spike queue of
    ``rtl.layer.SPIKE_QUEUE_DEPTH`` = D entries, which sends one spike per cycle (lowest
    element first); the pipeline waits only while a group with spikes finds the queue full,
    and the pass ends when the pipeline is empty and the queue has sent its last spike. With
    groups ``g = 0 .. G-1`` reaching the last stage at ``A_0 = 0``, ``A_{g+1} = L_g + 1``
    (``L_g``: the cycle the group leaves it), the ``j``-th group with spikes (``p_j`` of
    them) is pushed at ``L_g = max(A_g, e_{j-D} + 1)`` and sends its spikes in cycles
    ``b_j = max(L_g, e_{j-1}) + 1 .. e_j = b_j + p_j - 1``; a group without spikes leaves at
    ``L_g = A_g``. Returns ``max(L_{G-1}, e_last) - (G - 1)``, the cycles past ``G + K + 1``.
    ``spikes``: the layer's (n_l,) 0/1 spikes of this tick."""
    U = cfg.update_lanes_of(l)
    if U == 1:
        return 0
    q = np.zeros(cfg.groups(l) * U, dtype=np.int64)
    q[:cfg.layers[l]] = np.asarray(spikes, dtype=np.int64).reshape(-1)
    return spike_queue_pass(q.reshape(-1, U).sum(axis=1))[0]


def spike_queue_pass(counts, depth: int | None = None) -> tuple:
    """``(extra, waits)`` of one update pass whose groups carry ``counts`` spikes
    (:func:`group_stalls`' recurrence): the cycles past ``G + K + 1`` and the cycles the
    pipeline waited on a full queue. ``depth``: ``rtl.layer.SPIKE_QUEUE_DEPTH``."""
    from .layer import SPIKE_QUEUE_DEPTH
    D = SPIKE_QUEUE_DEPTH if depth is None else depth
    counts = [int(c) for c in counts]
    if not any(counts):
        return 0, 0
    ends = []                # e_j of the groups pushed so far
    t = -1                   # L of the previous group
    last_end = -1
    waits = 0
    for p in counts:
        t += 1               # A_g = L_{g-1} + 1
        if p:
            if len(ends) >= D and ends[-D] + 1 > t:
                waits += ends[-D] + 1 - t
                t = ends[-D] + 1
            last_end = max(t, last_end) + p
            ends.append(last_end)
    return max(t, last_end) - (len(counts) - 1), waits


def update_cycles(cfg: EqSpikeConfig, spikes_now=None) -> int:
    """Cycles of the update phase (no bus stalls)::

        max( G_0 + stalls_0 + K_0 + 1,  max_{l>=1} G_l + stalls_l + K_l + 1 ),   G_l = cfg.groups(l)

    ``K_l``: the stages of core ``l``'s pipeline after its address stage
    (:func:`rtl.pipeline.input_plan` / :func:`rtl.pipeline.layer_plan`: 4 / 7 at
    ``cfg.mul_stages = 1``, 5 / 10 at 2, 6 / 13 at 3). Each core streams one group of
    ``U_l = cfg.update_lanes_of(l)`` neurons per cycle through its pipeline and is done the cycle
    after its last write and its last spike; ``stalls_l`` (:func:`group_stalls`) are the cycles
    its spike queue adds. ``spikes_now``: each layer's 0/1 spikes
    of this tick, needed when some ``U_l > 1``.
    """
    if cfg.parallel_update and spikes_now is None:
        raise ValueError("update_cycles needs this tick's spikes (spikes_now) when update_lanes > 1")
    stalls = [group_stalls(cfg, l, spikes_now[l] if spikes_now is not None else None)
              for l in range(cfg.n_layers)]
    stages = [input_plan(cfg).K] + [layer_plan(cfg, l == cfg.n_layers - 1).K for l in range(1, cfg.n_layers)]
    return max(cfg.groups(l) + stalls[l] + stages[l] + 1 for l in range(cfg.n_layers))


def tick_cycles(cfg: EqSpikeConfig, spikes_prev, spikes_now=None) -> int:
    """Cycles of one tick (bus without stalls): accumulate + update phase. ``spikes_prev``:
    spike counts per layer of the previous tick; ``spikes_now``: this tick's 0/1 spikes per
    layer (only needed when some ``U_l > 1``, see :func:`update_cycles`)."""
    return accumulate_cycles(cfg, spikes_prev) + update_cycles(cfg, spikes_now)


def command_layout(cfg: EqSpikeConfig) -> data.StructLayout:
    """One host command (fields in LSB-first order of the flat Verilog vector)."""
    return data.StructLayout({
        "op": Op,
        "space": Space,
        "layer": unsigned(max(1, ceil_log2(cfg.n_layers))),
        "reg": unsigned(3),          # a Reg or a Status
        "phase": Phase,
        "row": index_shape(cfg),
        "col": index_shape(cfg),
        "data": signed(host_data_width(cfg)),
    })


def response_layout(cfg: EqSpikeConfig) -> data.StructLayout:
    """One host response."""
    return data.StructLayout({"data": signed(host_data_width(cfg))})


class Network(wiring.Component):
    """The whole network built from ``cfg``.

    Parameters
    ----------
    cfg : EqSpikeConfig
    fault : None, "wrap", "floor" or "learn_round"
        Deliberately broken arithmetic in every neuron, or (``learn_round``) in the learning
        engine's weight rounding (tests only).
    bus_stall : None or int
        Seed: insert a :class:`~rtl.bus.Throttle` (random idle and backpressure) on every
        spike-bus link (tests only; results must not change, only cycle counts).
    counters : bool
        Build the performance counters (:class:`Status` CYCLES ... OVERFLOWS, 32 bits each).
        Without them (small FPGAs: they and their read multiplexer cost about 1k LUTs) a
        STATUS read of any of them answers 0; TICK is always there.
    dsp_width : int or None
        Operand width of the target's DSP blocks (iCE40UP: 16): products are split to one DSP
        block each, constant multiplies become shifts and adds (:func:`rtl.arith.mul`); None:
        plain ``*``.

    Members
    -------
    cmd : In(stream of command_layout(cfg))
    rsp : Out(stream of response_layout(cfg))
    running : Out(1)
        A command is being executed.
    """

    def __init__(self, cfg: EqSpikeConfig, fault=None, bus_stall=None, counters=True, dsp_width=None):
        if not isinstance(cfg, EqSpikeConfig):
            raise TypeError(f"cfg must be an EqSpikeConfig, not {cfg!r}")
        self.cfg, self.fault, self.bus_stall = cfg, fault, bus_stall
        self.counters = bool(counters)
        self.dsp_width = check_dsp_width(dsp_width)
        super().__init__({
            "cmd": In(stream.Signature(command_layout(cfg))),
            "rsp": Out(stream.Signature(response_layout(cfg))),
            "running": Out(1),
        })
        core_fault = None if fault in LEARN_FAULTS else fault
        self.cores = [InputCore(cfg, core_fault, self.dsp_width)]
        self.cores += [LayerCore(cfg, l, core_fault, self.dsp_width) for l in range(1, cfg.n_layers)]
        self.engine = None
        if cfg.learning is not None:     # on-chip learning (rtl.learning): TRAIN command
            if cfg.n_free < 1 or cfg.n_nudged < 1:
                raise ValueError("on-chip learning needs n_free >= 1 and n_nudged >= 1")
            self.engine = LearningEngine(cfg, fault if fault in LEARN_FAULTS else None)
        elif fault in LEARN_FAULTS and fault is not None:
            raise ValueError(f"fault {fault!r} needs a config with a 'learning' section")
        self.roms = {name: memory.Memory(shape=unsigned(cfg.rom_width(name)), depth=mem_depth(cfg.n_steps),
                                         init=[int(v) for v in rom])
                     for name, rom in (("eps", cfg.eps_rom), ("lam", cfg.lam_rom),
                                       ("inv_lam", cfg.inv_lam_rom))}

    def elaborate(self, platform):
        m = Module()
        cfg, cores = self.cfg, self.cores
        for l, core in enumerate(cores):
            m.submodules[f"core{l}"] = core
        self._spike_bus(m)
        ctl = SimpleNamespace(c=Signal(command_layout(cfg), name="c"), t_done=Signal(range(cfg.n_steps + 1),
                                                                                    name="t_done"),
                              remaining=Signal(range(cfg.n_steps + 1), name="remaining"),
                              rsp_valid=Signal(name="rsp_valid"),
                              rsp_data=Signal(signed(host_data_width(cfg)), name="rsp_data"),
                              host_we=Signal(name="host_we"), training=Signal(name="training"),
                              clear_counters=Signal(name="clear_counters"),
                              tick=tick_signature(cfg).create(path=("tick",)))
        wiring.connect(m, ctl.tick, *(core.tick for core in cores))
        self._schedule_roms(m, ctl)
        nudge = Mux(ctl.c.phase == Phase.NUDGE_POS, 1, Mux(ctl.c.phase == Phase.NUDGE_NEG, -1, 0))
        m.d.comb += cores[-1].nudge.eq(nudge)
        if self.engine is not None:
            m.submodules.learning = self.engine
            for port, core in zip(self.engine.ports, cores):
                wiring.connect(m, port, core.learn)
            m.d.comb += self.engine.nudged.eq(ctl.c.phase != Phase.FREE)
        ctl.counters = self._counters(m, ctl)
        self._host_decode(m, ctl)
        self._read_values(m, ctl)
        m.d.comb += [self.rsp.valid.eq(ctl.rsp_valid), self.rsp.payload.data.eq(ctl.rsp_data)]
        with m.If(self.rsp.ready):
            m.d.sync += ctl.rsp_valid.eq(0)
        ctl.all_idle = Signal(name="all_idle")
        m.d.comb += ctl.all_idle.eq(~Cat(core.busy for core in cores).any())
        self._controller(m, ctl)
        return m

    # -- spike bus: layer l -> l+1 (from below) and l -> l-1 (from above, l-1 >= 1) ---------------
    def _spike_bus(self, m):
        cores, k = self.cores, self.cfg.n_layers - 1
        throttles = []

        def link(src, dst):
            if self.bus_stall is None:
                wiring.connect(m, src, dst)
                return
            # a different LFSR seed per link, all derived from bus_stall
            seed = (self.bus_stall * 40503 + len(throttles) * 2654435761) % 65535 + 1
            thr = Throttle(src.payload.shape(), seed)
            m.submodules[f"throttle{len(throttles)}"] = thr
            throttles.append(thr)
            wiring.connect(m, src, thr.i)
            wiring.connect(m, thr.o, dst)

        for l, core in enumerate(cores):
            dests = []
            if l + 1 <= k:
                dests.append(cores[l + 1].from_below)
            if l - 1 >= 1:
                dests.append(cores[l - 1].from_above)
            if not dests:      # a two-layer network's output spikes feed no core (the input is clamped)
                m.d.comb += core.spikes.ready.eq(1)
            elif len(dests) == 1:
                link(core.spikes, dests[0])
            else:
                fork = m.submodules[f"fork{l}"] = Fork(core.spikes.payload.shape(), len(dests))
                wiring.connect(m, core.spikes, fork.i)
                for o, d in zip(fork.o, dests):
                    link(o, d)

    def _schedule_roms(self, m, ctl):
        """ROMs indexed by the ticks done (tick t uses entry t-1). Each word is re-registered
        (block-RAM clock-to-out stays off the neuron datapath): t_done changes at a tick's end;
        the port shows the new word one cycle later, the register two; the next update pass
        needs it (lambda, stage 2) three cycles later at the earliest."""
        for name, rom in self.roms.items():
            m.submodules[f"rom_{name}"] = rom
            port = rom.read_port()
            m.d.comb += port.addr.eq(ctl.t_done)
            word = Signal.like(port.data, name=f"{name}_word")
            m.d.sync += word.eq(port.data)
            m.d.comb += getattr(ctl.tick, name).eq(word)

    # -- performance counters -----------------------------------------------------------------------
    def _counters(self, m, ctl):
        k, cw = self.cfg.n_layers - 1, COUNTER_WIDTH
        ctr = SimpleNamespace(cycles=Signal(cw, name="cycles"), acc_cycles=Signal(cw, name="acc_cycles"),
                              upd_cycles=Signal(cw, name="upd_cycles"))
        for name in ("issues", "events", "spikes", "overflows"):
            setattr(ctr, name, [Signal(cw, name=f"{name}{l}") for l in range(k + 1)])
        everything = [ctr.cycles, ctr.acc_cycles, ctr.upd_cycles] + ctr.issues + ctr.events + ctr.spikes
        everything += ctr.overflows
        if not self.counters:    # constant zero: Yosys removes them and their read multiplexer
            m.d.comb += [c.eq(0) for c in everything]
            return ctr
        with m.If(ctl.clear_counters):
            m.d.sync += [c.eq(0) for c in everything]
        with m.Else():
            for l, core in enumerate(self.cores):
                m.d.sync += [ctr.spikes[l].eq(ctr.spikes[l] + (core.spikes.valid & core.spikes.ready)),
                             ctr.overflows[l].eq(ctr.overflows[l] + core.ovf)]
                if l > 0:
                    m.d.sync += [ctr.issues[l].eq(ctr.issues[l] + core.accumulate.issue),
                                 ctr.events[l].eq(ctr.events[l] + core.accumulate.pop)]
        return ctr

    # -- host port of every core: driven from the command register ------------------------------------
    def _host_decode(self, m, ctl):
        cores, c, k = self.cores, ctl.c, self.cfg.n_layers - 1
        for core in cores:
            m.d.comb += [core.host.data.eq(c.data), core.host.rd_addr.eq(c.row), core.host.we.eq(ctl.host_we)]
        with m.Switch(c.space):
            with m.Case(Space.WEIGHT):
                for l, core in enumerate(cores):
                    if l >= 1:     # W_{l-1} by rows: row j (layer l-1), lane k (layer l)
                        with m.If(c.layer == l - 1):
                            m.d.comb += [core.host.sel.eq(HostSel.W_BELOW), core.host.row.eq(c.row),
                                         core.host.col.eq(c.col)]
                    if 1 <= l < k:  # W_l transposed: row k (layer l+1), lane j (layer l)
                        with m.If(c.layer == l):
                            m.d.comb += [core.host.sel.eq(HostSel.W_ABOVE), core.host.row.eq(c.col),
                                         core.host.col.eq(c.row)]
            with m.Case(Space.BIAS):
                for l, core in enumerate(cores[1:], start=1):
                    with m.If(c.layer == l):
                        m.d.comb += [core.host.sel.eq(HostSel.BIAS), core.host.row.eq(c.row)]
            with m.Case(Space.INPUT):
                m.d.comb += [cores[0].host.sel.eq(HostSel.INPUT), cores[0].host.row.eq(c.row)]
            with m.Case(Space.TARGET):
                m.d.comb += [cores[k].host.sel.eq(HostSel.TARGET), cores[k].host.row.eq(c.row)]

    def _read_values(self, m, ctl):
        """What a READ answers: ``ctl.state_value`` (a register), ``ctl.param_value`` (a stored
        parameter), ``ctl.status_value`` (a counter)."""
        cores, c, k, width = self.cores, ctl.c, self.cfg.n_layers - 1, host_data_width(self.cfg)
        ctl.state_value = Signal(signed(width), name="state_value")
        with m.Switch(c.layer):
            for l, core in enumerate(cores):
                with m.Case(l):
                    fields = core.host.rd_state
                    with m.Switch(c.reg):
                        for reg in Reg:
                            name = reg.name.lower()
                            if name in fields.shape().members:
                                with m.Case(reg):
                                    m.d.comb += ctl.state_value.eq(getattr(fields, name))
        ctl.param_value = Signal(signed(width), name="param_value")   # read-back of host-written parameters
        with m.Switch(c.space):
            for space, attr, shift in ((Space.WEIGHT, "rd_weight", 1), (Space.BIAS, "rd_bias", 0)):
                with m.Case(space):
                    with m.Switch(c.layer):
                        for l in range(1, k + 1):
                            with m.Case(l - shift):    # WEIGHT: matrix l-1 is read from core l
                                m.d.comb += ctl.param_value.eq(getattr(cores[l].host, attr))
            with m.Case(Space.INPUT):
                m.d.comb += ctl.param_value.eq(cores[0].host.rd_state.s)
            with m.Case(Space.TARGET):
                m.d.comb += ctl.param_value.eq(cores[k].host.rd_target)
        ctl.status_value = Signal(signed(width), name="status_value")
        ctr = ctl.counters
        with m.Switch(c.reg):
            for st, value in ((Status.TICK, ctl.t_done), (Status.CYCLES, ctr.cycles),
                              (Status.ACC_CYCLES, ctr.acc_cycles), (Status.UPD_CYCLES, ctr.upd_cycles)):
                with m.Case(st):
                    m.d.comb += ctl.status_value.eq(value)
            for st, values in ((Status.ISSUES, ctr.issues), (Status.EVENTS, ctr.events),
                               (Status.SPIKES, ctr.spikes), (Status.OVERFLOWS, ctr.overflows)):
                with m.Case(st):
                    with m.Switch(c.layer):
                        for l in range(k + 1):
                            with m.Case(l):
                                m.d.comb += ctl.status_value.eq(values[l])

    # -- controller ------------------------------------------------------------------------------------
    def _respond(self, m, ctl, value):
        m.d.sync += [ctl.rsp_valid.eq(1), ctl.rsp_data.eq(value)]
        m.next = "IDLE"

    def _finish(self, m, ctl, value, train_next):
        """End of a RESET or RUN: answer it, or continue the TRAIN sequence."""
        if self.engine is None:
            self._respond(m, ctl, value)
            return
        with m.If(ctl.training):
            m.next = train_next
        with m.Else():
            self._respond(m, ctl, value)

    def _controller(self, m, ctl):
        """IDLE > DECODE > {WRITE | READ_ADDRESS > READ_WORD > (READ_LANE) > READ | CLEAR | RUN > (ACCUMULATE >
        UPDATE)*} > IDLE; TRAIN: CLEAR > RUN ... > TRAIN_NEXT > RUN ... > TRAIN_NEXT > LEARN. A
        WEIGHT write takes the READ path and writes in READ: the cores merge the weight into the
        lane-packed word just read (the weight memories have no per-lane write enables)."""
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(~ctl.rsp_valid)
                with m.If(self.cmd.valid & ~ctl.rsp_valid):
                    m.d.sync += ctl.c.eq(self.cmd.payload)
                    m.next = "DECODE"
            with m.State("DECODE"):
                m.d.comb += self.running.eq(1)
                self._decode(m, ctl)
            with m.State("WRITE"):
                m.d.comb += [self.running.eq(1), ctl.host_we.eq(1)]
                self._respond(m, ctl, 0)
            with m.State("READ_ADDRESS"):
                m.d.comb += self.running.eq(1)
                m.next = "READ_WORD"      # the word is read this cycle
            with m.State("READ_WORD"):
                m.d.comb += self.running.eq(1)
                m.next = "READ"           # the cores register the weight word read
                with m.If(ctl.c.op == Op.READ):
                    m.next = "READ_LANE"
            with m.State("READ_LANE"):    # a READ: the cores register their pick of a lane group
                m.d.comb += self.running.eq(1)
                m.next = "READ"
            with m.State("READ"):
                m.d.comb += self.running.eq(1)
                with m.If(ctl.c.op == Op.WRITE):      # a weight WRITE: the word was read, merge it
                    m.d.comb += ctl.host_we.eq(1)
                    self._respond(m, ctl, 0)
                with m.Else():
                    self._read_response(m, ctl)
            with m.State("CLEAR"):
                m.d.comb += self.running.eq(1)
                with m.If(ctl.all_idle):
                    self._finish(m, ctl, 0, "RUN")
            self._tick_states(m, ctl)
            if self.engine is not None:
                self._train_states(m, ctl)

    def _read_response(self, m, ctl):
        """READ answers the register, parameter or counter the command names."""
        with m.Switch(ctl.c.space):
            with m.Case(Space.STATUS):
                self._respond(m, ctl, ctl.status_value)
            with m.Case(Space.STATE):
                self._respond(m, ctl, ctl.state_value)
            with m.Case(Space.WEIGHT, Space.BIAS, Space.INPUT, Space.TARGET):
                self._respond(m, ctl, ctl.param_value)
            with m.Default():
                self._respond(m, ctl, 0)

    def _decode(self, m, ctl):
        """DECODE: the cores register the host weight address this cycle (from the command
        register): writes and reads use it one cycle later."""
        cfg, c, engine = self.cfg, ctl.c, self.engine
        with m.Switch(c.op):
            with m.Case(Op.WRITE):   # weights: read-modify-write of the lane-packed word (READ)
                m.next = "WRITE"
                with m.If(c.space == Space.WEIGHT):
                    m.next = "READ_ADDRESS"
            with m.Case(Op.READ):
                m.next = "READ_ADDRESS"
            with m.Case(Op.RUN):
                left = cfg.n_steps - ctl.t_done
                count = c.data.as_unsigned()
                m.d.sync += ctl.remaining.eq(Mux(count < left, count, left))
                m.next = "RUN"
            with m.Case(Op.RESET):
                m.d.comb += [ctl.tick.clr_start.eq(1), ctl.clear_counters.eq(1)]
                m.d.sync += ctl.t_done.eq(0)
                m.next = "CLEAR"
            if engine is not None:
                with m.Case(Op.TRAIN):   # RESET, sign draw, then the free phase
                    m.d.comb += [ctl.tick.clr_start.eq(1), ctl.clear_counters.eq(1), engine.sign_draw.eq(1)]
                    m.d.sync += [ctl.t_done.eq(0), ctl.training.eq(1), c.phase.eq(Phase.FREE),
                                 ctl.remaining.eq(cfg.n_free)]
                    m.next = "CLEAR"
            with m.Default():
                self._respond(m, ctl, 0)

    def _tick_states(self, m, ctl):
        """RUN > (ACCUMULATE > UPDATE) per tick until ``remaining`` ticks are done."""
        ctr = ctl.counters
        acc_done = Signal(name="acc_done")
        m.d.comb += acc_done.eq(Cat(core.accumulate.idle for core in self.cores[1:]).all())
        with m.State("RUN"):
            m.d.comb += self.running.eq(1)
            with m.If(ctl.remaining == 0):
                self._finish(m, ctl, ctl.t_done, "TRAIN_NEXT")
            with m.Else():
                m.next = "ACCUMULATE"
        with m.State("ACCUMULATE"):
            m.d.comb += self.running.eq(1)
            if self.counters:
                m.d.sync += [ctr.cycles.eq(ctr.cycles + 1), ctr.acc_cycles.eq(ctr.acc_cycles + 1)]
            m.d.comb += [core.accumulate.en.eq(1) for core in self.cores[1:]]
            with m.If(acc_done):     # start the update pass in the accumulate phase's last cycle
                m.d.comb += ctl.tick.upd_start.eq(1)
                m.next = "UPDATE"
        with m.State("UPDATE"):
            m.d.comb += self.running.eq(1)
            if self.counters:
                m.d.sync += [ctr.cycles.eq(ctr.cycles + 1), ctr.upd_cycles.eq(ctr.upd_cycles + 1)]
            with m.If(ctl.all_idle):
                m.d.sync += [ctl.t_done.eq(ctl.t_done + 1), ctl.remaining.eq(ctl.remaining - 1)]
                with m.If(ctl.remaining == 1):
                    self._finish(m, ctl, ctl.t_done + 1, "TRAIN_NEXT")
                with m.Else():
                    m.next = "ACCUMULATE"

    def _train_states(self, m, ctl):
        """TRAIN_NEXT: the free phase done, run the nudged phase; then start the learning passes.
        LEARN: weight, copy and bias passes; answer beta's sign."""
        cfg, c, engine = self.cfg, ctl.c, self.engine
        with m.State("TRAIN_NEXT"):
            m.d.comb += self.running.eq(1)
            with m.If(c.phase == Phase.FREE):
                m.d.sync += [c.phase.eq(Mux(engine.neg, Phase.NUDGE_NEG, Phase.NUDGE_POS)),
                             ctl.remaining.eq(cfg.n_nudged)]
                m.next = "RUN"
            with m.Else():
                m.d.comb += engine.start.eq(1)
                m.next = "LEARN"
        with m.State("LEARN"):
            m.d.comb += self.running.eq(1)
            with m.If(~engine.busy):
                m.d.sync += ctl.training.eq(0)
                self._respond(m, ctl, Mux(engine.neg, -1, 1))
