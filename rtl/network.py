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

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from golden_model.config import EqSpikeConfig

from .bus import Fork, Throttle
from .layer import HostSel, InputCore, LayerCore, host_data_width, index_shape, mem_depth
from .learning import LEARN_FAULTS, LearningEngine

__all__ = ["Op", "Space", "Reg", "Status", "Phase", "command_layout", "response_layout",
           "COUNTER_WIDTH", "Network", "events_per_layer", "accumulate_cycles", "update_cycles",
           "tick_cycles"]

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
    WEIGHT = 0
    BIAS = 1
    INPUT = 2
    TARGET = 3
    STATE = 4
    STATUS = 5


class Reg(enum.Enum, shape=3):
    """Per-neuron registers (the golden model's names); the input layer has no acc, v, x."""

    ACC = 0
    V = 1
    X = 2
    S = 3
    A = 4
    RHO_LAST = 5
    PHI = 6
    Q = 7


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
    from .layer import chunks
    ev = events_per_layer(cfg, spikes_prev)
    most = max(ev[l] * chunks(cfg, l) for l in range(1, cfg.n_layers))
    return 1 + most + (2 if most > 0 else 0)


def update_cycles(cfg: EqSpikeConfig) -> int:
    """Cycles of the update phase (no bus stalls): ``max(n_0 + 5, max_{l>=1} n_l + 8)``.

    Each core streams one neuron per cycle through its pipeline (address stage, then
    ``INPUT_STAGES`` / ``UPDATE_STAGES``) and is done the cycle after its last write.
    """
    from .layer import INPUT_STAGES, UPDATE_STAGES
    return max([cfg.layers[0] + len(INPUT_STAGES) + 1] + [n + len(UPDATE_STAGES) + 1 for n in cfg.layers[1:]])


