"""Time-multiplexed layer cores: :class:`LayerCore` (non-input layer) and :class:`InputCore`.

A core keeps its layer's per-neuron registers in block memories (one word per neuron;
synchronous read ports), and runs two passes per tick, started by the network's controller:

Accumulate (event-driven, ``accumulate.en``)
    Each spike waiting in the core's queues (one queue per neighbouring layer, filled from the
    spike bus during the previous tick's update pass) is expanded into ``C = cfg.chunks(l)``
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

Update (``tick.upd_start``, one group of ``U = cfg.update_lanes_of(l)`` neurons per cycle, ``UPDATE_STAGES``)
    stage 0 presents group ``g``'s address to the accumulator; stage 1 registers its ``U`` lanes
    (a slice of the accumulator word: ``U`` divides ``lanes``; a one-word accumulator is a
    register that shifts its slices down into a three-slot queue instead) and clears the word
    once its last slice is read; stages 2-6 run the decoder, neuron input, state step,
    predictive encoder and sigma-delta of :mod:`rtl.neuron` for each of the ``U`` neurons, one
    multiplier chain each; stage 7 sends the group's spikes to ``spikes``, one per cycle. The
    per-neuron registers live in the memories of :data:`STATE_GROUPS`, one group per word
    (:func:`group_layout`): each is read one stage ahead of the stage that uses its old word and
    written in the stage that computes its last field, so a stage register holds only what a
    later stage uses (``rho_last`` is not stored: :data:`DERIVED`). With ``U == 1`` the last
    stage offers its spike and a spike the bus does not take stalls the whole pipeline (memory
    read ports hold their data): the one-neuron pipeline, gate for gate. With ``U > 1`` a group
    with spikes goes into a spike queue of :data:`SPIKE_QUEUE_DEPTH` entries that sends one
    spike per cycle; the pipeline stalls only while such a group finds the queue full, a
    condition of two registers (:func:`_spike_output`). Nothing is dropped either way.

Weights are stored where they are consumed: layer ``l`` holds ``W_{l-1}`` by rows
(``w_below``, word ``j * C + k // lanes``, lane ``k % lanes``) and ``W_l`` transposed
(``w_above``, word ``k * C + j // lanes``, lane ``j % lanes``): each matrix is stored twice,
once in each core that reads it, which keeps both cores' accumulate loops independent. When
``W_{l-1}`` and ``W_l`` share one format (``cfg.weights_stacked(l)``), the transposed copy has
no memory of its own: it fills ``w_below``'s words after ``W_{l-1}``'s
(:meth:`LayerCore.weight_memory`).

Each ``elaborate`` is a short list of named steps (memory ports, host writes, spike queues,
accumulate loop, update pipeline, clear sweep, host reads, learning hooks); the signals the
steps share travel in a :class:`types.SimpleNamespace`.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from golden_model.config import EqSpikeConfig

from .arith import check_dsp_width, const_divmod, const_mul, mul, reg_shape
from .bus import address_shape, spike_signature
from .learning import inference_weight
from .neuron import (NUDGE_SHAPE, decode_finish, decode_operand, encode_finish, input_sum, nudge_signed,
                     sigma_delta, state_finish, state_operand)
from .pipeline import Plan, input_plan, layer_plan
from .ports import (HostSel, accumulate_signature, clear_words, host_data_width, host_signature, index_shape,
                    learning_signature, mem_depth, queue_depth, state_layout, tick_signature)
from .replicas import register_copies

__all__ = ["STATE_WRITES", "INPUT_WRITES", "HostSel", "mem_depth", "queue_depth", "host_data_width",
           "index_shape", "state_layout", "stored_layout", "STATE_GROUPS", "DERIVED", "state_memories",
           "group_layout", "state_word", "clear_words", "LayerCore", "InputCore"]


#: State groups a non-input core's update pass writes, and their fields (``rtl.pipeline``:
#: each is written in the stage after the one that makes its last field).
STATE_WRITES = {"state_acc": ("acc",), "state_vs": ("v", "s"), "state_xap": ("x", "a", "phi", "q")}
#: Entries of a core's spike queue when ``U > 1`` (:func:`_spike_output`): groups with spikes
#: waiting for the bus, which takes one spike per cycle (:func:`rtl.network.group_stalls`).
SPIKE_QUEUE_DEPTH = 4
#: Slots of the queue between a one-word accumulator and update stage 1 (``LayerCore._slice_queue``).
SLICE_SLOTS = 3
#: Lanes per first-level group of the host's weight read-back (``rtl.network``'s READ_LANE cycle
#: registers each group's pick; the second level picks the group).
READ_GROUP = 16
#: The input core's state word and the plan's values it is written from (``rho_last' = s``).
INPUT_WRITES = {"a": "a", "rho_last": "s", "phi": "phi", "q": "q"}


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


def group_layout(shape, U: int):
    """Word of a per-neuron memory holding ``U`` neurons (one update group): ``shape`` itself
    when ``U == 1``, else an array of ``U`` of them (neuron ``g * U + u`` is element ``u`` of
    word ``g``)."""
    return shape if U == 1 else data.ArrayLayout(shape, U)


def state_word(cfg: EqSpikeConfig, l: int, n: int) -> tuple:
    """``(word, element)`` of layer ``l``'s neuron ``n`` in the per-neuron memories
    (:func:`group_layout`, ``U_l = cfg.update_lanes_of(l)`` neurons per word)."""
    return divmod(int(n), cfg.update_lanes_of(l))


def _check_core(cfg):
    if not isinstance(cfg, EqSpikeConfig):
        raise TypeError(f"cfg must be an EqSpikeConfig, not {cfg!r}")


def _core_members(cfg: EqSpikeConfig, l: int) -> dict:
    """Ports every core has: its spikes, the tick broadcast, busy, overflow count, host port,
    learning port (learning builds)."""
    members = {
        "spikes": Out(spike_signature(cfg.layers[l])),
        "tick": In(tick_signature(cfg)),
        "busy": Out(1),            # update pass or clear in progress
        # registers of the neurons written this cycle that saturated/wrapped (4 per neuron at most)
        "ovf": Out(range(4 * cfg.update_lanes_of(l) + 1)),
        "host": In(host_signature(cfg, l)),
    }
    if cfg.learning is not None:   # on-chip learning hooks (rtl.learning)
        members["learn"] = In(learning_signature(cfg, l))
    return members


def _lane_word(shape, U: int):
    """Word of ``U`` host-writable values (bias, target, input): ``shape`` when ``U == 1``,
    else ``U`` of them packed into ``unsigned`` (written with lane granularity)."""
    return shape if U == 1 else unsigned(U * shape.width)


def _lanes(word, shape, U: int) -> list:
    """The ``U`` values of a :func:`_lane_word`."""
    if U == 1:
        return [word]
    w = shape.width
    return [word[u * w:(u + 1) * w].as_signed() if shape.signed else word[u * w:(u + 1) * w] for u in range(U)]


def _host_group(m, core):
    """The host's neuron as (update group, element), registered from ``host.rd_addr`` (valid the
    cycle after the command register; the network holds it for the whole command), and the
    group register's next value. Registered at ``U = 1`` too: the command register sits in the
    network, and the state memories' read address of a distant core (the input core's 784-word
    LUT RAM) took 14 ns of routing from it."""
    U = core.U
    if U == 1:
        group = Signal.like(core.host.rd_addr, name="h_group")
        m.d.sync += group.eq(core.host.rd_addr)
        return group, None, core.host.rd_addr
    group = Signal(range(mem_depth(core.cfg.groups(core.l))), name="h_group")
    elem = Signal(range(U), name="h_element")
    group_next, elem_next = Signal.like(group, name="h_group_next"), Signal.like(elem, name="h_element_next")
    m.d.comb += [v.eq(e) for v, e in zip((group_next, elem_next), const_divmod(core.host.rd_addr, U, core.dsp))]
    m.d.sync += [group.eq(group_next), elem.eq(elem_next)]
    return group, elem, group_next


def _lane_write(m, port, data, we, elem, U: int):
    """Host write of one value into element ``elem`` of a :func:`_lane_word` memory."""
    if U == 1:
        m.d.comb += [port.data.eq(data), port.en.eq(we)]
        return
    w = len(port.data) // U
    m.d.comb += [port.data.eq(Cat(data[:w] for _ in range(U))),
                 port.en.eq(Mux(we, Cat(elem == u for u in range(U)), 0))]


def _pipeline_registers(first_idx, K: int, prefix: str = "p"):
    """Valid flags and neuron indices of update stages 1..K (index 0: the issue stage)."""
    valid = [None, Signal(name="s1_valid")] + [Signal(name=f"{prefix}{k}_valid") for k in range(2, K + 1)]
    pidx = [first_idx, Signal.like(first_idx, name="s1_idx")]
    pidx += [Signal.like(first_idx, name=f"{prefix}{k}_idx") for k in range(2, K + 1)]
    return valid, pidx


def _pass_next(core, mode_upd, issuing, valid, pending):
    """``(mode_next, in_flight)``: the update pass runs (``mode_upd``) from ``upd_start`` while
    a group is issuing or in the pipeline, or a spike is left to send (``pending``,
    :func:`_spike_output`); ``mode_next`` is ``mode_upd``'s next value."""
    in_flight = issuing | Cat(valid[1:]).any() | pending
    start = core.tick.upd_start & ~mode_upd
    return Mux(start, 1, Mux(mode_upd & ~in_flight, 0, mode_upd)), in_flight


