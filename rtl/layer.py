"""Time-multiplexed layer cores: :class:`LayerCore` (non-input layer) and :class:`InputCore`.

A core holds its layer's per-neuron registers in one block memory (one word per neuron, a
struct of every register; synchronous read port), and runs two passes per tick, started by the
network's controller:

Accumulate (event-driven, ``acc_en``)
    Each spike waiting in the core's queues (one queue per neighbouring layer, filled from the
    spike bus during the previous tick's update pass) is expanded into ``C = ceil(n / lanes)``
    chunk operations, one per cycle: the weight word (``lanes`` weights of that spike's row,
    below, or column, above) is read from the weight memory and added lane-wise to the
    accumulator word of that chunk. Pipeline: cycle 1 registers the weight address, cycle 2
    reads the weight word, cycle 3 registers it and reads the accumulator word (synchronous
    reads), cycle 4 writes the sum back; the accumulator memory's read port is transparent to
    its write port, so the next event's read of the same word sees the sum being written (no
    bubbles when ``C == 1``). Chunks of consecutive events issue back to back: ``E * C``
    cycles for ``E`` events, plus two for the pipeline when ``E > 0``; the last sum is written
    in the cycle the core reports idle, which is also the cycle the network starts the update
    pass.

Update (``upd_start``, one neuron per cycle, ``UPDATE_STAGES``)
    stage 0 presents neuron ``n``'s address to the accumulator; stage 1 registers its lane (and
    clears the accumulator word once its last lane is read); stages 2-6 run the decoder, neuron
    input, state step, predictive encoder and sigma-delta of :mod:`rtl.neuron`, one multiplier
    chain each; stage 7 offers the spike on ``spikes``. The per-neuron registers live in the
    memories of :data:`STATE_GROUPS`: each is read one stage ahead of the stage that uses its
    old word and written in the stage that computes its last field, so a stage register holds
    only what a later stage uses (``rho_last`` is not stored: :data:`DERIVED`). A spike the bus
    does not take stalls the whole pipeline (memory read ports hold their data), so nothing is
    dropped; the stall depends only on registers and the bus's ``ready``.

Weights are stored where they are consumed: layer ``l`` holds ``W_{l-1}`` by rows
(``w_below``, word ``j * C + k // lanes``, lane ``k % lanes``) and ``W_l`` transposed
(``w_above``, word ``k * C + j // lanes``, lane ``j % lanes``): each matrix is stored twice,
once in each core that reads it, which keeps both cores' accumulate loops independent.
"""

from __future__ import annotations



from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, memory, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from golden_model.config import EqSpikeConfig

from .arith import const_mul, reg_shape
from .bus import address_shape, spike_signature
from .learning import inference_weight, learning_members
from .neuron import (NUDGE_SHAPE, decode_v, neuron_input, predictive_encode, sigma_delta,
                     state_step)

__all__ = ["UPDATE_STAGES", "INPUT_STAGES", "HostSel", "mem_depth", "queue_depth", "host_data_width",
           "index_shape", "state_layout", "stored_layout", "STATE_GROUPS", "DERIVED", "state_memories", "chunks",
           "LayerCore", "InputCore"]


#: Update-pass stages of a non-input core after the address stage 0: what each computes
#: (one multiplier chain at most per stage); the last one writes the word and offers the spike.
UPDATE_STAGES = ("register the accumulator lane", "decoder: v; write acc", "neuron input: x",
                 "state step: s", "predictive encoder: a; write v, s", "sigma-delta: phi, q",
                 "write x, a, phi, q + spike")
#: The same for the input core (its s is the clamped input).
INPUT_STAGES = ("read the words", "predictive encoder: a, rho_last", "sigma-delta: phi, q",
                "write a, rho_last, phi, q + spike")


class HostSel(enum.Enum, shape=3):
    """Which parameter memory of a core a host write goes to."""

    NONE = 0
    W_BELOW = 1
    W_ABOVE = 2
    BIAS = 3
    TARGET = 4
    INPUT = 5


def mem_depth(words: int) -> int:
    """Depth of a memory holding ``words`` words: at least 2, so its address has a bit
    (a 1-word memory would get a zero-width address port, which Verilog cannot declare)."""
    return max(words, 2)


def queue_depth(sources: int) -> int:
    """Depth of the spike queue from a layer of ``sources`` neurons: all of them fit (at most one
    spike each per tick); at least 3 because ``SyncFIFOBuffered`` of depth 2 holds a 1-word
    memory (zero-width address) and of depth 1 runs at half rate."""
    return max(sources, 3)