def tick_cycles(cfg: EqSpikeConfig, spikes_prev) -> int:
    """Cycles of one tick (bus without stalls): accumulate + update phase."""
    return accumulate_cycles(cfg, spikes_prev) + update_cycles(cfg)


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

    Members
    -------
    cmd : In(stream of command_layout(cfg))
    rsp : Out(stream of response_layout(cfg))
    running : Out(1)
        A command is being executed.
    """

    def __init__(self, cfg: EqSpikeConfig, fault=None, bus_stall=None, counters=True):
        if not isinstance(cfg, EqSpikeConfig):
            raise TypeError(f"cfg must be an EqSpikeConfig, not {cfg!r}")
        self.cfg, self.fault, self.bus_stall = cfg, fault, bus_stall
        self.counters = bool(counters)
        super().__init__({
            "cmd": In(stream.Signature(command_layout(cfg))),
            "rsp": Out(stream.Signature(response_layout(cfg))),
            "running": Out(1),
        })
        core_fault = None if fault in LEARN_FAULTS else fault
        self.cores = [InputCore(cfg, core_fault)] + [LayerCore(cfg, l, core_fault) for l in range(1, cfg.n_layers)]
        self.engine = None
        if cfg.learning is not None:     # on-chip learning (rtl.learning): TRAIN command
            if cfg.n_free < 1 or cfg.n_nudged < 1:
                raise ValueError("on-chip learning needs n_free >= 1 and n_nudged >= 1")
            self.engine = LearningEngine(cfg, self.cores, fault if fault in LEARN_FAULTS else None)
        elif fault in LEARN_FAULTS and fault is not None:
            raise ValueError(f"fault {fault!r} needs a config with a 'learning' section")
        self.roms = {name: memory.Memory(shape=unsigned(cfg.rom_width(name)), depth=mem_depth(cfg.n_steps),
                                         init=[int(v) for v in rom])
                     for name, rom in (("eps", cfg.eps_rom), ("lam", cfg.lam_rom),
                                       ("inv_lam", cfg.inv_lam_rom))}

    def elaborate(self, platform):
        m = Module()
        cfg, cores = self.cfg, self.cores
        k = cfg.n_layers - 1
        for l, core in enumerate(cores):
            m.submodules[f"core{l}"] = core

        # -- spike bus: layer l -> l+1 (from below) and l -> l-1 (from above, l-1 >= 1) --------
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

        # -- schedule ROMs, indexed by the ticks done (tick t uses entry t-1) --------------------
        # Each word is re-registered (block-RAM clock-to-out stays off the neuron datapath):
        # t_done changes at a tick's end; the port shows the new word one cycle later, the
        # register two; the next update pass needs it (lambda, stage 2) three cycles later at
        # the earliest.
        t_done = Signal(range(cfg.n_steps + 1))
        rom_data = {}
        for name, rom in self.roms.items():
            m.submodules[f"rom_{name}"] = rom
            port = rom.read_port()
            m.d.comb += port.addr.eq(t_done)
            rom_data[name] = Signal.like(port.data, name=f"{name}_word")
            m.d.sync += rom_data[name].eq(port.data)
        for l, core in enumerate(cores):
            m.d.comb += core.inv_lam.eq(rom_data["inv_lam"])
            if l > 0:
                m.d.comb += [core.eps.eq(rom_data["eps"]), core.lam.eq(rom_data["lam"])]

        # -- command register and responses -----------------------------------------------------
        c = Signal(command_layout(cfg))
        rsp_valid = Signal()
        rsp_data = Signal(signed(host_data_width(cfg)))
        m.d.comb += [self.rsp.valid.eq(rsp_valid), self.rsp.payload.data.eq(rsp_data)]
        with m.If(self.rsp.ready):
            m.d.sync += rsp_valid.eq(0)

        remaining = Signal(range(cfg.n_steps + 1))
        nudge = Mux(c.phase == Phase.NUDGE_POS, 1, Mux(c.phase == Phase.NUDGE_NEG, -1, 0))
        m.d.comb += cores[k].nudge.eq(nudge)
        engine = self.engine
        training = Signal()          # a TRAIN command is running its phases
        if engine is not None:
            m.submodules.learning = engine
            for core in cores[1:]:   # held states: FREE ticks write s_free, NUDGE ticks s_nudged
                m.d.comb += core.l_nudged.eq(c.phase != Phase.FREE)

        # -- counters ----------------------------------------------------------------------------
        cw = COUNTER_WIDTH
        cycles, acc_cycles, upd_cycles = Signal(cw), Signal(cw), Signal(cw)
        issues = [Signal(cw, name=f"issues{l}") for l in range(k + 1)]
        events = [Signal(cw, name=f"events{l}") for l in range(k + 1)]
        spikes = [Signal(cw, name=f"spikes{l}") for l in range(k + 1)]
        ovfs = [Signal(cw, name=f"overflows{l}") for l in range(k + 1)]
        clear_counters = Signal()
        all_counters = [cycles, acc_cycles, upd_cycles] + issues + events + spikes + ovfs
        if not self.counters:    # constant zero: Yosys removes them and their read multiplexer
            m.d.comb += [ctr.eq(0) for ctr in all_counters]
        else:
            with m.If(clear_counters):
                m.d.sync += [ctr.eq(0) for ctr in all_counters]
            with m.Else():
                for l, core in enumerate(cores):
                    m.d.sync += [
                        spikes[l].eq(spikes[l] + (core.spikes.valid & core.spikes.ready)),
                        ovfs[l].eq(ovfs[l] + core.ovf),
                    ]
                    if l > 0:
                        m.d.sync += [issues[l].eq(issues[l] + core.acc_issue),
                                     events[l].eq(events[l] + core.acc_pop)]

        # -- host port of every core: driven from the command register ---------------------------
        host_we = Signal()
        for l, core in enumerate(cores):
            m.d.comb += [core.h_data.eq(c.data), core.h_rd_addr.eq(c.row), core.h_we.eq(host_we)]
        with m.Switch(c.space):
            with m.Case(Space.WEIGHT):
                for l, core in enumerate(cores):
                    if l >= 1:     # W_{l-1} by rows: row j (layer l-1), lane k (layer l)
                        with m.If(c.layer == l - 1):
                            m.d.comb += [core.h_sel.eq(HostSel.W_BELOW), core.h_row.eq(c.row),
                                         core.h_col.eq(c.col)]
                    if 1 <= l < k:  # W_l transposed: row k (layer l+1), lane j (layer l)
                        with m.If(c.layer == l):
                            m.d.comb += [core.h_sel.eq(HostSel.W_ABOVE), core.h_row.eq(c.col),
                                         core.h_col.eq(c.row)]
            with m.Case(Space.BIAS):
                for l, core in enumerate(cores[1:], start=1):
                    with m.If(c.layer == l):
                        m.d.comb += [core.h_sel.eq(HostSel.BIAS), core.h_row.eq(c.row)]
            with m.Case(Space.INPUT):
                m.d.comb += [cores[0].h_sel.eq(HostSel.INPUT), cores[0].h_row.eq(c.row)]
            with m.Case(Space.TARGET):
                m.d.comb += [cores[k].h_sel.eq(HostSel.TARGET), cores[k].h_row.eq(c.row)]

        state_value = Signal(signed(host_data_width(cfg)))
        with m.Switch(c.layer):
            for l, core in enumerate(cores):
                with m.Case(l):
                    fields = core.h_rd_data
                    with m.Switch(c.reg):
                        for reg in Reg:
                            name = reg.name.lower()
                            if name in fields.shape().members:
                                with m.Case(reg):
                                    m.d.comb += state_value.eq(getattr(fields, name))
        param_value = Signal(signed(host_data_width(cfg)))   # read-back of host-written parameters
        with m.Switch(c.space):
            with m.Case(Space.WEIGHT):
                with m.Switch(c.layer):
                    for l in range(1, k + 1):
                        with m.Case(l - 1):
                            m.d.comb += param_value.eq(cores[l].h_rd_weight)
            with m.Case(Space.BIAS):
                with m.Switch(c.layer):
                    for l in range(1, k + 1):
                        with m.Case(l):
                            m.d.comb += param_value.eq(cores[l].h_rd_bias)
            with m.Case(Space.INPUT):
                m.d.comb += param_value.eq(cores[0].h_rd_data.s)
            with m.Case(Space.TARGET):
                m.d.comb += param_value.eq(cores[k].h_rd_target)
        status_value = Signal(signed(host_data_width(cfg)))
        with m.Switch(c.reg):
            for st, ctr in ((Status.TICK, t_done), (Status.CYCLES, cycles),
                            (Status.ACC_CYCLES, acc_cycles), (Status.UPD_CYCLES, upd_cycles)):
                with m.Case(st):
                    m.d.comb += status_value.eq(ctr)
            for st, ctrs in ((Status.ISSUES, issues), (Status.EVENTS, events),
                             (Status.SPIKES, spikes), (Status.OVERFLOWS, ovfs)):
                with m.Case(st):
                    with m.Switch(c.layer):
                        for l in range(k + 1):
                            with m.Case(l):
                                m.d.comb += status_value.eq(ctrs[l])

        acc_cores = cores[1:]
        all_idle = Signal()
        m.d.comb += all_idle.eq(~Cat(core.busy for core in cores).any())
        acc_done = Signal()
        m.d.comb += acc_done.eq(Cat(core.acc_idle for core in acc_cores).all())

        def respond(value):
            m.d.sync += [rsp_valid.eq(1), rsp_data.eq(value)]
            m.next = "IDLE"

        def finish(value, train_next):
            # end of a RESET or RUN: answer it, or continue the TRAIN sequence
            if engine is None:
                respond(value)
                return
            with m.If(training):
                m.next = train_next
            with m.Else():
                respond(value)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(~rsp_valid)
                with m.If(self.cmd.valid & ~rsp_valid):
                    m.d.sync += c.eq(self.cmd.payload)
                    m.next = "DECODE"
            with m.State("DECODE"):
                m.d.comb += self.running.eq(1)
                with m.Switch(c.op):
                    # the cores register the host weight address this cycle (from c): writes
                    # and reads use it one cycle later
                    with m.Case(Op.WRITE):
                        m.next = "WRITE"
                    with m.Case(Op.READ):
                        m.next = "READ_ADDR"
                    with m.Case(Op.RUN):
                        left = cfg.n_steps - t_done
                        count = c.data.as_unsigned()
                        m.d.sync += remaining.eq(Mux(count < left, count, left))
                        m.next = "RUN"
                    with m.Case(Op.RESET):
                        for core in cores:
                            m.d.comb += core.clr_start.eq(1)
                        m.d.comb += clear_counters.eq(1)
                        m.d.sync += t_done.eq(0)
                        m.next = "CLEAR"
                    if engine is not None:
                        with m.Case(Op.TRAIN):   # RESET, sign draw, then the free phase
                            for core in cores:
                                m.d.comb += core.clr_start.eq(1)
                            m.d.comb += [clear_counters.eq(1), engine.sign_draw.eq(1)]
                            m.d.sync += [t_done.eq(0), training.eq(1), c.phase.eq(Phase.FREE),
                                         remaining.eq(cfg.n_free)]
                            m.next = "CLEAR"
                    with m.Default():
                        respond(0)
            with m.State("WRITE"):
                m.d.comb += [self.running.eq(1), host_we.eq(1)]
                respond(0)
            with m.State("READ_ADDR"):
                m.d.comb += self.running.eq(1)
                m.next = "READ_WORD"      # the word is read this cycle
            with m.State("READ_WORD"):
                m.d.comb += self.running.eq(1)
                m.next = "READ"           # the cores register the weight word read
            with m.State("READ"):
                m.d.comb += self.running.eq(1)
                with m.Switch(c.space):
                    with m.Case(Space.STATUS):
                        respond(status_value)
                    with m.Case(Space.STATE):
                        respond(state_value)
                    with m.Case(Space.WEIGHT, Space.BIAS, Space.INPUT, Space.TARGET):
                        respond(param_value)
                    with m.Default():
                        respond(0)
            with m.State("CLEAR"):
                m.d.comb += self.running.eq(1)
                with m.If(all_idle):
                    finish(0, "RUN")
            with m.State("RUN"):
                m.d.comb += self.running.eq(1)
                with m.If(remaining == 0):
                    finish(t_done, "TRAIN_NEXT")
                with m.Else():
                    m.next = "ACCUMULATE"
            with m.State("ACCUMULATE"):
                m.d.comb += self.running.eq(1)
                if self.counters:
                    m.d.sync += [cycles.eq(cycles + 1), acc_cycles.eq(acc_cycles + 1)]
                for core in acc_cores:
                    m.d.comb += core.acc_en.eq(1)
                with m.If(acc_done):     # start the update pass in the accumulate phase's last cycle
                    for core in cores:
                        m.d.comb += core.upd_start.eq(1)
                    m.next = "UPDATE"
            with m.State("UPDATE"):
                m.d.comb += self.running.eq(1)
                if self.counters:
                    m.d.sync += [cycles.eq(cycles + 1), upd_cycles.eq(upd_cycles + 1)]
                with m.If(all_idle):
                    m.d.sync += [t_done.eq(t_done + 1), remaining.eq(remaining - 1)]
                    with m.If(remaining == 1):
                        finish(t_done + 1, "TRAIN_NEXT")
                    with m.Else():
                        m.next = "ACCUMULATE"
            if engine is not None:
                with m.State("TRAIN_NEXT"):    # free phase done: nudged phase; then the passes
                    m.d.comb += self.running.eq(1)
                    with m.If(c.phase == Phase.FREE):
                        m.d.sync += [c.phase.eq(Mux(engine.neg, Phase.NUDGE_NEG, Phase.NUDGE_POS)),
                                     remaining.eq(cfg.n_nudged)]
                        m.next = "RUN"
                    with m.Else():
                        m.d.comb += engine.start.eq(1)
                        m.next = "LEARN"
                with m.State("LEARN"):         # update, copy and bias passes; answer the sign
                    m.d.comb += self.running.eq(1)
                    with m.If(~engine.busy):
                        m.d.sync += training.eq(0)
                        respond(Mux(engine.neg, -1, 1))
        return m

