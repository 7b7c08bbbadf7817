"""On-chip learning: the LFSR and the weight/bias update engine (docs/learning.md).

Built only when ``cfg.learning`` is set. The bit-accurate specification is
:class:`golden_model.onchip.OnChipLearner` (with :mod:`golden_model.lfsr`); this module
reproduces it bit for bit.

:class:`LFSR`
    The 64-bit Galois register, initialised from ``cfg.learning.seed`` at hardware reset only.
    Its ``draws`` output holds ``lanes`` draws of ``r = rng_bits`` bits, computed from the
    current state by the constant XOR networks ``A^r, A^2r, ..., A^(lanes r)``
    (:func:`golden_model.lfsr.jump_matrix`): lane ``t`` is the low ``r`` bits of
    ``A^(r (t+1)) S``. ``step_many`` advances the state by ``lanes`` draws, ``step_one`` by one.

:class:`LearningEngine`
    Runs after the nudged phase of a ``TRAIN`` command. It owns the cores' learning ports
    (:func:`rtl.ports.learning_signature`) while busy and sequences these segments back to back, each
    issuing one operation per cycle into one shared pipeline:

    ``UPDATE_WEIGHTS_l``  weight pass of matrix ``l``: row ``i`` of layer ``l``, chunk ``g``
                          of ``C_{l+1}``: ``lanes`` synapses per cycle (``lanes`` draws per cycle);
    ``DRAIN_WEIGHTS``     until the last weight word is written;
    ``COPY_WEIGHTS_l``    copy pass: every updated ``W_l[i, j]`` (``l >= 1``) into core ``l``'s
                          transposed ``w_above`` (one weight per cycle);
    ``UPDATE_BIASES_l``   bias pass of layer ``l+1``, one bias per cycle (one draw per cycle);
    ``DRAIN_END``         until the last bias is written.

    Pipeline (no stalls): stage 0 presents the addresses (and takes the draws), stage 1
    registers the read words (weight word, held states ``s^-``/``s^+`` of the column lanes and
    of the row neuron, bias), stage 2 computes ``H`` per lane (two multiplies), stage 3 the
    gain, rounding offset, shift, add and saturation, stage 4 writes.

The hooks in the cores (:mod:`rtl.layer`): learning-format weight memories whose accumulate
path adds :func:`inference_weight` (round half up to the inference format), the lane-packed ``s_free`` / ``s_nudged``
memories written by the update pass of FREE / NUDGE ticks, and the learning ports muxed onto
the existing memory ports while ``l_own`` is high.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden_model.config import EqSpikeConfig
from golden_model.datapath import stage
from golden_model.lfsr import WIDTH as LFSR_WIDTH
from golden_model.lfsr import jump_matrix

from .ports import clear_words, learning_signature

__all__ = ["LEARN_FAULTS", "PIPE_STAGES", "DRAIN_CYCLES", "inference_weight", "LFSR", "segments",
           "LearningEngine",
           "weight_pass_cycles", "copy_pass_cycles", "bias_pass_cycles", "train_update_cycles",
           "TRAIN_OVERHEAD_CYCLES", "clear_cycles", "train_cycles"]

#: Deliberate faults of the update engine (tests only): ``learn_round`` drops the rounding
#: offset R of the weight update (nearest becomes floor; stochastic rounding loses its draw).
LEARN_FAULTS = (None, "learn_round")

#: Pipeline stages after the issue stage 0 (the last one writes).
PIPE_STAGES = ("register the read words", "H per lane", "gain, offset, shift, add, saturate", "write")
#: Cycles a drain segment lasts: until the last issued operation has been written.
DRAIN_CYCLES = len(PIPE_STAGES) + 1


def weight_pass_cycles(cfg: EqSpikeConfig) -> int:
    """Issue cycles of the weight passes: ``sum_l n_l * C_{l+1}`` (``lanes`` synapses each)."""
    L = cfg.layers
    return sum(L[l] * cfg.chunks(l + 1) for l in range(len(L) - 1))


def copy_pass_cycles(cfg: EqSpikeConfig) -> int:
    """Issue cycles of the copy passes into ``w_above``: ``sum_{l>=1} n_l * n_{l+1}``."""
    L = cfg.layers
    return sum(L[l] * L[l + 1] for l in range(1, len(L) - 1))


def bias_pass_cycles(cfg: EqSpikeConfig) -> int:
    """Issue cycles of the bias pass: ``sum_{l>=1} n_l``."""
    return sum(cfg.layers[1:])


def train_update_cycles(cfg: EqSpikeConfig) -> int:
    """Cycles the learning engine is busy after the nudged phase (exact)::

        sum_l n_l C_{l+1}  +  DRAIN  +  sum_{l>=1} n_l n_{l+1}  +  sum_{l>=1} n_l  +  DRAIN

    with ``DRAIN = DRAIN_CYCLES`` (pipeline drain after the weight passes and at the end).
    """
    return weight_pass_cycles(cfg) + copy_pass_cycles(cfg) + bias_pass_cycles(cfg) + 2 * DRAIN_CYCLES


#: Cycles of a TRAIN command outside the clear sweep, the ticks and the engine: DECODE (1),
#: one RUN cycle before each phase (2), TRAIN_NEXT after each phase (2: the second starts the
#: engine), the LEARN cycle that sees the engine idle and answers (1); see :func:`train_cycles`.
TRAIN_OVERHEAD_CYCLES = 6


def clear_cycles(cfg: EqSpikeConfig) -> int:
    """Cycles of the RESET clear sweep inside TRAIN: every core zeroes one word (update group)
    per cycle, draining its spike queues meanwhile, and the controller waits until all are
    idle: ``max_l rtl.ports.clear_words(cfg, l) + 2`` (``max_l n_l + 2`` when U == 1)."""
    return max(clear_words(cfg, l) for l in range(cfg.n_layers)) + 2


def train_cycles(cfg: EqSpikeConfig, tick_cycles_list) -> int:
    """Cycles of one ``TRAIN`` command: its latency, counted like every command's (edges from
    the one that accepts it to the one that raises the response's valid; READ: 3)::

        TRAIN_OVERHEAD_CYCLES + clear_cycles + sum(tick cycles) + train_update_cycles

    ``tick_cycles_list``: the cycles of each of the ``n_free + n_nudged`` ticks
    (:func:`rtl.network.tick_cycles` of that tick's spikes; what the CYCLES counter sums).
    """
    return TRAIN_OVERHEAD_CYCLES + clear_cycles(cfg) + int(sum(tick_cycles_list)) + train_update_cycles(cfg)


def _xor_bits(state, rows):
    return Cat(state[c] for c in rows).xor() if rows else Const(0, 1)


class LFSR(wiring.Component):
    """The 64-bit Galois LFSR of :mod:`golden_model.lfsr` with ``lanes`` parallel draws.

    Members
    -------
    draws : Out(lanes * bits)
        Lane ``t`` (bits ``t*bits ..``): the low ``bits`` of ``A^(bits (t+1)) S`` (the next
        ``lanes`` draws of the stream), from the current state ``S``.
    step_one, step_many : In(1)
        Advance the state by one draw / by ``lanes`` draws at the clock edge.
    state : Out(64)
        The register (initialised to ``seed`` by the reset only).
    """

    def __init__(self, seed: int, bits: int, lanes: int):
        if not 1 <= seed < (1 << LFSR_WIDTH):
            raise ValueError(f"LFSR seed must be in 1..2^64-1, not {seed!r}")
        self.seed, self.bits, self.lanes = int(seed), int(bits), int(lanes)
        super().__init__({"draws": Out(unsigned(self.lanes * self.bits)), "step_one": In(1),
                          "step_many": In(1), "state": Out(LFSR_WIDTH)})

    def elaborate(self, platform):
        m = Module()
        r, L = self.bits, self.lanes
        st = Signal(LFSR_WIDTH, init=self.seed)
        m.d.comb += self.state.eq(st)
        for t in range(L):
            A = jump_matrix(r * (t + 1))
            m.d.comb += self.draws[t * r:(t + 1) * r].eq(Cat(_xor_bits(st, A.rows_for_bit(b)) for b in range(r)))
        one, many = jump_matrix(r), jump_matrix(r * L)
        with m.If(self.step_many):
            m.d.sync += st.eq(Cat(_xor_bits(st, many.rows_for_bit(b)) for b in range(LFSR_WIDTH)))
        with m.Elif(self.step_one):
            m.d.sync += st.eq(Cat(_xor_bits(st, one.rows_for_bit(b)) for b in range(LFSR_WIDTH)))
        return m


@stage("inference_weight")
def inference_weight(w, fmt, e: int):
    """What the accumulators add for learning-format code ``w`` (format ``fmt``, ``e`` extra
    fraction bits): round half up to the inference format, clamped at its top code. One
    incrementer and a compare per lane."""
    if e == 0:
        return w
    top = (1 << (fmt.width - e - 1)) - 1
    r = (w + (1 << (e - 1))) >> e
    return Mux(r > top, top, r)


def _offset(draw, D: int, r: int, rounding: str):
    """Rounding offset R for right shift D (OnChipLearner.offsets): nearest ``2^(D-1)``;
    stochastic, centred: ``(d << (D - r)) + 2^(D-r-1)`` when ``D > r``, ``d >> (r - D)`` when
    ``D <= r``; 0 when ``D == 0``."""
    if D == 0:
        return Const(0, 1)
    if rounding == "nearest":
        return Const(1 << (D - 1), D)
    if D > r:
        return Cat(Const(1 << (D - r - 1), D - r), draw)      # d << (D-r) | 2^(D-r-1): no carry
    return draw >> (r - D)


def _update(value, H, neg, mult: int, D: int, R, fmt):
    """The stages ``weight_update`` and ``bias_update`` of :mod:`golden_model.datapath` after
    ``H`` is formed: ``value + ((sign * mult * H + R) >> D)``, saturated to ``fmt``."""
    G = H * mult
    G = Mux(neg, -G, G)
    new = value + ((G + R) >> D)
    sat = Mux(new < fmt.min_code, fmt.min_code, Mux(new > fmt.max_code, fmt.max_code, new))
    return sat.as_unsigned()[:fmt.width]


def segments(cfg: EqSpikeConfig) -> list:
    """The engine's segments in order, ``(state name, kind, matrix)``: kind ``weights``,
    ``drain``, ``copy`` or ``biases`` (see the module docstring)."""
    k = cfg.n_layers - 1
    return ([(f"UPDATE_WEIGHTS_{l}", "weights", l) for l in range(k)] + [("DRAIN_WEIGHTS", "drain", None)]
            + [(f"COPY_WEIGHTS_{l}", "copy", l) for l in range(1, k)]
            + [(f"UPDATE_BIASES_{l}", "biases", l) for l in range(k)] + [("DRAIN_END", "drain", None)])


class LearningEngine(wiring.Component):
    """Weight-update, copy and bias passes over the cores (see the module docstring).

    Parameters
    ----------
    cfg : EqSpikeConfig
        With a ``learning`` section.
    fault : None or "learn_round"
        Deliberately broken rounding (tests only).

    Members
    -------
    sign_draw : In(1)
        Pulse: take one draw; its bit 0 is beta's sign (``neg``) for this sample.
    start : In(1)
        Pulse: run the passes (the held states must be complete).
    nudged : In(1)
        The ticks running are nudged: the cores' update passes write ``s_nudged``, not ``s_free``.
    neg : Out(1)
        Beta's sign of the current sample is negative.
    busy : Out(1)
        Passes running (the engine owns the cores' learning ports).
    core0, core1, ... : Out(:func:`rtl.ports.learning_signature`)
        The learning port of each core (connect to the core's ``learn``).
    """

    def __init__(self, cfg: EqSpikeConfig, fault=None):
        if cfg.learning is None:
            raise ValueError("the learning engine needs a config with a 'learning' section")
        if fault not in LEARN_FAULTS:
            raise ValueError(f"fault must be one of {LEARN_FAULTS}, not {fault!r}")
        self.cfg, self.fault = cfg, fault
        lrn = cfg.learning
        self.stochastic = lrn.rounding == "stochastic"
        self.lfsr = LFSR(lrn.seed, lrn.rng_bits, cfg.lanes if self.stochastic else 1)
        members = {"sign_draw": In(1), "start": In(1), "nudged": In(1), "neg": Out(1), "busy": Out(1)}
        members.update({f"core{l}": Out(learning_signature(cfg, l)) for l in range(cfg.n_layers)})
        super().__init__(members)
        self.ports = [getattr(self, f"core{l}") for l in range(cfg.n_layers)]

    def elaborate(self, platform):
        m = Module()
        lfsr = m.submodules.lfsr = self.lfsr
        with m.If(self.sign_draw):      # the sample's sign draw
            m.d.comb += lfsr.step_one.eq(1)
            m.d.sync += self.neg.eq(lfsr.draws[0])
        c = self._issue_counters()
        P, iss = self._pipeline(m, c)
        self._sequencer(m, c, P, iss)
        for port in self.ports:
            m.d.comb += port.own.eq(self.busy)
        for port in self.ports[1:]:     # held states: FREE ticks write s_free, NUDGE ticks s_nudged
            m.d.comb += port.nudged.eq(self.nudged)
        w2, cf2, cn2, am2, ap2, b2 = self._read_stage(m, P[1])
        st3 = self._gain_inputs_stage(m, P[2], w2, cf2, cn2, am2, ap2, b2)
        res4, bres4, cv4 = self._update_stage(m, P[3], st3)
        self._write_stage(m, P[4], res4, bres4, cv4)
        return m

    # -- issue stage ---------------------------------------------------------------------------
    def _issue_counters(self):
        """Counters of the issue stage: row ``i`` (its chunk word and lane), its weight base
        ``i * C_{l+1}``, chunk ``g`` of the weight pass, column ``j`` (its word, lane and base
        ``j * C_l``) of the copy and bias passes."""
        cfg, n, L = self.cfg, self.cfg.layers, self.cfg.lanes
        k, C = len(n) - 1, [cfg.chunks(l) for l in range(len(n))]
        nmax = max(n)
        c = SimpleNamespace()
        c.i = Signal(range(nmax + 1), name="i")                 # row (layer l) / column j of the bias pass
        c.row_word, c.row_lane = Signal(range(nmax + 1), name="row_word"), Signal(range(max(L, 2)), name="row_lane")
        c.row_base = Signal(range(max(n[l] * C[l + 1] for l in range(k)) + 1), name="row_base")   # i * C_{l+1}
        c.g = Signal(range(max(C) + 1), name="g")               # chunk of the weight pass
        c.j, c.j_word = Signal(range(nmax + 1), name="j"), Signal(range(nmax + 1), name="j_word")
        c.j_lane = Signal(range(max(L, 2)), name="j_lane")
        c.col_base = Signal(range(max([n[l + 1] * C[l] for l in range(1, k)] + [1]) + 1), name="col_base")  # j*C_l
        c.clear_rows = [c.i.eq(0), c.row_word.eq(0), c.row_lane.eq(0), c.row_base.eq(0)]
        c.clear_cols = [c.j.eq(0), c.j_word.eq(0), c.j_lane.eq(0), c.col_base.eq(0), c.g.eq(0)]
        U = cfg.update_lanes_of(0)
        if U > 1:   # inputs and biases are stored one update group (U values) per word
            c.i_group, c.i_elem = Signal(range(nmax + 1), name="i_group"), Signal(range(U), name="i_element")
            c.j_group, c.j_elem = Signal(range(nmax + 1), name="j_group"), Signal(range(U), name="j_element")
            c.clear_rows += [c.i_group.eq(0), c.i_elem.eq(0)]
            c.clear_cols += [c.j_group.eq(0), c.j_elem.eq(0)]
        c.C = C
        return c

    def _step_group(self, c, which):
        """Advance ``i_group``/``i_element`` (or ``j_...``) with ``i`` (``j``); nothing when U == 1."""
        U = self.cfg.update_lanes_of(0)
        if U == 1:
            return []
        group, elem = (c.i_group, c.i_elem) if which == "i" else (c.j_group, c.j_elem)
        last = elem == U - 1
        return [elem.eq(Mux(last, 0, elem + 1)), group.eq(Mux(last, group + 1, group))]

    def _step_lane(self, word, lane):
        if self.cfg.lanes == 1:
            return [word.eq(word + 1)]
        last = lane == self.cfg.lanes - 1
        return [lane.eq(Mux(last, 0, lane + 1)), word.eq(Mux(last, word + 1, word))]

    def _pipeline(self, m, c):
        """Stage registers: stage s holds what was issued s cycles ago (``iss``: the issue stage's
        values, driven by the sequencer)."""
        L, r, k, U = self.cfg.lanes, self.cfg.learning.rng_bits, self.cfg.n_layers - 1, self.cfg.update_lanes_of(0)
        waddr_bits = max(len(c.row_base), len(c.col_base) + len(c.row_word), len(c.i)) + 1

        def stage_regs(s):
            return dict(
                vw=Signal(name=f"lp{s}_vw"), vc=Signal(name=f"lp{s}_vc"), vb=Signal(name=f"lp{s}_vb"),
                mat=Signal(range(max(k, 2)), name=f"lp{s}_mat"),
                waddr=Signal(waddr_bits, name=f"lp{s}_waddr"),
                wlane=Signal(range(max(L, 2)), name=f"lp{s}_wlane"),
                rlane=Signal(range(max(L, 2)), name=f"lp{s}_rlane"),
                mask=Signal(L, name=f"lp{s}_mask"),
                draws=Signal(L * r if self.stochastic else 1, name=f"lp{s}_draws"),
                **({} if U == 1 else {"elem": Signal(range(U), name=f"lp{s}_element")}),
            )

        S = len(PIPE_STAGES)     # stages 1..S
        P = [None] + [stage_regs(s) for s in range(1, S + 1)]
        iss = stage_regs(0)
        for s in range(1, S + 1):
            prev = iss if s == 1 else P[s - 1]
            m.d.sync += [P[s][name].eq(prev[name]) for name in P[s]]
        if self.stochastic:
            m.d.comb += iss["draws"].eq(self.lfsr.draws)
        self._pipe_busy = Cat(P[s][v] for s in range(1, S + 1) for v in ("vw", "vc", "vb")).any()
        return P, iss

    def _sequencer(self, m, c, P, iss):
        """The segment FSM (issue stage): one operation per cycle into the pipeline."""
        segs = segments(self.cfg)
        with m.FSM(name="learn_fsm") as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += c.clear_rows + c.clear_cols
                    m.next = segs[0][0]
            for si, (name, kind, l) in enumerate(segs):
                nxt = segs[si + 1][0] if si + 1 < len(segs) else "IDLE"
                with m.State(name):
                    if kind == "weights":
                        self._issue_weights(m, c, iss, l, nxt)
                    elif kind == "copy":
                        self._issue_copy(m, c, iss, l, nxt)
                    elif kind == "biases":
                        self._issue_biases(m, c, iss, l, nxt)
                    else:   # drain: until the last issued operation is written
                        with m.If(~self._pipe_busy):
                            m.next = nxt
            m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))

    def _end_of_row(self, m, c, l, nxt):
        """Last column of row i of W_l: next row, or the next segment after the last row."""
        with m.If(c.i == self.cfg.layers[l] - 1):
            m.d.sync += c.clear_rows
            m.next = nxt
        with m.Else():
            m.d.sync += [c.i.eq(c.i + 1), c.row_base.eq(c.row_base + c.C[l + 1])]
            m.d.sync += self._step_lane(c.row_word, c.row_lane) + self._step_group(c, "i")

    def _issue_weights(self, m, c, iss, l, nxt):
        L = self.cfg.lanes
        lo, hi = self.ports[l], self.ports[l + 1]
        last_g = c.g == c.C[l + 1] - 1
        rem = self._always_real(l + 1)                  # real lanes of the last chunk
        m.d.comb += [
            iss["vw"].eq(1), iss["mat"].eq(l), iss["waddr"].eq(c.row_base + c.g), iss["rlane"].eq(c.row_lane),
            iss["mask"].eq(Mux(last_g, (1 << rem) - 1, (1 << L) - 1)),
            hi.wb_raddr.eq(c.row_base + c.g), hi.s_addr.eq(c.g),
        ]
        if l > 0:
            m.d.comb += lo.s_addr.eq(c.row_word)
        elif self.cfg.update_lanes_of(0) == 1:
            m.d.comb += lo.s_addr.eq(c.i)
        else:     # the input word holding row i, and its element
            m.d.comb += [lo.s_addr.eq(c.i_group), iss["elem"].eq(c.i_elem)]
        if self.stochastic:
            m.d.comb += self.lfsr.step_many.eq(1)
        with m.If(last_g):
            m.d.sync += c.g.eq(0)
            self._end_of_row(m, c, l, nxt)
        with m.Else():
            m.d.sync += c.g.eq(c.g + 1)

    def _issue_copy(self, m, c, iss, l, nxt):
        hi = self.ports[l + 1]
        m.d.comb += [
            iss["vc"].eq(1), iss["mat"].eq(l), iss["waddr"].eq(c.col_base + c.row_word),
            iss["wlane"].eq(c.row_lane), iss["rlane"].eq(c.j_lane),
            hi.wb_raddr.eq(c.row_base + c.j_word),
        ]
        with m.If(c.j == self.cfg.layers[l + 1] - 1):
            m.d.sync += c.clear_cols
            self._end_of_row(m, c, l, nxt)
        with m.Else():
            m.d.sync += [c.j.eq(c.j + 1), c.col_base.eq(c.col_base + c.C[l])]
            m.d.sync += self._step_lane(c.j_word, c.j_lane)

    def _issue_biases(self, m, c, iss, l, nxt):
        hi = self.ports[l + 1]
        group = c.j if self.cfg.update_lanes_of(0) == 1 else c.j_group     # the bias word holding j
        m.d.comb += [
            iss["vb"].eq(1), iss["mat"].eq(l), iss["waddr"].eq(group), iss["wlane"].eq(c.j_lane),
            hi.b_raddr.eq(group), hi.s_addr.eq(c.j_word),
        ]
        if self.cfg.update_lanes_of(0) > 1:
            m.d.comb += iss["elem"].eq(c.j_elem)
        if self.stochastic:
            m.d.comb += self.lfsr.step_one.eq(1)
        with m.If(c.j == self.cfg.layers[l + 1] - 1):
            m.d.sync += c.clear_cols
            m.next = nxt
        with m.Else():
            m.d.sync += c.j.eq(c.j + 1)
            m.d.sync += self._step_lane(c.j_word, c.j_lane) + self._step_group(c, "j")

    # -- stage 1 -> 2: register the read words ---------------------------------------------------
    def _read_stage(self, m, p1):
        cfg, ports = self.cfg, self.ports
        L, sw, k = cfg.lanes, cfg.s.width, cfg.n_layers - 1
        wmax = max(cfg.learn_format(l).width for l in range(k))
        bmax = max(f.width for f in cfg.biases)
        w2 = Signal(L * wmax, name="w2")
        cf2, cn2 = Signal(L * sw, name="cf2"), Signal(L * sw, name="cn2")
        am2, ap2 = Signal(sw, name="am2"), Signal(sw, name="ap2")
        b2 = Signal(signed(bmax), name="b2")
        with m.Switch(p1["mat"]):
            for l in range(k):
                with m.Case(l):
                    lo, hi = ports[l], ports[l + 1]
                    if l == 0:
                        row_m = row_p = self._element(lo.s_free, sw, p1)
                    else:
                        row_m = Array(lo.s_free[t * sw:(t + 1) * sw] for t in range(L))[p1["rlane"]]
                        row_p = Array(lo.s_nudged[t * sw:(t + 1) * sw] for t in range(L))[p1["rlane"]]
                    m.d.sync += [w2.eq(hi.wb_rdata), cf2.eq(hi.s_free), cn2.eq(hi.s_nudged),
                                 am2.eq(row_m), ap2.eq(row_p),
                                 b2.eq(self._element(hi.b_rdata, cfg.biases[l].width, p1, signed_=True))]
        return w2, cf2, cn2, am2, ap2, b2

    def _element(self, word, width, p1, signed_=False):
        """The issued element of a word holding one update group (inputs, biases)."""
        U = self.cfg.update_lanes_of(0)
        if U == 1:
            return word
        items = [word[u * width:(u + 1) * width] for u in range(U)]
        return Array(x.as_signed() if signed_ else x for x in items)[p1["elem"]]

    # -- stage 2 -> 3: H per lane (weights), H of the bias lane, the weight to copy ---------------
    def _gain_inputs_stage(self, m, p2, w2, cf2, cn2, am2, ap2, b2):
        cfg = self.cfg
        L, sw, k = cfg.lanes, cfg.s.width, cfg.n_layers - 1
        wmax = max(cfg.learn_format(l).width for l in range(k))
        bmax = max(f.width for f in cfg.biases)
        lanes_f = [cf2[t * sw:(t + 1) * sw] for t in range(L)]
        lanes_n = [cn2[t * sw:(t + 1) * sw] for t in range(L)]
        H = [am2 * (bn - bf) + (ap2 - am2) * bf for bf, bn in zip(lanes_f, lanes_n)]
        hw = max(h.shape().width for h in H)
        st = SimpleNamespace(H=[Signal(signed(hw), name=f"lh3_{t}") for t in range(L)],
                             Hb=Signal(signed(sw + 1), name="Hb3"), w=Signal(L * wmax, name="w3"),
                             b=Signal(signed(bmax), name="b3"), cv=Signal(signed(wmax), name="cv3"))
        m.d.sync += [h3.eq(h) for h3, h in zip(st.H, H)]
        m.d.sync += [st.Hb.eq(Array(bn - bf for bf, bn in zip(lanes_f, lanes_n))[p2["wlane"]]),
                     st.w.eq(w2), st.b.eq(b2)]
        with m.Switch(p2["mat"]):
            for l in range(k):
                with m.Case(l):
                    W = cfg.learn_format(l).width
                    m.d.sync += st.cv.eq(Array(w2[t * W:(t + 1) * W].as_signed() for t in range(L))[p2["rlane"]])
        return st

    # -- stage 3 -> 4: gain, rounding offset, shift, add, saturate --------------------------------
    def _update_stage(self, m, p3, st):
        cfg, lrn = self.cfg, self.cfg.learning
        L, r, k = cfg.lanes, lrn.rng_bits, cfg.n_layers - 1
        wmax = max(cfg.learn_format(l).width for l in range(k))
        bmax = max(f.width for f in cfg.biases)
        res4 = Signal(L * wmax, name="res4")      # updated weight word (matrix p3.mat's lane width)
        bres4 = Signal(bmax, name="bres4")        # updated bias
        cv4 = Signal(wmax, name="cv4")            # weight to copy
        m.d.sync += cv4.eq(st.cv)
        draws = [p3["draws"][t * r:(t + 1) * r] for t in range(L)] if self.stochastic else [None] * L
        with m.Switch(p3["mat"]):
            for l in range(k):
                with m.Case(l):
                    wf, bf = cfg.learn_format(l), cfg.biases[l]
                    W, D, Db = wf.width, cfg.update_shift(l), cfg.bias_update_shift(l)
                    mult = lrn.rate_mult[l]
                    new = []
                    for t in range(L):
                        R = _offset(draws[t], D, r, lrn.rounding)
                        if self.fault == "learn_round":
                            R = Const(0, 1)
                        w_old = st.w[t * W:(t + 1) * W].as_signed()
                        w_new = _update(w_old, st.H[t], self.neg, mult, D, R, wf)
                        # lanes past the row's end keep their word: the cores write whole words
                        new.append(w_new if t < self._always_real(l + 1) else Mux(p3["mask"][t], w_new, w_old)[:W])
                    Rb = _offset(draws[0], Db, r, lrn.rounding)
                    m.d.sync += [res4.eq(Cat(new)),
                                 bres4.eq(_update(st.b[:bf.width].as_signed(), st.Hb, self.neg, mult, Db, Rb, bf))]
        return res4, bres4, cv4

    def _always_real(self, l: int) -> int:
        """Lanes real in every chunk of layer ``l`` (the last chunk's: ``n_l - (C_l - 1) lanes``)."""
        return self.cfg.layers[l] - (self.cfg.chunks(l) - 1) * self.cfg.lanes

    # -- stage 4: writes ---------------------------------------------------------------------------
    def _write_stage(self, m, p4, res4, bres4, cv4):
        cfg, L = self.cfg, self.cfg.lanes
        for l in range(cfg.n_layers - 1):
            lo, hi = self.ports[l], self.ports[l + 1]
            W, mine = cfg.learn_format(l).width, p4["mat"] == l
            m.d.comb += [
                hi.wb_waddr.eq(p4["waddr"]), hi.wb_wdata.eq(res4[:L * W]),
                hi.wb_wen.eq(Mux(p4["vw"] & mine, p4["mask"], 0)),
                hi.b_waddr.eq(p4["waddr"]),
            ]
            bw, U = cfg.biases[l].width, cfg.update_lanes_of(l + 1)
            if U == 1:
                m.d.comb += [hi.b_wdata.eq(bres4[:bw]), hi.b_wen.eq(p4["vb"] & mine)]
            else:    # element p4.elem of the bias word
                m.d.comb += [hi.b_wdata.eq(Cat(bres4[:bw] for _ in range(U))),
                             hi.b_wen.eq(Mux(p4["vb"] & mine, Cat(p4["elem"] == u for u in range(U)), 0))]
            if l >= 1:
                m.d.comb += [
                    lo.wa_waddr.eq(p4["waddr"]), lo.wa_wdata.eq(Cat(cv4[:W] for _ in range(L))),
                    lo.wa_wen.eq(Mux(p4["vc"] & mine, Cat(p4["wlane"] == t for t in range(L)), 0)),
                ]