def chunks(cfg: EqSpikeConfig, l: int) -> int:
    """Accumulator words of layer ``l``: ``C = ceil(n_l / lanes)``."""
    return -(-cfg.layers[l] // cfg.lanes)


def index_shape(cfg: EqSpikeConfig):
    """Shape of a neuron index in the largest layer."""
    return address_shape(max(cfg.layers))


def state_layout(cfg: EqSpikeConfig, l: int) -> data.StructLayout:
    """Per-neuron register word of layer ``l`` (the model's register names; input: encoder only)."""
    fields = {}
    if l > 0:
        fields["acc"] = reg_shape(cfg.acc_format(l))
        fields["v"] = reg_shape(cfg.v)
        fields["x"] = reg_shape(cfg.x)
    fields["s"] = reg_shape(cfg.s)
    fields["a"] = reg_shape(cfg.a)
    fields["rho_last"] = reg_shape(cfg.s)
    fields["phi"] = reg_shape(cfg.phi)
    fields["q"] = unsigned(1)
    return data.StructLayout(fields)


def stored_layout(cfg: EqSpikeConfig, l: int) -> data.StructLayout:
    """Word of layer ``l``'s ``state`` memory: :func:`state_layout`, except that the input
    core keeps ``s`` in its separate ``inputs`` memory (host-written, kept across RESET)."""
    layout = state_layout(cfg, l)
    if l > 0:
        return layout
    return data.StructLayout({k: v for k, v in layout.members.items() if k != "s"})


#: A layer core keeps its per-neuron registers in three memories, each written in the update
#: stage that computes its last field, so that no value travels down the pipeline only to be
#: written back (on iCE40 each such flip-flop costs a logic cell): memory name -> fields.
STATE_GROUPS = {"state_acc": ("acc",), "state_vs": ("v", "s"), "state_xap": ("x", "a", "phi", "q")}
#: Registers a layer core does not store: the encoder sets ``rho_last' = s'`` every tick (and
#: a clear zeroes both), so between passes ``rho_last`` always equals ``s``; read-back derives it.
DERIVED = {"rho_last": "s"}


def state_memories(cfg: EqSpikeConfig, l: int) -> dict:
    """Memories holding layer ``l``'s per-neuron registers: name -> word layout. Layer cores:
    :data:`STATE_GROUPS` (``rho_last`` is :data:`DERIVED`); the input core: ``state``, its
    encoder registers (``s`` is in its ``inputs`` memory)."""
    if l == 0:
        return {"state": stored_layout(cfg, 0)}
    fields = state_layout(cfg, l).members
    return {name: data.StructLayout({f: fields[f] for f in group}) for name, group in STATE_GROUPS.items()}


def host_data_width(cfg: EqSpikeConfig) -> int:
    """Width of the host data word: every register, weight (learning format when learning),
    bias and the 32-bit counters fit."""
    widths = [32, cfg.v.width, cfg.x.width, cfg.s.width + 1, cfg.a.width, cfg.phi.width]
    widths += [cfg.learn_format(l).width for l in range(len(cfg.weights))] + [f.width for f in cfg.biases]
    widths += [cfg.acc_format(l).width for l in range(1, cfg.n_layers)]
    return max(widths)


def _host_members(cfg: EqSpikeConfig, l: int) -> dict:
    return {
        "h_sel": In(HostSel),          # parameter memory written on a cycle with h_we
        "h_we": In(1),
        "h_row": In(index_shape(cfg)),
        "h_col": In(index_shape(cfg)),
        "h_data": In(signed(host_data_width(cfg))),
        "h_rd_addr": In(index_shape(cfg)),   # state read: word valid on h_rd_data next cycle
        "h_rd_data": Out(state_layout(cfg, l)),
    }


def _control_members(cfg: EqSpikeConfig) -> dict:
    return {
        "upd_start": In(1),   # pulse: run the update pass over every neuron
        "clr_start": In(1),   # pulse: zero every register and drop queued spikes (new sample)
        "busy": Out(1),       # update pass or clear in progress
        "inv_lam": In(unsigned(cfg.rom_width("inv_lam"))),
    }


class LayerCore(wiring.Component):
    """Core of non-input layer ``l``: queues, weights, accumulator, neuron update pipeline.

    Parameters
    ----------
    cfg : EqSpikeConfig
    l : int
        ``1 <= l < cfg.n_layers``.
    fault : None, "wrap" or "floor"
        Deliberately broken arithmetic (tests only).

    Members
    -------
    from_below, from_above : In(stream)
        Spikes of layers ``l-1`` and ``l+1`` (no ``from_above`` on the output layer).
    spikes : Out(stream)
        This layer's spikes, neuron address payload, in address order.
    acc_en : In(1)
        Accumulate phase: consume queued spikes.
    acc_idle : Out(1)
        Queues empty: every event has issued (the last sum is written this cycle, before any
        update-pass read).
    acc_issue : Out(1)
        A chunk operation (``lanes`` synaptic operations) issued this cycle.
    acc_pop : Out(1)
        An event finished issuing this cycle.
    upd_start, clr_start, busy, eps, lam, inv_lam, nudge
        Control from the network (``nudge`` on the output layer only).
    ovf : Out(range(5))
        How many registers of the neuron written this cycle saturated or wrapped.
    h_* : host port (parameter writes, state reads).
    """

    def __init__(self, cfg: EqSpikeConfig, l: int, fault=None):
        if not isinstance(cfg, EqSpikeConfig):
            raise TypeError(f"cfg must be an EqSpikeConfig, not {cfg!r}")
        if not 1 <= l < cfg.n_layers:
            raise ValueError(f"l must be in 1..{cfg.n_layers - 1}, not {l!r}")
        self.cfg, self.l, self.fault = cfg, l, fault
        self.n = cfg.layers[l]
        self.n_below = cfg.layers[l - 1]
        self.n_above = cfg.layers[l + 1] if l + 1 < cfg.n_layers else 0
        self.is_output = self.n_above == 0
        self.C = chunks(cfg, l)
        members = {
            "from_below": In(spike_signature(self.n_below)),
            "spikes": Out(spike_signature(self.n)),
            "acc_en": In(1),
            "acc_idle": Out(1),
            "acc_issue": Out(1),
            "acc_pop": Out(1),
            "eps": In(unsigned(cfg.rom_width("eps"))),
            "lam": In(unsigned(cfg.rom_width("lam"))),
            "ovf": Out(range(5)),
        }
        if not self.is_output:
            members["from_above"] = In(spike_signature(self.n_above))
        else:
            members["nudge"] = In(NUDGE_SHAPE)
        members.update(_control_members(cfg))
        members.update(_host_members(cfg, l))
        members.update(learning_members(cfg, l))     # on-chip learning hooks (rtl.learning)
        # host read-back of parameters (outside accumulate): the weight three cycles after
        # h_row/h_col (address and word are registered), bias and target the cycle after h_rd_addr
        members["h_rd_weight"] = Out(reg_shape(cfg.learn_format(l - 1)))   # W_{l-1}[h_row, h_col]
        members["h_rd_bias"] = Out(reg_shape(cfg.biases[l - 1]))      # b_l[h_rd_addr]
        if self.is_output:
            members["h_rd_target"] = Out(reg_shape(cfg.s))            # y[h_rd_addr]
        super().__init__(members)
        # memories are built here so that tests and the harness can reach them by name
        L, C = cfg.lanes, self.C
        self.acc_fmt = cfg.acc_format(l)
        # weight memories hold learning-format codes when learning (``extra`` more LSBs, which
        # the accumulate path rounds to the inference format: rtl.learning.inference_weight)
        self.learn = cfg.learning is not None
        self.extra = cfg.learning.extra_frac if self.learn else 0
        self.wb_fmt = cfg.learn_format(l - 1)
        self.w_below = memory.Memory(shape=unsigned(L * self.wb_fmt.width), depth=mem_depth(self.n_below * C),
                                     init=[])
        if not self.is_output:
            self.wa_fmt = cfg.learn_format(l)
            self.w_above = memory.Memory(shape=unsigned(L * self.wa_fmt.width), depth=mem_depth(self.n_above * C),
                                         init=[])
        self.acc_mem = memory.Memory(shape=unsigned(L * self.acc_fmt.width), depth=mem_depth(C), init=[])
        # per-neuron registers: one memory per group of STATE_GROUPS (``self.state_acc`` ...)
        self.state_mems = {name: memory.Memory(shape=layout, depth=mem_depth(self.n), init=[])
                           for name, layout in state_memories(cfg, l).items()}
        for name, mem in self.state_mems.items():
            setattr(self, name, mem)
        self.bias = memory.Memory(shape=reg_shape(cfg.biases[l - 1]), depth=mem_depth(self.n), init=[])
        if self.is_output:
            self.target = memory.Memory(shape=reg_shape(cfg.s), depth=mem_depth(self.n), init=[])
        if self.learn:   # held states s^- and s^+ (lane-packed like the accumulator)
            self.s_free = memory.Memory(shape=unsigned(L * cfg.s.width), depth=mem_depth(C), init=[])
            self.s_nudged = memory.Memory(shape=unsigned(L * cfg.s.width), depth=mem_depth(C), init=[])

    def elaborate(self, platform):
        m = Module()
        cfg, L, C, n = self.cfg, self.cfg.lanes, self.C, self.n
        accw = self.acc_fmt.width

        # -- memories and ports ----------------------------------------------------------------
        m.submodules.w_below = self.w_below
        wb_wr = self.w_below.write_port(granularity=self.wb_fmt.width)
        wb_rd = self.w_below.read_port()
        if not self.is_output:
            m.submodules.w_above = self.w_above
            wa_wr = self.w_above.write_port(granularity=self.wa_fmt.width)
            wa_rd = self.w_above.read_port()
        m.submodules.acc_mem = self.acc_mem
        acc_wr = self.acc_mem.write_port()
        acc_rd = self.acc_mem.read_port(transparent_for=(acc_wr,))
        st_wr, st_rd = {}, {}
        for name, mem in self.state_mems.items():
            m.submodules[name] = mem
            st_wr[name], st_rd[name] = mem.write_port(), mem.read_port()
        m.submodules.bias = self.bias
        b_wr = self.bias.write_port()
        b_rd = self.bias.read_port()
        if self.is_output:
            m.submodules.target = self.target
            y_wr = self.target.write_port()
            y_rd = self.target.read_port()

        # -- host writes: weights land in lane (col % lanes) of word row * C + col // lanes ------
        # The word address (a multiply by C) and the lane are registered: valid the cycle after
        # h_row/h_col, which the network holds for a whole command (it writes and reads a
        # weight one cycle later), so the multiplier stays off the memory and read-back paths.
        h_waddr = Signal(range(max(self.n_below, self.n_above, 1) * C + 1))
        lane_of = Signal(range(max(L, 2)))
        m.d.sync += h_waddr.eq(const_mul(self.h_row, C) + self.h_col // L)
        if L > 1:
            m.d.sync += lane_of.eq(self.h_col % L)
        lane_en = Cat(lane_of == i for i in range(L))
        m.d.comb += [
            wb_wr.addr.eq(wb_rd.addr),   # one address per memory: single-port RAM (SPRAM) maps
            wb_wr.data.eq(Cat(self.h_data[:self.wb_fmt.width] for _ in range(L))),
            wb_wr.en.eq(Mux(self.h_we & (self.h_sel == HostSel.W_BELOW), lane_en, 0)),
            b_wr.addr.eq(self.h_row),
            b_wr.data.eq(self.h_data),
            b_wr.en.eq(self.h_we & (self.h_sel == HostSel.BIAS)),
        ]
        if not self.is_output:
            m.d.comb += [
                wa_wr.addr.eq(wa_rd.addr),
                wa_wr.data.eq(Cat(self.h_data[:self.wa_fmt.width] for _ in range(L))),
                wa_wr.en.eq(Mux(self.h_we & (self.h_sel == HostSel.W_ABOVE), lane_en, 0)),
            ]
        else:
            m.d.comb += [
                y_wr.addr.eq(self.h_row),
                y_wr.data.eq(self.h_data),
                y_wr.en.eq(self.h_we & (self.h_sel == HostSel.TARGET)),
            ]

        # -- spike queues: one per neighbour, deep enough for all its neurons ---------------------
        qb = m.submodules.queue_below = SyncFIFOBuffered(width=address_shape(self.n_below).width,
                                                         depth=queue_depth(self.n_below))
        m.d.comb += [qb.w_data.eq(self.from_below.payload), qb.w_en.eq(self.from_below.valid),
                     self.from_below.ready.eq(qb.w_rdy)]
        queues = [(qb, wb_rd, self.wb_fmt)]
        if not self.is_output:
            qa = m.submodules.queue_above = SyncFIFOBuffered(width=address_shape(self.n_above).width,
                                                             depth=queue_depth(self.n_above))
            m.d.comb += [qa.w_data.eq(self.from_above.payload), qa.w_en.eq(self.from_above.valid),
                         self.from_above.ready.eq(qa.w_rdy)]
            queues.append((qa, wa_rd, self.wa_fmt))

        mode_upd = Signal()     # update pass running (owns the accumulator ports)
        mode_clr = Signal()     # clear sweep running

        # -- accumulate: stage A issues (event, chunk) and registers the weight address, stage a
        # reads the weight word, B registers it and reads the accumulator word, C adds and writes --
        chunk = Signal(range(max(C, 2)))
        use_below = qb.r_rdy                    # events from below first, then from above
        row = Mux(use_below, qb.r_data, qa.r_data) if len(queues) == 2 else qb.r_data
        have = qb.r_rdy if len(queues) == 1 else (qb.r_rdy | qa.r_rdy)
        issue = self.acc_en & have & ~mode_upd & ~mode_clr
        last_chunk = chunk == C - 1
        # the address register keeps the multiply row * C off the path into the weight memory
        # (hundreds of block RAMs on the paper's network)
        a_addr = Signal(range(mem_depth(max(self.n_below, self.n_above) * C)), name="acc_waddr")
        m.d.sync += a_addr.eq(const_mul(row, C) + chunk)
        for _, rd, _ in queues:
            m.d.comb += rd.addr.eq(a_addr)
        with m.If(~self.acc_en):   # host access: write, or read-back of W_{l-1}[h_row, h_col]
            m.d.comb += [rd.addr.eq(h_waddr) for _, rd, _ in queues]
        # no read while the host writes (the read word then is never used): a write and a read
        # port with one address and this enable map to a single-port RAM
        m.d.comb += wb_rd.en.eq(~wb_wr.en.any())
        if len(queues) == 2:
            m.d.comb += wa_rd.en.eq(~wa_wr.en.any())
        m.d.comb += [qb.r_en.eq((issue & use_below & last_chunk) | (mode_clr & qb.r_rdy))]
        if len(queues) == 2:
            m.d.comb += qa.r_en.eq((issue & ~use_below & last_chunk) | (mode_clr & qa.r_rdy))
        with m.If(issue):
            m.d.sync += chunk.eq(Mux(last_chunk, 0, chunk + 1))
        a_valid, a_below, a_chunk = Signal(), Signal(), Signal(range(max(C, 2)))
        m.d.sync += [a_valid.eq(issue), a_below.eq(use_below), a_chunk.eq(chunk)]
        b_valid, b_below, b_chunk = Signal(), Signal(), Signal(range(max(C, 2)))
        m.d.sync += [b_valid.eq(a_valid), b_below.eq(a_below), b_chunk.eq(a_chunk)]
        c_valid, c_below, c_chunk = Signal(), Signal(), Signal(range(max(C, 2)))
        m.d.sync += [c_valid.eq(b_valid), c_below.eq(b_below), c_chunk.eq(b_chunk)]
        # the weight words as read, registered every cycle (the weight memory's bank multiplexer,
        # hundreds of block RAMs on the paper's network, stays off the adder's path)
        wb_word = Signal.like(wb_rd.data, name="wb_word")
        m.d.sync += wb_word.eq(wb_rd.data)
        if len(queues) == 2:
            wa_word = Signal.like(wa_rd.data, name="wa_word")
            m.d.sync += wa_word.eq(wa_rd.data)

        def lanes_of(word, fmt, shift=True):
            # each weight shifted left to the accumulator's fraction bits (exact)
            lanes = [word[i * fmt.width:(i + 1) * fmt.width].as_signed() for i in range(L)]
            if shift and self.extra:   # learning format: rounded to the inference weight first
                return [inference_weight(w, fmt, self.extra) << (self.acc_fmt.frac - fmt.frac + self.extra)
                        for w in lanes]
            return [w << ((self.acc_fmt.frac - fmt.frac) * shift) for w in lanes]

        w_lanes = lanes_of(wb_word, self.wb_fmt)
        if len(queues) == 2:
            wa_lanes = lanes_of(wa_word, self.wa_fmt)
            w_lanes = [Mux(c_below, wb, wa) for wb, wa in zip(w_lanes, wa_lanes)]
        acc_lanes = [acc_rd.data[i * accw:(i + 1) * accw].as_signed() for i in range(L)]
        acc_sum = Cat((a + w)[:accw] for a, w in zip(acc_lanes, w_lanes))  # acc_format: never overflows
        m.d.comb += [
            self.acc_issue.eq(issue),
            self.acc_pop.eq(issue & last_chunk),
            # idle once the last event has issued and passed stages a and B: its adder write
            # (stage C, this cycle) lands before the update pass can read the word (stage 0 runs
            # the cycle after upd_start)
            self.acc_idle.eq((qb.level == 0) & (qa.level == 0 if len(queues) == 2 else 1) & ~a_valid & ~b_valid),
        ]

        # -- update pass: one neuron per cycle through UPDATE_STAGES (see the module docstring) --
        idx = Signal(range(max(n, 2)))          # neuron presented this cycle (stage 0)
        lane = Signal(range(max(L, 2)))
        word = Signal(range(max(C, 2)))
        issuing = Signal()                      # stage 0 holds a neuron
        s1_valid = Signal()
        s1_idx = Signal.like(idx)
        s1_lane = Signal.like(lane)
        s1_word = Signal.like(word)
        s1_wordlast = Signal()
        K = len(UPDATE_STAGES)                  # stages after stage 0; the last one writes
        valid = [None, s1_valid] + [Signal(name=f"p{k}_valid") for k in range(2, K + 1)]
        pidx = [idx, s1_idx] + [Signal.like(idx, name=f"p{k}_idx") for k in range(2, K + 1)]
        if self.learn:   # word and lane of the neuron, for the held-state memories (stage 5)
            pword = [None, s1_word] + [Signal.like(word, name=f"p{k}_word") for k in range(2, K + 1)]
            plane = [None, s1_lane] + [Signal.like(lane, name=f"p{k}_lane") for k in range(2, K + 1)]
        # Each stage register holds only what a later stage uses: the value it computed, the
        # old values still to be consumed, the fields of a state group not yet written. Old
        # values are read from memory (address one stage ahead) in the stage that uses them.
        sf, vf, xf, af, pf = (reg_shape(cfg.s), reg_shape(cfg.v), reg_shape(cfg.x), reg_shape(cfg.a),
                              reg_shape(cfg.phi))
        ovf = unsigned(3)     # registers of the neuron that saturated or wrapped so far
        p2 = Signal(data.StructLayout({"acc": reg_shape(self.acc_fmt)}), name="p2")
        p3 = Signal(data.StructLayout({"v": vf, "s_old": sf, "ovf": ovf}), name="p3")
        p4 = Signal(data.StructLayout({"v": vf, "x": xf, "s_old": sf, "ovf": ovf}), name="p4")
        p5 = Signal(data.StructLayout({"v": vf, "x": xf, "s": sf, "s_old": sf, "ovf": ovf}), name="p5")
        p6 = Signal(data.StructLayout({"x": xf, "a": af, "ovf": ovf}), name="p6")
        p7 = Signal(data.StructLayout({"x": xf, "a": af, "phi": pf, "q": 1, "ovf": ovf}), name="p7")
        # a spike the bus does not take stalls every stage (from registers only: short path)
        stall = valid[K] & p7.q & ~self.spikes.ready
        vs_rd, xap_rd = st_rd["state_vs"].data, st_rd["state_xap"].data

        acc_sel = Array(acc_lanes)[s1_lane] if L > 1 else acc_lanes[0]
        f = self.fault
        # stage 1 registers this neuron's accumulator lane (block-RAM clock-to-out off the math)
        # stage 2: decoder -> v (old v and s read at stage 1)
        v_next, ovf_v = decode_v(cfg, self.l, p2.acc, vs_rd.v, self.lam, f)
        # stage 3: neuron input -> x (bias and target read at stage 2)
        extra = (y_rd.data, p3.s_old, self.nudge) if self.is_output else ()
        x_next, ovf_x = neuron_input(cfg, self.l, p3.v, b_rd.data, *extra, fault=f)
        # stage 4: state step -> s
        s_next = state_step(cfg, p4.x, p4.s_old, self.eps, f)
        # stage 5: predictive encoder -> a (rho_last is the old s; it becomes the new s)
        a_next, ovf_a = predictive_encode(cfg, p5.s, p5.s_old, self.inv_lam, f)
        # stage 6: sigma-delta -> phi, q (old phi read at stage 5); stage 7 offers the spike
        phi_next, q, ovf_phi = sigma_delta(cfg, p6.a, xap_rd.phi, f)

        # memory read addresses: the update pass when running (one stage ahead of the stage that
        # uses the word), else the host's read address
        reads = [(st_rd["state_acc"], 0), (st_rd["state_vs"], 1), (b_rd, 2), (st_rd["state_xap"], 5)]
        if self.is_output:
            reads.append((y_rd, 2))
        for rd, k in reads:
            m.d.comb += [rd.addr.eq(Mux(mode_upd, pidx[k], self.h_rd_addr)), rd.en.eq(~stall)]
        h_word = self.h_rd_data
        for name, rd in st_rd.items():
            m.d.comb += [h_word[fld].eq(rd.data[fld]) for fld in STATE_GROUPS[name]]
        m.d.comb += [h_word[reg].eq(h_word[src]) for reg, src in DERIVED.items()]
        m.d.comb += self.h_rd_bias.eq(b_rd.data)
        if self.is_output:
            m.d.comb += self.h_rd_target.eq(y_rd.data)
        wb_host = lanes_of(wb_word, self.wb_fmt, shift=False)
        m.d.comb += self.h_rd_weight.eq(Array(wb_host)[lane_of] if L > 1 else wb_host[0])
        with m.If(mode_upd):
            m.d.comb += [acc_rd.addr.eq(word), acc_rd.en.eq(~stall)]
        with m.Else():
            m.d.comb += acc_rd.addr.eq(b_chunk)

        # accumulator writes: stage B sum, or zero after the update pass read a whole word, or clear
        clr_idx = Signal(range(max(n, 2) + 1))
        with m.If(mode_clr):
            m.d.comb += [acc_wr.addr.eq(clr_idx), acc_wr.data.eq(0), acc_wr.en.eq(clr_idx < C)]
        with m.Elif(mode_upd):
            m.d.comb += [acc_wr.addr.eq(s1_word), acc_wr.data.eq(0), acc_wr.en.eq(s1_valid & s1_wordlast & ~stall)]
        with m.Else():
            m.d.comb += [acc_wr.addr.eq(c_chunk), acc_wr.data.eq(acc_sum), acc_wr.en.eq(c_valid)]

        # state writes: each group in the stage that computes its last field, or the clear sweep
        # (which writes the same stage registers: they are zero from its first cycle, below, so
        # the write data needs no multiplexer)
        writes = {"state_acc": (2, {"acc": p2.acc}), "state_vs": (5, {"v": p5.v, "s": p5.s}),
                  "state_xap": (K, {"x": p7.x, "a": p7.a, "phi": p7.phi, "q": p7.q})}
        for name, (k, values) in writes.items():
            wr = st_wr[name]
            m.d.comb += [wr.data[fld].eq(val) for fld, val in values.items()]
            with m.If(mode_clr):
                m.d.comb += [wr.addr.eq(clr_idx), wr.en.eq(clr_idx < n)]
            with m.Else():
                m.d.comb += [wr.addr.eq(pidx[k]), wr.en.eq(valid[k] & ~stall)]
        m.d.comb += [
            self.spikes.valid.eq(valid[K] & p7.q),
            self.spikes.payload.eq(pidx[K]),
            self.ovf.eq(Mux(valid[K] & ~stall, p7.ovf, 0)),
        ]

        with m.If(~stall):
            m.d.sync += [
                s1_valid.eq(issuing), s1_idx.eq(idx), s1_lane.eq(lane), s1_word.eq(word),
                s1_wordlast.eq((lane == L - 1) | (idx == n - 1)),
            ]
            for k in range(2, K + 1):
                m.d.sync += [valid[k].eq(valid[k - 1]), pidx[k].eq(pidx[k - 1])]
                if self.learn:
                    m.d.sync += [pword[k].eq(pword[k - 1]), plane[k].eq(plane[k - 1])]
            m.d.sync += [
                p2.acc.eq(acc_sel),
                p3.v.eq(v_next), p3.s_old.eq(vs_rd.s), p3.ovf.eq(ovf_v),
                p4.v.eq(p3.v), p4.x.eq(x_next), p4.s_old.eq(p3.s_old), p4.ovf.eq(p3.ovf + ovf_x),
                p5.v.eq(p4.v), p5.x.eq(p4.x), p5.s.eq(s_next), p5.s_old.eq(p4.s_old), p5.ovf.eq(p4.ovf),
                p6.x.eq(p5.x), p6.a.eq(a_next), p6.ovf.eq(p5.ovf + ovf_a),
                p7.x.eq(p6.x), p7.a.eq(p6.a), p7.phi.eq(phi_next), p7.q.eq(q), p7.ovf.eq(p6.ovf + ovf_phi),
            ]
            with m.If(issuing):
                with m.If(idx == n - 1):
                    m.d.sync += issuing.eq(0)
                with m.Else():
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(lane == L - 1):
                        m.d.sync += [lane.eq(0), word.eq(word + 1)]
                    with m.Else():
                        m.d.sync += lane.eq(lane + 1)

        with m.If(self.clr_start | mode_clr):     # the clear sweep writes these: zero
            m.d.sync += [p2.eq(0), p5.eq(0), p7.eq(0)]
        with m.If(self.upd_start & ~mode_upd):
            m.d.sync += [mode_upd.eq(1), issuing.eq(1), idx.eq(0), lane.eq(0), word.eq(0)]
        in_flight = issuing | Cat(valid[1:]).any()
        with m.Elif(mode_upd & ~in_flight):
            m.d.sync += mode_upd.eq(0)

        # clear sweep: zero every word; drop queued spikes; ends when both are done
        queues_empty = (qb.level == 0) & ((qa.level == 0) if len(queues) == 2 else 1)
        with m.If(self.clr_start & ~mode_clr):
            m.d.sync += [mode_clr.eq(1), clr_idx.eq(0), chunk.eq(0)]
        with m.Elif(mode_clr):
            with m.If(clr_idx < n):
                m.d.sync += clr_idx.eq(clr_idx + 1)
            with m.Elif(queues_empty):
                m.d.sync += mode_clr.eq(0)
        m.d.comb += self.busy.eq((mode_upd & in_flight) | mode_clr | self.upd_start | self.clr_start)
        if self.learn:
            self._learning_hooks(m, wb_rd, wb_wr, wa_wr if not self.is_output else None, b_rd, b_wr,
                                 pword[5], plane[5], valid[5] & ~stall, p5.s)
        return m

    def _learning_hooks(self, m, wb_rd, wb_wr, wa_wr, b_rd, b_wr, s_word, s_lane, s_we, s_new):
        """On-chip learning (rtl.learning): held states written by the update pass, and the
        engine's ports muxed onto the weight and bias memories while it owns them."""
        L, sw = self.cfg.lanes, self.cfg.s.width
        m.submodules.s_free = self.s_free
        m.submodules.s_nudged = self.s_nudged
        lane_en = Cat(s_lane == t for t in range(L)) if L > 1 else Const(1, 1)
        for mem, sel in ((self.s_free, ~self.l_nudged), (self.s_nudged, self.l_nudged)):
            wr, rd = mem.write_port(granularity=sw), mem.read_port()
            m.d.comb += [wr.addr.eq(s_word), wr.data.eq(Cat(s_new for _ in range(L))),
                         wr.en.eq(Mux(s_we & sel, lane_en, 0)), rd.addr.eq(self.l_s_addr)]
            m.d.comb += (self.l_s_free if mem is self.s_free else self.l_s_nudged).eq(rd.data)
        m.d.comb += [self.l_wb_rdata.eq(wb_rd.data), self.l_b_rdata.eq(b_rd.data)]
        # while the engine owns them, w_below reads and writes different words in one cycle
        # (a simple dual-port RAM) and its read port is always enabled
        with m.If(self.l_own):
            m.d.comb += [wb_rd.addr.eq(self.l_wb_raddr), wb_rd.en.eq(1), wb_wr.addr.eq(self.l_wb_waddr),
                         wb_wr.data.eq(self.l_wb_wdata), wb_wr.en.eq(self.l_wb_wen),
                         b_rd.addr.eq(self.l_b_raddr), b_wr.addr.eq(self.l_b_waddr),
                         b_wr.data.eq(self.l_b_wdata), b_wr.en.eq(self.l_b_wen)]
            if wa_wr is not None:
                m.d.comb += [wa_wr.addr.eq(self.l_wa_waddr), wa_wr.data.eq(self.l_wa_wdata),
                             wa_wr.en.eq(self.l_wa_wen)]


class InputCore(wiring.Component):
    """Clamped input layer: inputs written by the host, encoder only (a, rho_last, phi, q).

    Its update pass (``INPUT_STAGES``: 0 address, 1 read, 2 encoder, 3 sigma-delta, 4 write
    + spike) runs in the same slot as the other cores' and its spikes go up the same bus.

    Members
    -------
    spikes : Out(stream)
    upd_start, clr_start, busy, inv_lam
        Control from the network. Clearing keeps the inputs (they are parameters of the run).
    ovf : Out(range(5))
        Registers of the neuron written this cycle that saturated or wrapped (a, phi).
    h_* : host port; ``h_sel == INPUT`` writes input ``h_row``.
    """

    def __init__(self, cfg: EqSpikeConfig, fault=None):
        if not isinstance(cfg, EqSpikeConfig):
            raise TypeError(f"cfg must be an EqSpikeConfig, not {cfg!r}")
        self.cfg, self.fault, self.l = cfg, fault, 0
        self.n = cfg.layers[0]
        members = {"spikes": Out(spike_signature(self.n)), "ovf": Out(range(5))}
        members.update(_control_members(cfg))
        members.update(_host_members(cfg, 0))
        members.update(learning_members(cfg, 0))     # on-chip learning: the inputs are s^- = s^+
        super().__init__(members)
        self.enc_layout = stored_layout(cfg, 0)
        self.inputs = memory.Memory(shape=reg_shape(cfg.s), depth=mem_depth(self.n), init=[])
        self.state = memory.Memory(shape=self.enc_layout, depth=mem_depth(self.n), init=[])

    def elaborate(self, platform):
        m = Module()
        n = self.n
        m.submodules.inputs = self.inputs
        in_wr = self.inputs.write_port()
        in_rd = self.inputs.read_port()
        m.submodules.state = self.state
        st_wr = self.state.write_port()
        st_rd = self.state.read_port()
        m.d.comb += [in_wr.addr.eq(self.h_row), in_wr.data.eq(self.h_data),
                     in_wr.en.eq(self.h_we & (self.h_sel == HostSel.INPUT))]

        mode_upd, mode_clr = Signal(), Signal()
        idx = Signal(range(max(n, 2)))
        issuing, s1_valid = Signal(), Signal()
        s1_idx = Signal.like(idx)
        K = len(INPUT_STAGES)
        valid = [None, s1_valid] + [Signal(name=f"p{k}_valid") for k in range(2, K + 1)]
        pidx = [idx, s1_idx] + [Signal.like(idx, name=f"p{k}_idx") for k in range(2, K + 1)]
        # as in LayerCore: the words are read at stage 1 and used at stage 2 straight from the
        # read ports; a stage register holds only what a later stage uses
        sf, af, pf = reg_shape(self.cfg.s), reg_shape(self.cfg.a), reg_shape(self.cfg.phi)
        p3 = Signal(data.StructLayout({"a": af, "rho_last": sf, "phi_old": pf, "ovf": unsigned(2)}), name="p3")
        p4 = Signal(data.StructLayout({"a": af, "rho_last": sf, "phi": pf, "q": 1, "ovf": unsigned(2)}), name="p4")
        stall = valid[K] & p4.q & ~self.spikes.ready
        f = self.fault
        # stage 2: predictive encoder (rho_last becomes s); 3: sigma-delta; 4 writes + spike
        a_next, ovf_a = predictive_encode(self.cfg, in_rd.data, st_rd.data.rho_last, self.inv_lam, f)
        phi_next, q, ovf_phi = sigma_delta(self.cfg, p3.a, p3.phi_old, f)
        for rd in (in_rd, st_rd):
            m.d.comb += [rd.addr.eq(Mux(mode_upd, pidx[1], self.h_rd_addr)), rd.en.eq(~stall)]
        if self.cfg.learning is not None:   # the learning engine reads the inputs (s^- = s^+)
            m.d.comb += [self.l_s_free.eq(in_rd.data), self.l_s_nudged.eq(in_rd.data)]
            with m.If(self.l_own):
                m.d.comb += in_rd.addr.eq(self.l_s_addr)
        m.d.comb += [
            self.h_rd_data.s.eq(in_rd.data), self.h_rd_data.a.eq(st_rd.data.a),
            self.h_rd_data.rho_last.eq(st_rd.data.rho_last), self.h_rd_data.phi.eq(st_rd.data.phi),
            self.h_rd_data.q.eq(st_rd.data.q),
        ]
        # state writes: stage 4, or the clear sweep (p4 is zero from its first cycle, below)
        clr_idx = Signal(range(n + 1))
        m.d.comb += [st_wr.data[name].eq(p4[name]) for name in self.enc_layout.members]
        with m.If(mode_clr):
            m.d.comb += [st_wr.addr.eq(clr_idx), st_wr.en.eq(clr_idx < n)]
        with m.Else():
            m.d.comb += [st_wr.addr.eq(pidx[K]), st_wr.en.eq(valid[K] & ~stall)]
        m.d.comb += [
            self.spikes.valid.eq(valid[K] & p4.q),
            self.spikes.payload.eq(pidx[K]),
            self.ovf.eq(Mux(valid[K] & ~stall, p4.ovf, 0)),
        ]
        with m.If(~stall):
            m.d.sync += [s1_valid.eq(issuing), s1_idx.eq(idx)]
            for k in range(2, K + 1):
                m.d.sync += [valid[k].eq(valid[k - 1]), pidx[k].eq(pidx[k - 1])]
            m.d.sync += [
                p3.a.eq(a_next), p3.rho_last.eq(in_rd.data), p3.phi_old.eq(st_rd.data.phi), p3.ovf.eq(ovf_a),
                p4.a.eq(p3.a), p4.rho_last.eq(p3.rho_last), p4.phi.eq(phi_next), p4.q.eq(q),
                p4.ovf.eq(p3.ovf + ovf_phi),
            ]
            with m.If(issuing):
                with m.If(idx == n - 1):
                    m.d.sync += issuing.eq(0)
                with m.Else():
                    m.d.sync += idx.eq(idx + 1)
        with m.If(self.clr_start | mode_clr):     # the clear sweep writes p4: zero
            m.d.sync += p4.eq(0)
        with m.If(self.upd_start & ~mode_upd):
            m.d.sync += [mode_upd.eq(1), issuing.eq(1), idx.eq(0)]
        in_flight = issuing | Cat(valid[1:]).any()
        with m.Elif(mode_upd & ~in_flight):
            m.d.sync += mode_upd.eq(0)
        with m.If(self.clr_start & ~mode_clr):
            m.d.sync += [mode_clr.eq(1), clr_idx.eq(0)]
        with m.Elif(mode_clr):
            with m.If(clr_idx < n):
                m.d.sync += clr_idx.eq(clr_idx + 1)
            with m.Else():
                m.d.sync += mode_clr.eq(0)
        m.d.comb += self.busy.eq((mode_upd & in_flight) | mode_clr | self.upd_start | self.clr_start)
        return m