def _pass_control(m, core, mode_upd, mode_clr, issuing, idx, valid, start_regs, pending):
    """The update pass runs (``mode_upd``) from ``upd_start`` until the pipeline is empty and
    no spike is left to send (:func:`_pass_next`); ``busy`` covers it, the clear sweep
    (``mode_clr``) and the start pulses (so the controller never sees a core idle in the cycle
    it starts it)."""
    mode_next, in_flight = _pass_next(core, mode_upd, issuing, valid, pending)
    m.d.sync += mode_upd.eq(mode_next)
    with m.If(core.tick.upd_start & ~mode_upd):
        m.d.sync += [issuing.eq(1), idx.eq(0)] + start_regs
    m.d.comb += core.busy.eq((mode_upd & in_flight) | mode_clr | core.tick.upd_start | core.tick.clr_start)


def _read_addresses(m, reads, mode_next, idx_next, pidx, stall, group_next):
    """Each ``(port, k)`` of ``reads`` reads at ``Mux(mode_upd, pidx[k - 1], group)``: the group
    of stage ``k - 1`` during the update pass, the host's otherwise (``pidx[0]``: stage 0's
    ``idx``). That address is a register of its own per stage, loaded with its next value
    (``mode_next``; ``idx_next``; ``pidx[k - 1]`` takes ``pidx[k - 2]`` unless stalled; the host
    group's ``group_next``), so a LUT RAM's address pins (hundreds of cells at ``U > 1``) hang
    on a flip-flop and not on a multiplexer behind the mode register (the 500-lane ULX3S build's
    critical path: 9 ns of routing after that multiplexer, docs/fpga.md, seventh round)."""
    regs = {}
    for rd, k in reads:
        if k not in regs:
            j = k - 1
            p_next = idx_next if j == 0 else Mux(stall, pidx[j], pidx[j - 1])
            regs[k] = Signal(len(rd.addr), name=f"rd_addr{k}")
            m.d.sync += regs[k].eq(Mux(mode_next, p_next, group_next))
        m.d.comb += [rd.addr.eq(regs[k]), rd.en.eq(~stall)]


