"""The neuron datapath: the integer update formulas of :mod:`golden_model.fixed_model` as
combinational Amaranth components (the layer core registers around them).

:class:`Decoder` and :class:`StateStep` (non-input layer ``l``, tick ``t``; every product
exact, one rounding each; :class:`StateUpdate` chains the two)::

    u     = align_v(acc)                                        acc: cfg.acc_format(l)
    v'    = narrow_v( v + round_v( LAM[t] * (u - v) >> lam_frac ) )
    x'    = narrow_x( align_x( v' + b [+ sign * BETA2 * (y - s)] ) )   exact sum at the finest frac
    s'    = clip_unit( s + round_s( EPS[t] * (x' - s) >> (eps_frac + G - s.frac) ) )

:class:`Encoder` (every layer, the clamped input layer too)::

    a'    = narrow_a( align_a( (rho_last << inv_lam_frac) + INV_LAM[t] * (s - rho_last) ) )
    rho'  = s
    phi'' = narrow_phi( phi + align_phi(a') );  q = phi'' > 1/2 (strict);  phi' = phi'' - (q << phi.frac)

Widths: acc ``cfg.acc_format(l)``, v/x/a/phi/bias their ``RegFormat``, s/rho_last/y
``cfg.s`` (unsigned, ``s.frac + 1`` bits), EPS/LAM/INV_LAM unsigned ``cfg.rom_width(name)``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden_model.config import EqSpikeConfig

from .arith import align, clip_unit, narrow, overflows, reg_shape, round_shift

__all__ = ["Decoder", "StateStep", "StateUpdate", "Encoder", "NUDGE_SHAPE"]

#: Shape of the nudge sign: 0 free phase, +1 / -1 nudged with the sign of beta.
NUDGE_SHAPE = signed(2)


def _check(cfg, l=None):
    if not isinstance(cfg, EqSpikeConfig):
        raise TypeError(f"cfg must be an EqSpikeConfig, not {cfg!r}")
    if l is not None and not 1 <= l < cfg.n_layers:
        raise ValueError(f"l must be in 1..{cfg.n_layers - 1}, not {l!r}")


class Decoder(wiring.Component):
    """Decoder and neuron input of one neuron of non-input layer ``l`` (combinational).

    ``v' = narrow_v(v + round_v(LAM * (align_v(acc) - v) >> lam_frac))``;
    ``x' = narrow_x(align_x(v' + b [+ sign * BETA2 * (y - s)]))``.

    Members
    -------
    acc, v, s, b, lam : In
        Accumulated input, previous v and s, bias, lambda ROM word.
    y, nudge : In (output layer only)
        Target code and nudge sign (0 free, +1/-1 nudged).
    v_next, x_next : Out
    ovf_v, ovf_x : Out
        1 when that register saturated or wrapped (the model's ``overflows`` events).
    """

    def __init__(self, cfg: EqSpikeConfig, l: int, fault=None):
        _check(cfg, l)
        self.cfg, self.l, self.fault = cfg, l, fault
        self.is_output = l == cfg.n_layers - 1
        members = {
            "acc": In(reg_shape(cfg.acc_format(l))),
            "v": In(reg_shape(cfg.v)),
            "s": In(reg_shape(cfg.s)),
            "b": In(reg_shape(cfg.biases[l - 1])),
            "lam": In(unsigned(cfg.rom_width("lam"))),
            "v_next": Out(reg_shape(cfg.v)),
            "x_next": Out(reg_shape(cfg.x)),
            "ovf_v": Out(1),
            "ovf_x": Out(1),
        }
        if self.is_output:
            members["y"] = In(reg_shape(cfg.s))
            members["nudge"] = In(NUDGE_SHAPE)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg, fault = self.cfg, self.fault
        vf, xf, sf, bf = cfg.v, cfg.x, cfg.s, cfg.biases[self.l - 1]
        acc_fmt = cfg.acc_format(self.l)

        # decoder: v + lambda (u - v)
        u = align(self.acc, acc_fmt.frac, vf.frac, vf.rounding, fault)
        v_wide = self.v + round_shift(self.lam * (u - self.v), cfg.tables.lam_frac, vf.rounding, fault)
        m.d.comb += [self.v_next.eq(narrow(v_wide, vf, fault)), self.ovf_v.eq(overflows(v_wide, vf))]

        # neuron input: v + b (+ nudge), summed exactly at the finest fraction, rounded once
        F = max(vf.frac, bf.frac, xf.frac)
        total = (self.v_next << (F - vf.frac)) + (self.b << (F - bf.frac))
        if self.is_output:
            nf = cfg.beta_frac + sf.frac
            term = cfg.beta2_code * (self.y - self.s)
            nudge = Mux(self.nudge == 0, 0, Mux(self.nudge > 0, term, -term))
            if nf <= F:
                total = total + (nudge << (F - nf))
            else:   # same value as the model's F (an exact left shift before one rounding)
                total = (total << (nf - F)) + nudge
                F = nf
        x_wide = align(total, F, xf.frac, xf.rounding, fault)
        m.d.comb += [self.x_next.eq(narrow(x_wide, xf, fault)), self.ovf_x.eq(overflows(x_wide, xf))]
        return m


class StateStep(wiring.Component):
    """State step of one neuron (combinational): ``s' = clip_unit(s + round_s(EPS * (x - s) >> ...))``.

    Members
    -------
    x, s, eps : In
        This tick's neuron input, the previous state, the eps ROM word.
    s_next : Out
    """

    def __init__(self, cfg: EqSpikeConfig, fault=None):
        _check(cfg)
        self.cfg, self.fault = cfg, fault
        super().__init__({
            "x": In(reg_shape(cfg.x)),
            "s": In(reg_shape(cfg.s)),
            "eps": In(unsigned(cfg.rom_width("eps"))),
            "s_next": Out(reg_shape(cfg.s)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, xf, sf = self.cfg, self.cfg.x, self.cfg.s
        # state: s + eps (x - s), then the algorithm's clip to [0, 1]
        G = max(xf.frac, sf.frac)
        d = (self.x << (G - xf.frac)) - (self.s << (G - sf.frac))
        s_wide = self.s + round_shift(self.eps * d, cfg.tables.eps_frac + G - sf.frac, sf.rounding, self.fault)
        m.d.comb += self.s_next.eq(clip_unit(s_wide, sf.frac))
        return m


class StateUpdate(wiring.Component):
    """:class:`Decoder` then :class:`StateStep` in one combinational block (for unit tests and
    for cores that do not pipeline between them).

    Members
    -------
    acc, v, s, b, eps, lam (and y, nudge on the output layer) : In
    v_next, x_next, s_next, ovf_v, ovf_x : Out
    """

    def __init__(self, cfg: EqSpikeConfig, l: int, fault=None):
        _check(cfg, l)
        self.cfg, self.l, self.fault = cfg, l, fault
        self.is_output = l == cfg.n_layers - 1
        members = {
            "acc": In(reg_shape(cfg.acc_format(l))),
            "v": In(reg_shape(cfg.v)),
            "s": In(reg_shape(cfg.s)),
            "b": In(reg_shape(cfg.biases[l - 1])),
            "eps": In(unsigned(cfg.rom_width("eps"))),
            "lam": In(unsigned(cfg.rom_width("lam"))),
            "v_next": Out(reg_shape(cfg.v)),
            "x_next": Out(reg_shape(cfg.x)),
            "s_next": Out(reg_shape(cfg.s)),
            "ovf_v": Out(1),
            "ovf_x": Out(1),
        }
        if self.is_output:
            members["y"] = In(reg_shape(cfg.s))
            members["nudge"] = In(NUDGE_SHAPE)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        dec = m.submodules.decoder = Decoder(self.cfg, self.l, self.fault)
        step = m.submodules.step = StateStep(self.cfg, self.fault)
        m.d.comb += [
            dec.acc.eq(self.acc), dec.v.eq(self.v), dec.s.eq(self.s), dec.b.eq(self.b), dec.lam.eq(self.lam),
            step.x.eq(dec.x_next), step.s.eq(self.s), step.eps.eq(self.eps),
            self.v_next.eq(dec.v_next), self.x_next.eq(dec.x_next), self.s_next.eq(step.s_next),
            self.ovf_v.eq(dec.ovf_v), self.ovf_x.eq(dec.ovf_x),
        ]
        if self.is_output:
            m.d.comb += [dec.y.eq(self.y), dec.nudge.eq(self.nudge)]
        return m


class Encoder(wiring.Component):
    """Predictive encoder and sigma-delta modulator of one neuron (combinational).

    Members
    -------
    s, rho_last, phi : In
        This tick's state and the encoder's registers from the previous tick.
    inv_lam : In
        1/lambda ROM word for this tick.
    a_next, rho_last_next, phi_next, q : Out
        New register values and the spike.
    ovf_a, ovf_phi : Out
        1 when that register saturated or wrapped.
    """

    def __init__(self, cfg: EqSpikeConfig, fault=None):
        _check(cfg)
        self.cfg, self.fault = cfg, fault
        super().__init__({
            "s": In(reg_shape(cfg.s)),
            "rho_last": In(reg_shape(cfg.s)),
            "phi": In(reg_shape(cfg.phi)),
            "inv_lam": In(unsigned(cfg.rom_width("inv_lam"))),
            "a_next": Out(reg_shape(cfg.a)),
            "rho_last_next": Out(reg_shape(cfg.s)),
            "phi_next": Out(reg_shape(cfg.phi)),
            "q": Out(1),
            "ovf_a": Out(1),
            "ovf_phi": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, fault = self.cfg, self.fault
        sf, af, pf, ilf = cfg.s, cfg.a, cfg.phi, cfg.tables.inv_lam_frac
        # a = rho_last + (rho - rho_last) / lambda, with 1/lambda from the ROM
        num = (self.rho_last << ilf) + self.inv_lam * (self.s - self.rho_last)
        a_wide = align(num, ilf + sf.frac, af.frac, af.rounding, fault)
        m.d.comb += [self.a_next.eq(narrow(a_wide, af, fault)), self.ovf_a.eq(overflows(a_wide, af)),
                     self.rho_last_next.eq(self.s)]
        # sigma-delta: strict '>' against 1/2, subtract the spike
        phi_wide = self.phi + align(self.a_next, af.frac, pf.frac, pf.rounding, fault)
        phi_sat = narrow(phi_wide, pf, fault)
        q = phi_sat > (1 << (pf.frac - 1))
        m.d.comb += [
            self.q.eq(q),
            self.phi_next.eq(phi_sat - (q << pf.frac)),
            self.ovf_phi.eq(overflows(phi_wide, pf)),
        ]
        return m
