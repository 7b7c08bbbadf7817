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
    (:func:`learning_members`) while busy and sequences these segments back to back, each
    issuing one operation per cycle into one shared pipeline:

    ``W0 .. W(k-1)``  weight pass of matrix ``l``: row ``i`` of layer ``l``, chunk ``g`` of
                      ``C_{l+1}``: ``lanes`` synapses per cycle (``lanes`` draws per cycle);
    drain             until the last weight word is written;
    ``C1 .. C(k-1)``  copy pass: every updated ``W_l[i, j]`` (``l >= 1``) into core ``l``'s
                      transposed ``w_above`` (one weight per cycle);
    ``B0 .. B(k-1)``  bias pass of layer ``l+1``, one bias per cycle (one draw per cycle);
    drain             until the last bias is written.

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

from amaranth.hdl import Array, Cat, Const, Elaboratable, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden_model.config import EqSpikeConfig
from golden_model.lfsr import WIDTH as LFSR_WIDTH
from golden_model.lfsr import jump_matrix

__all__ = ["LEARN_FAULTS", "PIPE_STAGES", "DRAIN_CYCLES", "learning_members", "inference_weight", "LFSR",
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


def _chunks(cfg, l):
    return -(-cfg.layers[l] // cfg.lanes)


def weight_pass_cycles(cfg: EqSpikeConfig) -> int:
    """Issue cycles of the weight passes: ``sum_l n_l * C_{l+1}`` (``lanes`` synapses each)."""
    L = cfg.layers
    return sum(L[l] * _chunks(cfg, l + 1) for l in range(len(L) - 1))


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
    """Cycles of the RESET clear sweep inside TRAIN: every core zeroes one word per cycle and
    the controller waits until all are idle: ``max_l n_l + 2``."""
    return max(cfg.layers) + 2


def train_cycles(cfg: EqSpikeConfig, tick_cycles_list) -> int:
    """Cycles of one ``TRAIN`` command: its latency, counted like every command's (edges from
    the one that accepts it to the one that raises the response's valid; READ: 3)::

        TRAIN_OVERHEAD_CYCLES + clear_cycles + sum(tick cycles) + train_update_cycles

    ``tick_cycles_list``: the cycles of each of the ``n_free + n_nudged`` ticks
    (:func:`rtl.network.tick_cycles` of that tick's spikes; what the CYCLES counter sums).
    """
    return TRAIN_OVERHEAD_CYCLES + clear_cycles(cfg) + int(sum(tick_cycles_list)) + train_update_cycles(cfg)


def learning_members(cfg: EqSpikeConfig, l: int) -> dict:
    """The learning port of core ``l`` (empty without ``cfg.learning``).

    Every core: ``l_own`` (the engine drives the port this cycle), ``l_s_addr`` and the held
    states read from it the next cycle (``l_s_free``, ``l_s_nudged``; input core: the
    ``inputs`` word at address ``l_s_addr``, both the same). Non-input cores also take the
    hold select ``l_nudged`` (update pass writes ``s_nudged`` instead of ``s_free``) and have
    read/write ports of ``w_below`` and ``bias`` and a write port of ``w_above``.
    """
    if cfg.learning is None:
        return {}
    from .layer import mem_depth
    from amaranth.utils import ceil_log2
    L, sw = cfg.lanes, cfg.s.width
    if l == 0:
        return {"l_own": In(1), "l_s_addr": In(range(mem_depth(cfg.layers[0]))),
                "l_s_free": Out(unsigned(sw)), "l_s_nudged": Out(unsigned(sw))}
    n = cfg.layers
    C = _chunks(cfg, l)
    addr = lambda words: unsigned(ceil_log2(mem_depth(words)))
    wbw = cfg.learn_format(l - 1).width
    members = {
        "l_own": In(1), "l_nudged": In(1),
        "l_s_addr": In(addr(C)),
        "l_s_free": Out(unsigned(L * sw)), "l_s_nudged": Out(unsigned(L * sw)),
        "l_wb_raddr": In(addr(n[l - 1] * C)), "l_wb_rdata": Out(unsigned(L * wbw)),
        "l_wb_waddr": In(addr(n[l - 1] * C)), "l_wb_wdata": In(unsigned(L * wbw)), "l_wb_wen": In(L),
        "l_b_raddr": In(addr(n[l])), "l_b_rdata": Out(signed(cfg.biases[l - 1].width)),
        "l_b_waddr": In(addr(n[l])), "l_b_wdata": In(signed(cfg.biases[l - 1].width)), "l_b_wen": In(1),
    }
    if l + 1 < len(n):
        waw = cfg.learn_format(l).width
        members.update({"l_wa_waddr": In(addr(n[l + 1] * C)), "l_wa_wdata": In(unsigned(L * waw)),
                        "l_wa_wen": In(L)})
    return members


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


def inference_weight(w, fmt, e: int):
    """What the accumulators add for learning-format code ``w`` (format ``fmt``, ``e`` extra
    fraction bits): ``min((w + 2^(e-1)) >> e, max_inf)`` (OnChipLearner.inference_weights):
    round half up to the inference format, clamped at its top code. One incrementer and a
    compare per lane."""
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
    """``saturate(value + ((sign * mult * H + R) >> D))`` in ``fmt``'s code range."""
    G = H * mult
    G = Mux(neg, -G, G)
    new = value + ((G + R) >> D)
    sat = Mux(new < fmt.min_code, fmt.min_code, Mux(new > fmt.max_code, fmt.max_code, new))
    return sat.as_unsigned()[:fmt.width]


class LearningEngine(Elaboratable):
    """Weight-update, copy and bias passes over the cores (see the module docstring).

    Parameters
    ----------
    cfg : EqSpikeConfig
        With a ``learning`` section.
    cores : list
        The network's cores (input core first); the engine drives their learning ports.
    fault : None or "learn_round"
        Deliberately broken rounding (tests only).

    Members
    -------
    sign_draw : In-like Signal
        Pulse: take one draw; its bit 0 is beta's sign (``neg``) for this sample.
    start : Signal
        Pulse: run the passes (the held states must be complete).
    neg : Signal
        Beta's sign of the current sample is negative.
    busy : Signal
        Passes running (the engine owns the cores' learning ports).
    """

    def __init__(self, cfg: EqSpikeConfig, cores, fault=None):
        if cfg.learning is None:
            raise ValueError("the learning engine needs a config with a 'learning' section")
        if fault not in LEARN_FAULTS:
            raise ValueError(f"fault must be one of {LEARN_FAULTS}, not {fault!r}")
        self.cfg, self.cores, self.fault = cfg, cores, fault
        lrn = cfg.learning
        self.stochastic = lrn.rounding == "stochastic"
        self.lfsr = LFSR(lrn.seed, lrn.rng_bits, cfg.lanes if self.stochastic else 1)
        self.sign_draw = Signal()
        self.start = Signal()
        self.neg = Signal()
        self.busy = Signal()

    def elaborate(self, platform):
        m = Module()
        cfg, cores, lfsr = self.cfg, self.cores, self.lfsr
        lrn = cfg.learning
        m.submodules.lfsr = lfsr
        n = cfg.layers
        k = len(n) - 1
        L, r, sw = cfg.lanes, lrn.rng_bits, cfg.s.width
        C = [_chunks(cfg, l) for l in range(k + 1)]
        wfmt = [cfg.learn_format(l) for l in range(k)]
        bfmt = list(cfg.biases)
        wmax = max(f.width for f in wfmt)
        bmax = max(f.width for f in bfmt)

        # -- sign draw ---------------------------------------------------------------------------
        with m.If(self.sign_draw):
            m.d.comb += lfsr.step_one.eq(1)
            m.d.sync += self.neg.eq(lfsr.draws[0])

        # -- counters of the issue stage ---------------------------------------------------------
        nmax = max(n)
        i = Signal(range(nmax + 1))                     # row (layer l) / column j of the bias pass
        row_word, row_lane = Signal(range(nmax + 1)), Signal(range(max(L, 2)))
        row_base = Signal(range(max(n[l] * C[l + 1] for l in range(k)) + 1))      # i * C_{l+1}
        g = Signal(range(max(C) + 1))                   # chunk of the weight pass
        j, j_word, j_lane = Signal(range(nmax + 1)), Signal(range(nmax + 1)), Signal(range(max(L, 2)))
        col_base = Signal(range(max([n[l + 1] * C[l] for l in range(1, k)] + [1]) + 1))   # j * C_l

        def step_lane(word, lane):
            if L == 1:
                return [word.eq(word + 1)]
            return [lane.eq(Mux(lane == L - 1, 0, lane + 1)), word.eq(Mux(lane == L - 1, word + 1, word))]

        clear_rows = [i.eq(0), row_word.eq(0), row_lane.eq(0), row_base.eq(0)]
        clear_cols = [j.eq(0), j_word.eq(0), j_lane.eq(0), col_base.eq(0), g.eq(0)]

        # -- pipeline registers: stage s holds what was issued s cycles ago ---------------------
        S = len(PIPE_STAGES)     # stages 1..S

        def stage_regs(s):
            return dict(
                vw=Signal(name=f"lp{s}_vw"), vc=Signal(name=f"lp{s}_vc"), vb=Signal(name=f"lp{s}_vb"),
                mat=Signal(range(max(k, 2)), name=f"lp{s}_mat"),
                waddr=Signal(max(row_base.shape().width, col_base.shape().width + row_word.shape().width,
                                 i.shape().width) + 1, name=f"lp{s}_waddr"),
                wlane=Signal(range(max(L, 2)), name=f"lp{s}_wlane"),
                rlane=Signal(range(max(L, 2)), name=f"lp{s}_rlane"),
                mask=Signal(L, name=f"lp{s}_mask"),
                draws=Signal(L * r if self.stochastic else 1, name=f"lp{s}_draws"),
            )

        P = [None] + [stage_regs(s) for s in range(1, S + 1)]
        iss = stage_regs(0)
        for s in range(1, S + 1):
            prev = iss if s == 1 else P[s - 1]
            m.d.sync += [P[s][name].eq(prev[name]) for name in P[s]]
        pipe_busy = Cat(P[s][v] for s in range(1, S + 1) for v in ("vw", "vc", "vb")).any()
        if self.stochastic:
            m.d.comb += iss["draws"].eq(lfsr.draws)

        # -- segment sequencer (issue stage) ---------------------------------------------------
        segs = [("W", l) for l in range(k)] + [("DRAIN_W", None)] + [("C", l) for l in range(1, k)] \
            + [("B", l) for l in range(k)] + [("DRAIN_END", None)]
        names = [f"{kind}{'' if l is None else l}" for kind, l in segs]
        ins = cores[0]

        def end_of_row(l, nxt):
            """Last column of row i of W_l: next row, or the next segment after the last row."""
            with m.If(i == n[l] - 1):
                m.d.sync += clear_rows
                m.next = nxt
            with m.Else():
                m.d.sync += [i.eq(i + 1), row_base.eq(row_base + C[l + 1])]
                m.d.sync += step_lane(row_word, row_lane)

        with m.FSM(name="learn_fsm") as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += clear_rows + clear_cols
                    m.next = names[0]
            for si, ((kind, l), name) in enumerate(zip(segs, names)):
                nxt = names[si + 1] if si + 1 < len(segs) else "IDLE"
                with m.State(name):
                    if kind == "W":
                        lo, hi = cores[l], cores[l + 1]
                        last_g = g == C[l + 1] - 1
                        rem = n[l + 1] - (C[l + 1] - 1) * L          # real lanes of the last chunk
                        m.d.comb += [
                            iss["vw"].eq(1), iss["mat"].eq(l), iss["waddr"].eq(row_base + g),
                            iss["rlane"].eq(row_lane),
                            iss["mask"].eq(Mux(last_g, (1 << rem) - 1, (1 << L) - 1)),
                            hi.l_wb_raddr.eq(row_base + g), hi.l_s_addr.eq(g),
                            lo.l_s_addr.eq(i if l == 0 else row_word),
                        ]
                        if self.stochastic:
                            m.d.comb += lfsr.step_many.eq(1)
                        with m.If(last_g):
                            m.d.sync += g.eq(0)
                            end_of_row(l, nxt)
                        with m.Else():
                            m.d.sync += g.eq(g + 1)
                    elif kind == "C":
                        lo, hi = cores[l], cores[l + 1]
                        m.d.comb += [
                            iss["vc"].eq(1), iss["mat"].eq(l), iss["waddr"].eq(col_base + row_word),
                            iss["wlane"].eq(row_lane), iss["rlane"].eq(j_lane),
                            hi.l_wb_raddr.eq(row_base + j_word),
                        ]
                        with m.If(j == n[l + 1] - 1):
                            m.d.sync += clear_cols
                            end_of_row(l, nxt)
                        with m.Else():
                            m.d.sync += [j.eq(j + 1), col_base.eq(col_base + C[l])]
                            m.d.sync += step_lane(j_word, j_lane)
                    elif kind == "B":
                        hi = cores[l + 1]
                        m.d.comb += [
                            iss["vb"].eq(1), iss["mat"].eq(l), iss["waddr"].eq(j), iss["wlane"].eq(j_lane),
                            hi.l_b_raddr.eq(j), hi.l_s_addr.eq(j_word),
                        ]
                        if self.stochastic:
                            m.d.comb += lfsr.step_one.eq(1)
                        with m.If(j == n[l + 1] - 1):
                            m.d.sync += clear_cols
                            m.next = nxt
                        with m.Else():
                            m.d.sync += j.eq(j + 1)
                            m.d.sync += step_lane(j_word, j_lane)
                    else:   # drain: until the last issued operation is written
                        with m.If(~pipe_busy):
                            m.next = nxt
            m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        for core in cores:
            m.d.comb += core.l_own.eq(self.busy)

        # -- stage 1 -> 2: register the read words -------------------------------------------
        p1, p2 = P[1], P[2]
        w2 = Signal(L * wmax)
        cf2, cn2 = Signal(L * sw), Signal(L * sw)
        am2, ap2 = Signal(sw), Signal(sw)
        b2 = Signal(signed(bmax))
        with m.Switch(p1["mat"]):
            for l in range(k):
                with m.Case(l):
                    lo, hi = cores[l], cores[l + 1]
                    if l == 0:
                        row_m = row_p = ins.l_s_free
                    else:
                        row_m = Array(lo.l_s_free[t * sw:(t + 1) * sw] for t in range(L))[p1["rlane"]]
                        row_p = Array(lo.l_s_nudged[t * sw:(t + 1) * sw] for t in range(L))[p1["rlane"]]
                    m.d.sync += [w2.eq(hi.l_wb_rdata), cf2.eq(hi.l_s_free), cn2.eq(hi.l_s_nudged),
                                 am2.eq(row_m), ap2.eq(row_p), b2.eq(hi.l_b_rdata)]

        # -- stage 2 -> 3: H per lane (weights), H of the bias lane, the weight to copy ---------
        lanes_f = [cf2[t * sw:(t + 1) * sw] for t in range(L)]
        lanes_n = [cn2[t * sw:(t + 1) * sw] for t in range(L)]
        H = [am2 * (bn - bf) + (ap2 - am2) * bf for bf, bn in zip(lanes_f, lanes_n)]
        hw = max(h.shape().width for h in H)
        H3 = [Signal(signed(hw), name=f"lh3_{t}") for t in range(L)]
        Hb3 = Signal(signed(sw + 1))
        w3, b3 = Signal(L * wmax), Signal(signed(bmax))
        cv3 = Signal(signed(wmax))
        m.d.sync += [h3.eq(h) for h3, h in zip(H3, H)]
        m.d.sync += [Hb3.eq(Array(bn - bf for bf, bn in zip(lanes_f, lanes_n))[p2["wlane"]]),
                     w3.eq(w2), b3.eq(b2)]
        with m.Switch(p2["mat"]):
            for l in range(k):
                with m.Case(l):
                    W = wfmt[l].width
                    m.d.sync += cv3.eq(Array(w2[t * W:(t + 1) * W].as_signed() for t in range(L))[p2["rlane"]])

        # -- stage 3 -> 4: gain, rounding offset, shift, add, saturate ------------------------
        p3 = P[3]
        res4 = Signal(L * wmax)      # updated weight word (matrix p3.mat's lane width)
        bres4 = Signal(bmax)         # updated bias
        cv4 = Signal(wmax)           # weight to copy
        m.d.sync += cv4.eq(cv3)
        draws = [p3["draws"][t * r:(t + 1) * r] for t in range(L)] if self.stochastic else [None] * L
        with m.Switch(p3["mat"]):
            for l in range(k):
                with m.Case(l):
                    W, D, Db = wfmt[l].width, cfg.update_shift(l), cfg.bias_update_shift(l)
                    mult = lrn.rate_mult[l]
                    new = []
                    for t in range(L):
                        R = _offset(draws[t], D, r, lrn.rounding)
                        if self.fault == "learn_round":
                            R = Const(0, 1)
                        new.append(_update(w3[t * W:(t + 1) * W].as_signed(), H3[t], self.neg, mult, D, R, wfmt[l]))
                    Rb = _offset(draws[0], Db, r, lrn.rounding)
                    m.d.sync += [res4.eq(Cat(new)),
                                 bres4.eq(_update(b3[:bfmt[l].width].as_signed(), Hb3, self.neg, mult, Db, Rb,
                                                  bfmt[l]))]

        # -- stage 4: writes -------------------------------------------------------------------
        p4 = P[4]
        for l in range(k):
            lo, hi = cores[l], cores[l + 1]
            W = wfmt[l].width
            mine = p4["mat"] == l
            m.d.comb += [
                hi.l_wb_waddr.eq(p4["waddr"]), hi.l_wb_wdata.eq(res4[:L * W]),
                hi.l_wb_wen.eq(Mux(p4["vw"] & mine, p4["mask"], 0)),
                hi.l_b_waddr.eq(p4["waddr"]), hi.l_b_wdata.eq(bres4[:bfmt[l].width]),
                hi.l_b_wen.eq(p4["vb"] & mine),
            ]
            if l >= 1:
                m.d.comb += [
                    lo.l_wa_waddr.eq(p4["waddr"]), lo.l_wa_wdata.eq(Cat(cv4[:W] for _ in range(L))),
                    lo.l_wa_wen.eq(Mux(p4["vc"] & mine, Cat(p4["wlane"] == t for t in range(L)), 0)),
                ]
        return m