def _lane_valid(n: int, U: int, group, u: int):
    """Element ``u`` of update group ``group`` is a neuron (the last group may be partial);
    None where it always is."""
    last = n - (-(-n // U) - 1) * U      # neurons in the last group
    if u < last:
        return None
    return group != -(-n // U) - 1


def _masked(value, ok):
    """``value`` on a real neuron (:func:`_lane_valid`), else 0."""
    return value if ok is None else Mux(ok, value, 0)


def _datapath_op(core, op: str, e: dict, rho: str) -> dict:
    """Operation ``op`` of :mod:`rtl.pipeline` on the values ``e`` of one neuron (the input
    core's ``rho`` is ``rho_old``, a layer core's the old s); returns the values it makes."""
    cfg, f, dsp, t = core.cfg, core.fault, core.dsp, core.tick
    if op == "dec_op":
        return {"dv": decode_operand(cfg, core.l, e["acc"], e["v_old"], f)}
    if op == "dec_mul":
        return {"pv": mul(t.lam, e["dv"], dsp)}
    if op == "dec_fin":
        return dict(zip(("v", "ovf_v"), decode_finish(cfg, e["v_old"], e["pv"], f)))
    if op == "nudge_op":
        return {"dy": e["y"] - e["s_old"]}
    if op == "nudge_mul":
        return {"term": const_mul(e["dy"], cfg.beta2_code, dsp)}
    if op == "nudge_sign":
        return {"nudged": nudge_signed(e["term"], core.nudge)}
    if op == "input":
        return dict(zip(("x", "ovf_x"), input_sum(cfg, core.l, e["v"], e["b"], e.get("nudged"), f)))
    if op == "st_op":
        return {"ds": state_operand(cfg, e["x"], e["s_old"])}
    if op == "st_mul":
        return {"ps": mul(t.eps, e["ds"], dsp)}
    if op == "st_fin":
        return {"s": state_finish(cfg, e["s_old"], e["ps"], f)}
    if op == "enc_op":
        return {"da": e["s"] - e[rho]}
    if op == "enc_mul":
        return {"pa": mul(t.inv_lam, e["da"], dsp)}
    if op == "enc_fin":
        return dict(zip(("a", "ovf_a"), encode_finish(cfg, e[rho], e["pa"], f)))
    if op == "sigma":
        phi, q, ovf_phi = sigma_delta(cfg, e["a"], e["phi_old"], f)
        flags = [e[k] for k in ("ovf_v", "ovf_x", "ovf_a") if k in e] + [ovf_phi]
        total = flags[0]
        for flag in flags[1:]:
            total = total + flag
        return {"phi": phi, "q": q, "ovf": total[:len(flags).bit_length()]}
    raise ValueError(f"unknown datapath operation {op!r}")


def _coming_spikes(n: int, U: int, valid, group, last) -> tuple:
    """``coming`` of :func:`_spike_output`: the stage before the last one's valid bit and its
    group's spikes as they load the last stage (``last``: :func:`_build_stages`' values),
    padding lanes masked (:func:`_lane_valid`)."""
    return valid, [_masked(e["q"], _lane_valid(n, U, group, u)) for u, e in enumerate(last)]


def _lowest(bits):
    """One-hot of the lowest set bit of ``bits`` (0 when none is)."""
    return Cat(bits[u] & ~bits[:u].any() if u else bits[0] for u in range(len(bits)))


def _build_stages(plan: Plan, U: int, writes, reads_at, run_op) -> tuple:
    """The stage registers ``p_2 .. p_K`` of ``plan`` (one struct per group element, fields
    :meth:`Plan.live`, shapes from the expressions), their next values (a list of assignments
    for the pipeline's enable) and, per element, the values that load ``p_K`` (``last[u]``).
    ``reads_at(k, u)``: element ``u``'s memory values read for stage ``k``; ``run_op(op, env,
    u)``: an operation's values."""
    regs, sync, envs = {}, [], []
    el = (lambda sig, u: sig) if U == 1 else (lambda sig, u: sig[u])
    for k in range(1, plan.K):
        envs = []
        for u in range(U):
            env = {} if k not in regs else {name: el(regs[k], u)[name] for name in plan.live(k, writes)}
            env.update(reads_at(k, u))
            for op in plan.stages[k - 1]:
                env.update(run_op(op, env, u))
            envs.append(env)
        live = plan.live(k + 1, writes)
        layout = data.StructLayout({name: Value.cast(envs[0][name]).shape() for name in live})
        regs[k + 1] = reg = Signal(group_layout(layout, U), name=f"p{k + 1}")
        sync += [el(reg, u)[name].eq(envs[u][name]) for u in range(U) for name in live]
    return regs, sync, envs


def _spike_output(m, core, valid, group, q_bits, ovf_terms, dsp, coming=None, clear=None):
    """The last stage hands its group's spikes to ``core.spikes``, one per cycle in address
    order, and reports the group's overflow count once. Returns ``(stall, pending)``: the
    whole pipeline holds while ``stall``; ``pending`` (spikes still to send after the
    pipeline advanced) keeps the pass running.

    ``U == 1``: the last stage offers its neuron's spike itself and holds the pipeline while
    the bus does not take it. ``U > 1``: a group with spikes is pushed into a spike queue of
    :data:`SPIKE_QUEUE_DEPTH` entries (group index, spike mask), which sends its head's spikes
    lowest element first, one per cycle; the pipeline holds only while a group with spikes
    (``has``) finds the queue full (``full``), and both are flip-flops loaded with their next
    values, so the hold is one gate from registers, never from the bus's ``ready``, and a
    group's second, third, ... spike no longer holds the pipeline
    (:func:`rtl.network.group_stalls`). ``coming = (valid, q_bits)``: what the stage before
    loads into the last one when the pipeline advances; ``clear``: the clear sweep empties the
    last stage and the queue."""
    U = len(q_bits)
    if U == 1:   # one neuron per cycle: its spike, if any, is all there is to send
        stall = valid & q_bits[0] & ~core.spikes.ready
        m.d.comb += [core.spikes.valid.eq(valid & q_bits[0]), core.spikes.payload.eq(group),
                     core.ovf.eq(Mux(valid & ~stall, ovf_terms[0], 0))]
        return stall, Const(0)
    D = SPIKE_QUEUE_DEPTH
    has = Signal(name="spike_has")            # == valid & Cat(q_bits).any(), not pushed yet
    full = Signal(name="spike_full")          # == (count == D)
    count = Signal(range(D + 1), name="spike_count")
    offer = Signal(name="spike_offer")        # == (count != 0)
    stall = has & full
    push = has & ~full
    qg = [Signal.like(group, name=f"spike_q{i}_group") for i in range(D)]
    qm = [Signal(U, name=f"spike_q{i}_mask") for i in range(D)]
    sent = Signal(U, name="spikes_sent")      # spikes of the head entry already on the bus
    left = qm[0] & ~sent
    first = _lowest(left)
    last_one = ~(left & ~first).any()         # the head's spike on offer is its last
    pop = offer & core.spikes.ready & last_one
    count_next = count + push - pop
    c_valid, c_bits = coming
    has_next = Mux(stall, has, c_valid & Cat(c_bits).any())
    m.d.sync += [count.eq(count_next), full.eq(count_next == D), offer.eq(count_next != 0),
                 has.eq(has_next)]
    with m.If(offer & core.spikes.ready):
        m.d.sync += sent.eq(Mux(last_one, 0, sent | first))
    # entry i after this cycle: the next one's on a pop; the pushed group at count - pop
    for i in range(D):
        shifted = (qg[i + 1], qm[i + 1]) if i + 1 < D else (qg[i], qm[i])
        with m.If(push & (count - pop == i)):
            m.d.sync += [qg[i].eq(group), qm[i].eq(Cat(q_bits))]
        with m.Elif(pop):
            m.d.sync += [qg[i].eq(shifted[0]), qm[i].eq(shifted[1])]
    with m.If(clear):
        m.d.sync += [count.eq(0), full.eq(0), offer.eq(0), has.eq(0), sent.eq(0)]
    lane = Signal(range(U), name="spike_lane")
    for u in reversed(range(U)):               # the lowest lane left (priority encoder)
        with m.If(left[u]):
            m.d.comb += lane.eq(u)
    m.d.comb += [core.spikes.valid.eq(offer), core.spikes.payload.eq(const_mul(qg[0], U, dsp) + lane)]
    total = ovf_terms[0]
    for term in ovf_terms[1:]:
        total = total + term
    m.d.comb += core.ovf.eq(Mux(valid & ~stall, total, 0))
    return stall, offer


class LayerCore(wiring.Component):
    """Core of non-input layer ``l``: queues, weights, accumulator, neuron update pipeline.

    Parameters
    ----------
    cfg : EqSpikeConfig
    l : int
        ``1 <= l < cfg.n_layers``.
    fault : None, "wrap" or "floor"
        Deliberately broken arithmetic (tests only).
    dsp_width : int or None
        Operand width of the target's DSP blocks (:func:`rtl.arith.mul`); None: plain ``*``.

    Members
    -------
    from_below, from_above : In(stream)
        Spikes of layers ``l-1`` and ``l+1`` (no ``from_above`` on the output layer).
    spikes : Out(stream)
        This layer's spikes, neuron address payload, in address order.
    tick : In(:func:`rtl.ports.tick_signature`)
        Update / clear start pulses and this tick's ROM words.
    accumulate : In(:func:`rtl.ports.accumulate_signature`)
        Accumulate phase enable and status.
    busy : Out(1)
        Update pass or clear sweep in progress.
    nudge : In(signed(2))
        Output layer only: 0 free, +1 / -1 nudged.
    ovf : Out(range(5))
        How many registers of the neuron written this cycle saturated or wrapped.
    host : In(:func:`rtl.ports.host_signature`)
        Parameter writes, state and parameter read-back.
    learn : In(:func:`rtl.ports.learning_signature`)
        Learning builds only.
    """

    def __init__(self, cfg: EqSpikeConfig, l: int, fault=None, dsp_width=None):
        _check_core(cfg)
        if not 1 <= l < cfg.n_layers:
            raise ValueError(f"l must be in 1..{cfg.n_layers - 1}, not {l!r}")
        self.cfg, self.l, self.fault, self.dsp = cfg, l, fault, check_dsp_width(dsp_width)
        self.n = cfg.layers[l]
        self.n_below = cfg.layers[l - 1]
        self.n_above = cfg.layers[l + 1] if l + 1 < cfg.n_layers else 0
        self.is_output = self.n_above == 0
        self.C = cfg.chunks(l)
        # update groups: U neurons per cycle, S groups per accumulator word (U divides lanes)
        self.U, self.G = cfg.update_lanes_of(l), cfg.groups(l)
        self.Ls = cfg.stored_lanes(l)     # lanes the memories hold (the rest are padding: 0)
        self.S = self.Ls // self.U
        members = {"from_below": In(spike_signature(self.n_below)), "accumulate": In(accumulate_signature())}
        if not self.is_output:
            members["from_above"] = In(spike_signature(self.n_above))
        else:
            members["nudge"] = In(NUDGE_SHAPE)
        members.update(_core_members(cfg, l))
        super().__init__(members)
        self._build_memories()

    def _build_memories(self):
        # memories are built here so that tests and the harness can reach them by name
        cfg, l, L, C = self.cfg, self.l, self.Ls, self.C
        self.acc_fmt = cfg.acc_format(l)
        # weight memories hold learning-format codes when learning (``extra`` more LSBs, which
        # the accumulate path rounds to the inference format: rtl.learning.inference_weight)
        self.learn_build = cfg.learning is not None
        self.extra = cfg.learning.extra_frac if self.learn_build else 0
        self.wb_fmt = cfg.learn_format(l - 1)
        self.wa_fmt = None if self.is_output else cfg.learn_format(l)
        # W_l^T stacked under W_{l-1} (words wa_base ..) when both have one format
        # (cfg.weights_stacked): one memory, one read port and one weight word register, and no
        # per-lane multiplexer between two copies
        self.stacked = cfg.weights_stacked(l)
        self.wa_base = self.n_below * C if self.stacked else 0
        self.weight_rows = self.n_below + (self.n_above if self.stacked else 0)
        self.w_below = memory.Memory(shape=unsigned(L * self.wb_fmt.width), depth=mem_depth(self.weight_rows * C),
                                     init=[])
        if not self.is_output and not self.stacked:
            self.w_above = memory.Memory(shape=unsigned(L * self.wa_fmt.width), depth=mem_depth(self.n_above * C),
                                         init=[])
        # one word (C == 1, the lanes cover the layer): a register instead (_memory_ports)
        self.acc_width = L * self.acc_fmt.width
        self.acc_mem = memory.Memory(shape=unsigned(self.acc_width), depth=mem_depth(C), init=[]) if C > 1 else None
        # per-neuron registers: one memory per group of STATE_GROUPS (``self.state_acc`` ...), one
        # word per update group (group_layout); bias and target likewise, lane-writable
        U, G = self.U, self.G
        self.state_mems = {name: memory.Memory(shape=group_layout(layout, U), depth=mem_depth(G), init=[])
                           for name, layout in state_memories(cfg, l).items()}
        for name, mem in self.state_mems.items():
            setattr(self, name, mem)
        self.bias = memory.Memory(shape=_lane_word(reg_shape(cfg.biases[l - 1]), U), depth=mem_depth(G), init=[])
        if self.is_output:
            self.target = memory.Memory(shape=_lane_word(reg_shape(cfg.s), U), depth=mem_depth(G), init=[])
        if self.learn_build:   # held states s^- and s^+ (lane-packed like the accumulator)
            self.s_free = memory.Memory(shape=unsigned(L * cfg.s.width), depth=mem_depth(C), init=[])
            self.s_nudged = memory.Memory(shape=unsigned(L * cfg.s.width), depth=mem_depth(C), init=[])

    def weight_memory(self, kind: str) -> tuple:
        """``(memory, first word)`` of a weight copy: ``"w_below"`` (``W_{l-1}`` by rows, word
        ``j * C + c``) or ``"w_above"`` (``W_l`` transposed, word ``first + k * C + c``); with
        :attr:`stacked` both live in ``w_below``."""
        if kind == "w_above" and self.stacked:
            return self.w_below, self.wa_base
        return getattr(self, kind), 0

    def elaborate(self, platform):
        m = Module()
        ports = self._memory_ports(m)
        host = self._host_writes(m, ports)
        queues = self._spike_queues(m)
        # update pass running (owns the state and accumulator ports); clear sweep running
        upd = SimpleNamespace(mode=Signal(name="mode_upd"), issuing=Signal(name="issuing"))
        sweep = clear_words(self.cfg, self.l)
        clr = SimpleNamespace(mode=Signal(name="mode_clr"), idx=Signal(range(max(sweep, 2) + 1), name="clr_idx"),
                              words=sweep)
        acc = self._accumulate(m, ports, queues, host, upd.mode, clr.mode)
        self._update_issue(m, upd)
        self._update_pipeline(m, ports, acc, upd, clr, host)
        self._accumulator_writes(m, ports, acc, upd, clr, platform)
        self._clear_sweep(m, queues, acc, upd, clr)
        self._host_reads(m, ports, host, acc)
        self._host_weight_merge(m, ports, host, acc)
        if self.learn_build:
            self._learning_hooks(m, ports, upd)
        return m

    # -- memories ---------------------------------------------------------------------------------
    def _memory_ports(self, m):
        p = SimpleNamespace()
        m.submodules.w_below = self.w_below
        p.wb_wr = self.w_below.write_port()   # whole words: block RAM without per-lane enables
        p.wb_rd = self.w_below.read_port()
        if not self.is_output and not self.stacked:
            m.submodules.w_above = self.w_above
            p.wa_wr = self.w_above.write_port(granularity=self.wa_fmt.width)
            p.wa_rd = self.w_above.read_port()
        if self.acc_mem is not None:
            m.submodules.acc_mem = self.acc_mem
            p.acc_wr = self.acc_mem.write_port()
            p.acc_rd = self.acc_mem.read_port(transparent_for=(p.acc_wr,))
        else:
            p.acc_wr, p.acc_rd = _word_register(self.acc_width, "acc_word")
        p.st_wr, p.st_rd = {}, {}
        for name, mem in self.state_mems.items():
            m.submodules[name] = mem
            p.st_wr[name], p.st_rd[name] = mem.write_port(), mem.read_port()
        m.submodules.bias = self.bias
        gran = {} if self.U == 1 else {"granularity": self.cfg.biases[self.l - 1].width}
        p.b_wr = self.bias.write_port(**gran)
        p.b_rd = self.bias.read_port()
        if self.is_output:
            m.submodules.target = self.target
            p.y_wr = self.target.write_port(**({} if self.U == 1 else {"granularity": self.cfg.s.width}))
            p.y_rd = self.target.read_port()
        return p

    # -- host writes: weights land in lane (col % lanes) of word row * C + col // lanes ------------
    def _host_writes(self, m, p):
        """The word address (a multiply by C) and the lane are registered: valid the cycle after
        row/col, which the network holds for a whole command (it writes and reads a weight one
        cycle later), so the multiplier stays off the memory and read-back paths. The address
        is ``waddr_next``, loaded into the weight memory's one address register outside the
        accumulate phase (:meth:`_accumulate`)."""
        L, C, h = self.cfg.lanes, self.C, self.host
        lane = Signal(range(max(L, 2)), name="lane_of")
        # the lane also one-hot, registered from ``lane`` a cycle later (the division stays off
        # the decode): each lane's write select is one flip-flop, not a comparator of a binary
        # lane number fanned out to every lane of the die
        lane_en = Signal(L, name="lane_onehot") if L > 1 else Const(1, 1)
        word, col_lane = const_divmod(h.col, L, self.dsp)     # (no divider on the path)
        above = (h.sel == HostSel.W_ABOVE) if self.stacked else Const(0, 1)
        waddr_next = const_mul(h.row, C, self.dsp) + word + Mux(above, self.wa_base, 0)
        if L > 1:
            m.d.sync += [lane.eq(col_lane), lane_en.eq(Cat(lane == i for i in range(L)))]
        group, elem, group_next = _host_group(m, self)
        m.d.comb += [
            p.wb_wr.addr.eq(p.wb_rd.addr),   # one address per memory: single-port RAM (SPRAM) maps
            p.wb_wr.en.eq(h.we & ((h.sel == HostSel.W_BELOW) | above)),   # data: _host_weight_merge
            p.b_wr.addr.eq(h.row if self.U == 1 else group),
        ]
        _lane_write(m, p.b_wr, h.data, h.we & (h.sel == HostSel.BIAS), elem, self.U)
        if self.is_output:
            m.d.comb += p.y_wr.addr.eq(h.row if self.U == 1 else group)
            _lane_write(m, p.y_wr, h.data, h.we & (h.sel == HostSel.TARGET), elem, self.U)
        elif not self.stacked:
            m.d.comb += [
                p.wa_wr.addr.eq(p.wa_rd.addr),
                p.wa_wr.data.eq(Cat(h.data[:self.wa_fmt.width] for _ in range(L))),
                p.wa_wr.en.eq(Mux(h.we & (h.sel == HostSel.W_ABOVE), lane_en, 0)),
            ]
        return SimpleNamespace(waddr_next=waddr_next, lane=lane, lane_en=lane_en, group=group, elem=elem,
                               group_next=group_next)

    # -- spike queues: one per neighbour, deep enough for all its neurons --------------------------
    def _spike_queues(self, m):
        """``[(queue, weight read port name, weight format)]``: below first, then above."""
        qb = m.submodules.queue_below = SyncFIFOBuffered(width=address_shape(self.n_below).width,
                                                         depth=queue_depth(self.n_below))
        m.d.comb += [qb.w_data.eq(self.from_below.payload), qb.w_en.eq(self.from_below.valid),
                     self.from_below.ready.eq(qb.w_rdy)]
        queues = [(qb, "wb_rd", self.wb_fmt)]
        if not self.is_output:
            qa = m.submodules.queue_above = SyncFIFOBuffered(width=address_shape(self.n_above).width,
                                                             depth=queue_depth(self.n_above))
            m.d.comb += [qa.w_data.eq(self.from_above.payload), qa.w_en.eq(self.from_above.valid),
                         self.from_above.ready.eq(qa.w_rdy)]
            queues.append((qa, "wb_rd" if self.stacked else "wa_rd", self.wa_fmt))
        return queues

    def lanes_of(self, word, fmt, shift=True):
        """The ``lanes`` weights of a weight word; with ``shift`` each is what the accumulator
        adds: shifted left to its fraction bits (exact), learning codes rounded to the
        inference weight first."""
        lanes = _lane_view(word, fmt.width, self.cfg.lanes)
        if shift and self.extra:
            return [inference_weight(w, fmt, self.extra) << (self.acc_fmt.frac - fmt.frac + self.extra)
                    for w in lanes]
        return [w << ((self.acc_fmt.frac - fmt.frac) * shift) for w in lanes]

    # -- accumulate loop ---------------------------------------------------------------------------
    def _accumulate(self, m, p, queues, host, mode_upd, mode_clr):
        """Stage A issues (event, chunk) and registers the weight address, stage a reads the
        weight word, B registers it and reads the accumulator word, C adds and writes."""
        C, acc_port = self.C, self.accumulate
        qb = queues[0][0]
        qa = queues[1][0] if len(queues) == 2 else None
        rd = list({name: getattr(p, name) for _, name, _ in queues}.values())
        chunk = Signal(range(max(C, 2)))
        use_below = qb.r_rdy                    # events from below first, then from above
        row = Mux(use_below, qb.r_data, qa.r_data) if qa is not None else qb.r_data
        have = qb.r_rdy if qa is None else (qb.r_rdy | qa.r_rdy)
        issue = acc_port.en & have & ~mode_upd & ~mode_clr
        last_chunk = chunk == C - 1
        # One address register drives the weight memory (hundreds of block RAMs on the paper's
        # network), with the multiply row * C in front of it: in the accumulate phase the next
        # event's word, else the host's (a write, or the read-back of W_{l-1}[row, col]). The
        # phase selects in front of the register, not between it and the block RAMs: the
        # select (the network's state) then reaches one register, not every address pin. The
        # address differs from a select after the register only in a phase's first cycle, when
        # the read it serves is never used (no event issued, no host command yet).
        a_addr = Signal(range(max(mem_depth(max(self.weight_rows, self.n_above) * C),
                                  max(self.weight_rows, self.n_above, 1) * C + 1)), name="acc_waddr")
        base = Mux(use_below, 0, self.wa_base) if self.stacked else 0   # W_l^T's words in w_below
        m.d.sync += a_addr.eq(Mux(acc_port.en, const_mul(row, C, self.dsp) + chunk + base, host.waddr_next))
        for port in rd:
            m.d.comb += port.addr.eq(a_addr)
        # no read while the host writes (the read word then is never used): a write and a read
        # port with one address and this enable map to a single-port RAM
        m.d.comb += p.wb_rd.en.eq(~p.wb_wr.en)
        if qa is not None and not self.stacked:
            m.d.comb += p.wa_rd.en.eq(~p.wa_wr.en.any())
        m.d.comb += qb.r_en.eq((issue & use_below & last_chunk) | (mode_clr & qb.r_rdy))
        if qa is not None:
            m.d.comb += qa.r_en.eq((issue & ~use_below & last_chunk) | (mode_clr & qa.r_rdy))
        with m.If(issue):
            m.d.sync += chunk.eq(Mux(last_chunk, 0, chunk + 1))
        stage = {}
        prev = (issue, use_below, chunk)
        for name in ("a", "b", "c"):      # valid, from below, chunk of the operation in each stage
            regs = (Signal(name=f"{name}_valid"), Signal(name=f"{name}_below"),
                    Signal(range(max(C, 2)), name=f"{name}_chunk"))
            m.d.sync += [r.eq(v) for r, v in zip(regs, prev)]
            stage[name] = prev = regs
        acc_sum, wb_word, acc_lanes = self._accumulate_sum(m, p, stage["c"][1])
        m.d.comb += [
            acc_port.issue.eq(issue),
            acc_port.pop.eq(issue & last_chunk),
            # idle once the last event has issued and passed stages a and B: its adder write
            # (stage C, this cycle) lands before the update pass can read the word (stage 0 runs
            # the cycle after upd_start)
            acc_port.idle.eq((qb.level == 0) & (qa.level == 0 if qa is not None else 1)
                             & ~stage["a"][0] & ~stage["b"][0]),
        ]
        queues_empty = (qb.level == 0) & ((qa.level == 0) if qa is not None else 1)
        return SimpleNamespace(chunk=chunk, sum=acc_sum, b_valid=stage["b"][0], b_chunk=stage["b"][2],
                               c_valid=stage["c"][0],
                               c_chunk=stage["c"][2],
                               wb_word=wb_word, lanes=acc_lanes, queues_empty=queues_empty)

    def _accumulate_sum(self, m, p, c_below):
        """Stage C: the accumulator word plus the registered weight word, lane by lane."""
        L, accw = self.cfg.lanes, self.acc_fmt.width
        # the weight words as read, registered every cycle (the weight memory's bank multiplexer,
        # hundreds of block RAMs on the paper's network, stays off the adder's path)
        wb_word = Signal.like(p.wb_rd.data, name="wb_word")
        m.d.sync += wb_word.eq(p.wb_rd.data)
        w_lanes = self.lanes_of(wb_word, self.wb_fmt)
        if not self.is_output and not self.stacked:
            wa_word = Signal.like(p.wa_rd.data, name="wa_word")
            m.d.sync += wa_word.eq(p.wa_rd.data)
            wa_lanes = self.lanes_of(wa_word, self.wa_fmt)
            w_lanes = [Mux(c_below, wb, wa) for wb, wa in zip(w_lanes, wa_lanes)]
        acc_lanes = _lane_view(p.acc_rd.data, accw, L)
        return Cat((a + w)[:accw] for a, w in zip(acc_lanes, w_lanes)), wb_word, acc_lanes  # never overflows

    # -- update pass: one group of U neurons per cycle through UPDATE_STAGES (module docstring) ---
    def _update_issue(self, m, upd):
        """Stage 0 counters (update group, its accumulator word and slice) and stage 1's copies."""
        upd.idx = Signal(range(max(self.G, 2)), name="idx")     # group presented this cycle (stage 0)
        upd.lane = Signal(range(max(self.S, 2)), name="lane")   # its slice of the accumulator word
        upd.word = Signal(range(max(self.C, 2)), name="word")
        upd.plan = layer_plan(self.cfg, self.is_output)
        upd.K = K = upd.plan.K                           # stages after stage 0; the last one writes
        upd.valid, upd.pidx = _pipeline_registers(upd.idx, K)
        upd.s1_lane = Signal.like(upd.lane, name="s1_lane")
        upd.s1_word = Signal.like(upd.word, name="s1_word")
        upd.s1_wordlast = Signal(name="s1_wordlast")
        if self.acc_mem is None:   # the one-word accumulator's slice queue (_slice_queue)
            width = self.U * self.acc_fmt.width
            upd.slots = [Signal(width, name=f"acc_slot{k}") for k in range(SLICE_SLOTS)]
            upd.head = upd.slots[0]
            upd.held = Signal(range(SLICE_SLOTS + 1), name="acc_held")
            upd.taken = Signal(range(self.G + 1), name="acc_taken")
            upd.take = Signal(name="acc_take")
        if self.learn_build:   # word and slice of the group, for the held-state memories (stage 5)
            upd.pword = [None, upd.s1_word] + [Signal.like(upd.word, name=f"p{k}_word") for k in range(2, K + 1)]
            upd.plane = [None, upd.s1_lane] + [Signal.like(upd.lane, name=f"p{k}_lane") for k in range(2, K + 1)]

    def _neuron_reads(self, p, plan):
        """``reads_at(k, u)`` for :func:`_build_stages`: element ``u``'s values of the memories
        read for stage ``k`` (their port data)."""
        U, el = self.U, (lambda w, u: w if self.U == 1 else w[u])
        ports = {"state_vs": p.st_rd["state_vs"].data, "state_xap": p.st_rd["state_xap"].data, "bias": p.b_rd.data}
        if self.is_output:
            ports["target"] = p.y_rd.data
        value = {"v_old": lambda u: el(ports["state_vs"], u).v, "s_old": lambda u: el(ports["state_vs"], u).s,
                 "phi_old": lambda u: el(ports["state_xap"], u).phi,
                 "b": lambda u: _lanes(ports["bias"], reg_shape(self.cfg.biases[self.l - 1]), U)[u],
                 "y": lambda u: _lanes(ports.get("target"), reg_shape(self.cfg.s), U)[u]}
        stage = {mem: plan.read_stage(mem) for mem in set(plan.reads.values())}
        return lambda k, u: {v: value[v](u) for v, mem in plan.reads.items() if stage[mem] == k}

    def _accumulator_lane(self, acc, upd, u):
        """Stage 1 registers element ``u``'s accumulator lane (block-RAM clock-to-out off the
        math): from the slice queue's head with a one-word accumulator (:meth:`_slice_queue`)."""
        if self.acc_mem is None:
            return _lane_view(upd.head, self.acc_fmt.width, self.U)[u]
        slices = [acc.lanes[sl * self.U + u] for sl in range(self.S)]
        return Array(slices)[upd.s1_lane] if len(slices) > 1 else slices[0]

    def _update_pipeline(self, m, p, acc, upd, clr, host):
        K, U, plan = upd.K, self.U, upd.plan

        def run_op(op, env, u):
            return {"acc": self._accumulator_lane(acc, upd, u)} if op == "acc" else _datapath_op(self, op, env, "s_old")

        upd.regs, sync, last = _build_stages(plan, U, list(STATE_WRITES.values()), self._neuron_reads(p, plan), run_op)
        pk = [upd.regs[K]] if U == 1 else [upd.regs[K][u] for u in range(U)]
        ok = [_lane_valid(self.n, U, upd.pidx[K], u) for u in range(U)]    # padding lanes: no spike, no count
        coming = _coming_spikes(self.n, U, upd.valid[K - 1], upd.pidx[K - 1], last)
        stall, upd.pending = _spike_output(m, self, upd.valid[K], upd.pidx[K], [_masked(q.q, v) for q, v in zip(pk, ok)],
                                            [_masked(q.ovf, v) for q, v in zip(pk, ok)], self.dsp,
                                            coming, self.tick.clr_start | clr.mode)
        upd.stall = stall
        valid, pidx = upd.valid, upd.pidx
        # memory read addresses: the update pass when running (one stage ahead of the stage that
        # uses the word), else the host's read address
        reads = [(p.st_rd["state_acc"], 1)] + [(p.st_rd[name], plan.read_stage(name)) for name in ("state_vs", "state_xap")]
        reads.append((p.b_rd, plan.read_stage("bias")))
        if self.is_output:
            reads.append((p.y_rd, plan.read_stage("target")))
        mode_next, _ = _pass_next(self, upd.mode, upd.issuing, valid, upd.pending)
        start = self.tick.upd_start & ~upd.mode
        idx_next = Mux(start, 0, Mux(~stall & upd.issuing & (upd.idx != self.G - 1), upd.idx + 1, upd.idx))
        _read_addresses(m, reads, mode_next, idx_next, pidx, stall, host.group_next)
        with m.If(upd.mode):
            m.d.comb += [p.acc_rd.addr.eq(upd.word), p.acc_rd.en.eq(~stall)]
        with m.Else():
            m.d.comb += p.acc_rd.addr.eq(acc.b_chunk)   # stage B reads the accumulator word
        self._state_writes(m, p, upd, clr)
        with m.If(~stall):
            m.d.sync += [
                valid[1].eq(upd.issuing), pidx[1].eq(upd.idx), upd.s1_lane.eq(upd.lane),
                upd.s1_word.eq(upd.word), upd.s1_wordlast.eq((upd.lane == self.S - 1) | (upd.idx == self.G - 1)),
            ]
            for k in range(2, K + 1):
                m.d.sync += [valid[k].eq(valid[k - 1]), pidx[k].eq(pidx[k - 1])]
                if self.learn_build:
                    m.d.sync += [upd.pword[k].eq(upd.pword[k - 1]), upd.plane[k].eq(upd.plane[k - 1])]
            m.d.sync += sync
            self._update_advance(m, upd)

    def _update_advance(self, m, upd):
        """Stage 0 steps to the next group (its slice and word) until the last one issued."""
        with m.If(upd.issuing):
            with m.If(upd.idx == self.G - 1):
                m.d.sync += upd.issuing.eq(0)
            with m.Else():
                m.d.sync += upd.idx.eq(upd.idx + 1)
                with m.If(upd.lane == self.S - 1):
                    m.d.sync += [upd.lane.eq(0), upd.word.eq(upd.word + 1)]
                with m.Else():
                    m.d.sync += upd.lane.eq(upd.lane + 1)

    def _state_writes(self, m, p, upd, clr):
        """Each state group is written in the stage that computes its last field, or by the clear
        sweep (which writes the same stage registers: they are zero from its first cycle, see
        :meth:`_clear_sweep`, so the write data needs no multiplexer)."""
        r, U = upd.regs, self.U
        for name, fields in STATE_WRITES.items():
            k = upd.plan.write_stage(fields)
            wr = p.st_wr[name]
            for u in range(U):
                word, reg = (wr.data, r[k]) if U == 1 else (wr.data[u], r[k][u])
                m.d.comb += [word[fld].eq(reg[fld]) for fld in fields]
            with m.If(clr.mode):
                m.d.comb += [wr.addr.eq(clr.idx), wr.en.eq(clr.idx < self.G)]
            with m.Else():
                m.d.comb += [wr.addr.eq(upd.pidx[k]), wr.en.eq(upd.valid[k] & ~upd.stall)]

    def _accumulator_writes(self, m, p, acc, upd, clr, platform):
        """Stage C's sum, or zero after the update pass read a whole word, or the clear sweep.
        A one-word accumulator's controls are registers, one copy per bank of its flip-flops,
        loaded with their next values (:meth:`_word_controls_next`)."""
        if self.acc_mem is None:     # the register: zeroing is its synchronous reset
            take = self._slice_queue(m, p, upd)
            m.d.comb += p.acc_wr.data.eq(acc.sum)
            nxt = self._word_controls_next(m, acc, upd, clr, take)
            banks = acc_banks(self.acc_width // self.acc_fmt.width, self.acc_fmt.width)
            copies = {k: register_copies(m, platform, d, len(banks), f"acc_{k}") for k, d in nxt.items()}
            _word_register_banks(m, p.acc_wr, p.acc_rd, self.U * self.acc_fmt.width, banks,
                                 copies["zero"], copies["load"], copies["shift"])
            return
        zero_upd = upd.valid[1] & upd.s1_wordlast & ~upd.stall
        with m.If(clr.mode):
            m.d.comb += [p.acc_wr.addr.eq(clr.idx), p.acc_wr.data.eq(0), p.acc_wr.en.eq(clr.idx < self.C)]
        with m.Elif(upd.mode):
            m.d.comb += [p.acc_wr.addr.eq(upd.s1_word), p.acc_wr.data.eq(0),
                         p.acc_wr.en.eq(zero_upd)]
        with m.Else():
            m.d.comb += [p.acc_wr.addr.eq(acc.c_chunk), p.acc_wr.data.eq(acc.sum), p.acc_wr.en.eq(acc.c_valid)]

    def _slice_queue(self, m, p, upd):
        """A one-word accumulator hands its slices to stage 1 through a queue of
        :data:`SLICE_SLOTS` = 3 slots (``slots[0]`` the head, ``held`` of them full): on a cycle
        with ``take`` it takes slice ``g`` (the word's low ``U`` lanes, then the word shifts
        down; the last take zeroes it); stage 1 pops the head as it registers its group
        (``pop``). ``take`` is a register (:meth:`_word_controls_next`): set for the next cycle
        while at most two slots would be full counting this cycle's take but not its pop,
        so neither the take nor the word's controls ever wait for the bus's ``ready`` (the
        pipeline's stall). At one pop per cycle a slot is always full when stage 1 pops (one
        slot full and a take every cycle in the steady state; three at most while stalled), and
        the pass's first take is in stage 0's first cycle: the head always holds stage 1's
        group, the same slices in the same cycles as a multiplexer would pick. Returns ``take``."""
        take, pop = upd.take, upd.valid[1] & ~upd.stall
        low = p.acc_rd.data[:len(upd.head)]
        m.d.sync += upd.held.eq(upd.held + take - pop)
        with m.If(take):
            m.d.sync += upd.taken.eq(upd.taken + 1)
        after_pop = upd.held - pop                     # where this cycle's take lands
        for k, slot in enumerate(upd.slots):
            moved = Mux(pop, upd.slots[k + 1] if k + 1 < SLICE_SLOTS else 0, slot)
            m.d.sync += slot.eq(Mux(take & (after_pop == k), low, moved))
        return take

    def _word_controls_next(self, m, acc, upd, clr, take):
        """Next-cycle values of the one-word accumulator's controls, from the next values of the
        registers they are made of (the assignments of :meth:`_accumulate`, :meth:`_slice_queue`,
        :meth:`_clear_sweep` and :func:`_pass_control`, written out); none depends on ``pop``:

        - ``load = c_valid & ~mode_clr & ~mode_upd`` (stage C's sum is written back);
        - ``shift = take``, ``take' = mode_upd' & (taken' != G) & (held + take <= 2)``, where
          ``'`` is the next value (:meth:`_slice_queue`; at the pass's start the queue is empty);
        - ``zero = mode_clr ? clr_idx < C : take & (taken == G - 1)``.

        ``take`` itself is the register of ``take'``; the controls are registered per bank."""
        start_upd = self.tick.upd_start & ~upd.mode
        start_clr = self.tick.clr_start & ~clr.mode
        _, in_flight = _pass_next(self, upd.mode, upd.issuing, upd.valid, upd.pending)
        n = SimpleNamespace(**{k: Signal.like(v, name=f"{v.name}_next") for k, v in
                               (("upd", upd.mode), ("clr", clr.mode), ("idx", clr.idx), ("taken", upd.taken),
                                ("take", upd.take))})
        m.d.comb += [
            n.upd.eq(Mux(start_upd, 1, Mux(upd.mode & ~in_flight, 0, upd.mode))),
            n.clr.eq(Mux(start_clr, 1, Mux(clr.mode & (clr.idx >= clr.words) & acc.queues_empty, 0, clr.mode))),
            n.idx.eq(Mux(start_clr, 0, Mux(clr.mode & (clr.idx < clr.words), clr.idx + 1, clr.idx))),
            n.taken.eq(Mux(start_upd, 0, Mux(take, upd.taken + 1, upd.taken))),
            n.take.eq(n.upd & (n.taken != self.G) & (start_upd | (upd.held + take <= SLICE_SLOTS - 1))),
        ]
        m.d.sync += upd.take.eq(n.take)
        return {"load": acc.b_valid & ~n.clr & ~n.upd,     # c_valid's next value is b_valid
                "shift": n.take,
                "zero": Mux(n.clr, n.idx < self.C, n.take & (n.taken == self.G - 1))}

    def _clear_sweep(self, m, queues, acc, upd, clr):
        """Zero every word; drop queued spikes; ends when both are done. The update pass's
        start and end, and ``busy``, are here too (:func:`_pass_control`)."""
        r = upd.regs
        with m.If(self.tick.clr_start | clr.mode):     # the clear sweep writes these: zero
            m.d.sync += [r[upd.plan.write_stage(fields)].eq(0) for fields in STATE_WRITES.values()]
        queue = [upd.held.eq(0), upd.taken.eq(0)] if self.acc_mem is None else []
        _pass_control(m, self, upd.mode, clr.mode, upd.issuing, upd.idx, upd.valid,
                      [upd.lane.eq(0), upd.word.eq(0)] + queue, upd.pending)
        with m.If(self.tick.clr_start & ~clr.mode):
            m.d.sync += [clr.mode.eq(1), clr.idx.eq(0), acc.chunk.eq(0)]
        with m.Elif(clr.mode):
            with m.If(clr.idx < clr.words):
                m.d.sync += clr.idx.eq(clr.idx + 1)
            with m.Elif(acc.queues_empty):
                m.d.sync += clr.mode.eq(0)

    def _host_reads(self, m, p, host, acc):
        """State words at ``rd_addr`` (rho_last derived from s), bias, target, and the weight
        ``W_{l-1}[row, col]`` from the registered weight word."""
        h, L, U = self.host, self.cfg.lanes, self.U

        def pick(word, shape=None):     # the host's element of a group word
            if U == 1:
                return word
            items = _lanes(word, shape, U) if shape is not None else [word[u] for u in range(U)]
            return Array(items)[host.elem]

        for name, rd in p.st_rd.items():
            m.d.comb += [h.rd_state[fld].eq(pick(rd.data)[fld]) for fld in STATE_GROUPS[name]]
        m.d.comb += [h.rd_state[reg].eq(h.rd_state[src]) for reg, src in DERIVED.items()]
        m.d.comb += h.rd_bias.eq(pick(p.b_rd.data, reg_shape(self.cfg.biases[self.l - 1])))
        if self.is_output:
            m.d.comb += h.rd_target.eq(pick(p.y_rd.data, reg_shape(self.cfg.s)))
        # two levels, registered between them (READ_LANE): lanes spread over the whole die's
        # block RAMs (500 on the paper's network) meet in groups of READ_GROUP first
        wb_host = self.lanes_of(acc.wb_word, self.wb_fmt, shift=False)
        groups = [wb_host[i:i + READ_GROUP] for i in range(0, L, READ_GROUP)]
        low = host.lane % READ_GROUP
        picked = [Signal.like(h.rd_weight, name=f"rd_weight_g{i}") for i in range(len(groups))]
        m.d.sync += [r.eq(Array(g)[low] if len(g) > 1 else g[0]) for r, g in zip(picked, groups)]
        m.d.comb += h.rd_weight.eq(Array(picked)[host.lane // READ_GROUP] if len(picked) > 1 else picked[0])

    def _host_weight_merge(self, m, p, host, acc):
        """A host weight write replaces lane ``col % lanes`` of the word the WRITE read first
        (``wb_word``, registered like a READ's): the whole word is written back."""
        fmt = self.wb_fmt
        old = _lane_view(acc.wb_word, fmt.width, self.Ls)
        new = self.host.data[:fmt.width]
        m.d.comb += p.wb_wr.data.eq(Cat(Mux(host.lane_en[i], new, w)[:fmt.width] for i, w in enumerate(old)))

    def _learning_hooks(self, m, p, upd):
        """On-chip learning (rtl.learning): held states written by the update pass (with
        ``state_vs``), and the engine's ports muxed onto the weight and bias memories while it
        owns them."""
        L, sw, lp, U = self.Ls, self.cfg.s.width, self.learn, self.U
        k = upd.plan.write_stage(STATE_WRITES["state_vs"])
        s_word, s_slice = upd.pword[k], upd.plane[k]
        s_new = Cat(upd.regs[k].s) if U == 1 else Cat(upd.regs[k][u].s for u in range(U))
        s_we = upd.valid[k] & ~upd.stall
        m.submodules.s_free = self.s_free
        m.submodules.s_nudged = self.s_nudged
        # the group's U states land in slice s_slice of the lane-packed word (lanes // U slices)
        lane_en = Cat(s_slice == t // U for t in range(L)) if self.S > 1 else Const((1 << L) - 1, L)
        for mem, sel, out in ((self.s_free, ~lp.nudged, lp.s_free), (self.s_nudged, lp.nudged, lp.s_nudged)):
            wr, rd = mem.write_port(granularity=sw), mem.read_port()
            m.d.comb += [wr.addr.eq(s_word), wr.data.eq(Cat(s_new for _ in range(self.S))),
                         wr.en.eq(Mux(s_we & sel, lane_en, 0)), rd.addr.eq(lp.s_addr), out.eq(rd.data)]
        m.d.comb += [lp.wb_rdata.eq(p.wb_rd.data), lp.b_rdata.eq(p.b_rd.data)]
        # while the engine owns them, w_below reads and writes different words in one cycle
        # (a simple dual-port RAM) and its read port is always enabled
        with m.If(lp.own):
            m.d.comb += [p.wb_rd.addr.eq(lp.wb_raddr), p.wb_rd.en.eq(1), p.wb_wr.addr.eq(lp.wb_waddr),
                         p.wb_wr.data.eq(lp.wb_wdata), p.wb_wr.en.eq(lp.wb_wen.any()),
                         p.b_rd.addr.eq(lp.b_raddr), p.b_wr.addr.eq(lp.b_waddr),
                         p.b_wr.data.eq(lp.b_wdata), p.b_wr.en.eq(lp.b_wen)]
            if not self.is_output:
                m.d.comb += [p.wa_wr.addr.eq(lp.wa_waddr), p.wa_wr.data.eq(lp.wa_wdata), p.wa_wr.en.eq(lp.wa_wen)]


def _word_register(width: int, name: str):
    """A one-word memory as a register: ``(write port, read port)`` look-alikes whose read data
    is the register itself. A transparent synchronous read of the only word returns what the
    register holds one cycle later (the last write included), so the read latency is kept by
    using the register where the memory's read data would be, with no read register and no
    LUT RAM (500 lanes x 16 bits would take 2,000 ECP5 LUT-RAM cells). Addresses and the read
    enable are accepted and unused; :func:`_word_register_banks` builds its update."""
    word = Signal(width, name=name)
    wr = SimpleNamespace(addr=Signal(name=f"{name}_waddr"), data=Signal(width, name=f"{name}_wdata"))
    rd = SimpleNamespace(addr=Signal(name=f"{name}_raddr"), en=Signal(name=f"{name}_re"), data=word)
    return wr, rd


#: Flip-flops of the one-word accumulator per bank: each bank has its own copy of the word's
#: zero, load and shift controls (:func:`rtl.replicas.register_copies`), so no control net has
#: more than about this many sinks.
ACC_BANK_BITS = 256


def acc_banks(lanes: int, width: int) -> list:
    """``(lo, hi)`` bit ranges of the banks of a one-word accumulator of ``lanes`` lanes of
    ``width`` bits: ``max(1, ACC_BANK_BITS // width)`` whole lanes each, the last one shorter."""
    per = max(1, ACC_BANK_BITS // width)
    return [(lo * width, min(lo + per, lanes) * width) for lo in range(0, lanes, per)]


def _word_register_banks(m, wr, rd, step: int, banks: list, zero: list, load: list, shift: list):
    """Bank ``b`` (bits ``banks[b]``) of the word: zeroed (``zero[b]``, a synchronous reset of
    its flip-flops), else loaded with ``wr.data`` (``load[b]``), else shifted down by ``step``
    bits with the whole word (``shift[b]``; zeros in at the top), so the update pass always
    finds its next slice in the low ``step`` bits: no ``lanes / U``-way multiplexer gathers the
    slice from lanes spread over the whole die (50:1 on 8,000 bits at 500 lanes). The controls
    are per bank, copies of one value (:meth:`LayerCore._accumulator_writes`)."""
    word = rd.data
    shifted = Cat(word[step:], Const(0, min(step, len(word))))   # wiring (`>>` builds a shifter)
    regs = [Signal(hi - lo, name=f"{word.name}_b{b}") for b, (lo, hi) in enumerate(banks)]
    m.d.comb += word.eq(Cat(regs))     # one register per bank: one process each, not slices of one
    for (lo, hi), reg, z, ld, sh in zip(banks, regs, zero, load, shift):
        with m.If(z):
            m.d.sync += reg.eq(0)
        with m.Elif(ld):
            m.d.sync += reg.eq(wr.data[lo:hi])
        with m.Elif(sh):
            m.d.sync += reg.eq(shifted[lo:hi])


def _lane_view(word, width: int, lanes: int) -> list:
    """The ``lanes`` signed ``width``-bit fields of a lane-packed ``word``, lane 0 in the low
    bits; lanes past the word's end (padding, :meth:`EqSpikeConfig.stored_lanes`) are 0."""
    stored = len(word) // width
    return [word[i * width:(i + 1) * width].as_signed() if i < stored else Const(0, signed(width))
            for i in range(lanes)]


class InputCore(wiring.Component):
    """Clamped input layer: inputs written by the host, encoder only (a, rho_last, phi, q).

    Its update pass (:func:`rtl.pipeline.input_plan`: 0 address, 1 read, then the encoder and sigma-delta, then write
    + spike) runs in the same slot as the other cores', ``update_lanes`` neurons per cycle,
    and its spikes go up the same bus.

    Members
    -------
    spikes : Out(stream)
    tick, busy, ovf, host, learn
        As :class:`LayerCore`'s (``eps`` and ``lam`` unused). Clearing keeps the inputs (they
        are parameters of the run); ``host.sel == INPUT`` writes input ``host.row``; ``ovf``
        counts a and phi.
    """

    def __init__(self, cfg: EqSpikeConfig, fault=None, dsp_width=None):
        _check_core(cfg)
        self.cfg, self.fault, self.l, self.dsp = cfg, fault, 0, check_dsp_width(dsp_width)
        self.n, self.U, self.G = cfg.layers[0], cfg.update_lanes_of(0), cfg.groups(0)
        super().__init__(_core_members(cfg, 0))
        self.enc_layout = stored_layout(cfg, 0)
        self.inputs = memory.Memory(shape=_lane_word(reg_shape(cfg.s), self.U), depth=mem_depth(self.G), init=[])
        self.state = memory.Memory(shape=group_layout(self.enc_layout, self.U), depth=mem_depth(self.G), init=[])

    def elaborate(self, platform):
        m = Module()
        G, U, h, sf = self.G, self.U, self.host, reg_shape(self.cfg.s)
        m.submodules.inputs = self.inputs
        in_wr = self.inputs.write_port(**({} if U == 1 else {"granularity": sf.width}))
        in_rd = self.inputs.read_port()
        m.submodules.state = self.state
        st_wr, st_rd = self.state.write_port(), self.state.read_port()
        group, elem, group_next = _host_group(m, self)
        m.d.comb += in_wr.addr.eq(h.row if U == 1 else group)
        _lane_write(m, in_wr, h.data, h.we & (h.sel == HostSel.INPUT), elem, U)
        idx = Signal(range(max(G, 2)), name="idx")      # group presented this cycle (stage 0)
        issuing, mode_upd, mode_clr = Signal(name="issuing"), Signal(name="mode_upd"), Signal(name="mode_clr")
        plan = input_plan(self.cfg)
        K = plan.K
        valid, pidx = _pipeline_registers(idx, K)
        el = (lambda sig, u: sig) if U == 1 else (lambda sig, u: sig[u])
        ports = {"inputs": in_rd, "state": st_rd}
        value = {"s": lambda u: _lanes(in_rd.data, sf, U)[u], "rho_old": lambda u: el(st_rd.data, u).rho_last,
                 "phi_old": lambda u: el(st_rd.data, u).phi}

        def reads_at(k, u):
            return {v: value[v](u) for v, mem in plan.reads.items() if plan.read_stage(mem) == k}

        regs, sync, last = _build_stages(plan, U, [tuple(INPUT_WRITES.values())], reads_at,
                                         lambda op, env, u: _datapath_op(self, op, env, "rho_old"))
        pk = regs[K]
        ok = [_lane_valid(self.n, U, pidx[K], u) for u in range(U)]    # padding lanes: no spike, no count
        coming = _coming_spikes(self.n, U, valid[K - 1], pidx[K - 1], last)
        stall, pending = _spike_output(m, self, valid[K], pidx[K], [_masked(el(pk, u).q, v) for u, v in enumerate(ok)],
                              [_masked(el(pk, u).ovf, v) for u, v in enumerate(ok)], self.dsp,
                              coming, self.tick.clr_start | mode_clr)
        mode_next, _ = _pass_next(self, mode_upd, issuing, valid, pending)
        start = self.tick.upd_start & ~mode_upd
        idx_next = Mux(start, 0, Mux(~stall & issuing & (idx != G - 1), idx + 1, idx))
        _read_addresses(m, [(rd, plan.read_stage(name)) for name, rd in ports.items()], mode_next, idx_next,
                        pidx, stall, group_next)
        if self.cfg.learning is not None:   # the learning engine reads the inputs (s^- = s^+)
            m.d.comb += [self.learn.s_free.eq(in_rd.data), self.learn.s_nudged.eq(in_rd.data)]
            with m.If(self.learn.own):
                m.d.comb += in_rd.addr.eq(self.learn.s_addr)
        pick = (lambda items: items[0]) if U == 1 else (lambda items: Array(items)[elem])
        m.d.comb += h.rd_state.s.eq(pick(_lanes(in_rd.data, sf, U)))
        m.d.comb += [h.rd_state[name].eq(pick([el(st_rd.data, u)[name] for u in range(U)]))
                     for name in ("a", "rho_last", "phi", "q")]
        # state writes: stage K, or the clear sweep (p_K is zero from its first cycle, below)
        clr_idx = Signal(range(G + 1), name="clr_idx")
        m.d.comb += [el(st_wr.data, u)[name].eq(el(pk, u)[INPUT_WRITES[name]]) for u in range(U)
                     for name in self.enc_layout.members]
        with m.If(mode_clr):
            m.d.comb += [st_wr.addr.eq(clr_idx), st_wr.en.eq(clr_idx < G)]
        with m.Else():
            m.d.comb += [st_wr.addr.eq(pidx[K]), st_wr.en.eq(valid[K] & ~stall)]
        with m.If(~stall):
            m.d.sync += [valid[1].eq(issuing), pidx[1].eq(idx)]
            for k in range(2, K + 1):
                m.d.sync += [valid[k].eq(valid[k - 1]), pidx[k].eq(pidx[k - 1])]
            m.d.sync += sync
            with m.If(issuing):
                with m.If(idx == G - 1):
                    m.d.sync += issuing.eq(0)
                with m.Else():
                    m.d.sync += idx.eq(idx + 1)
        with m.If(self.tick.clr_start | mode_clr):     # the clear sweep writes p_K: zero
            m.d.sync += pk.eq(0)
        _pass_control(m, self, mode_upd, mode_clr, issuing, idx, valid, [], pending)
        with m.If(self.tick.clr_start & ~mode_clr):
            m.d.sync += [mode_clr.eq(1), clr_idx.eq(0)]
        with m.Elif(mode_clr):
            with m.If(clr_idx < G):
                m.d.sync += clr_idx.eq(clr_idx + 1)
            with m.Else():
                m.d.sync += mode_clr.eq(0)
        return m
