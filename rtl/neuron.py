"""The neuron datapath: the stages of :mod:`golden_model.datapath` as combinational Amaranth
expressions and components (the layer core registers around them).

Each stage function here carries the same name and, through :func:`golden_model.datapath.stage`,
the same formula as its model twin (written once, in ``golden_model.datapath.FORMULAS``;
``tests/test_datapath.py`` checks the pairing): ``decode_v``, ``neuron_input`` and
``state_step`` of non-input layer ``l`` at tick ``t`` (:class:`Decoder`, :class:`StateStep`,
:class:`StateUpdate`), then ``predictive_encode`` and ``sigma_delta`` of every layer, the
clamped input layer too (:class:`Encoder`). Every product is exact, with one rounding each.

Products go through :func:`rtl.arith.mul` / :func:`rtl.arith.const_mul`: plain ``*`` unless a
``dsp`` operand width is passed down (iCE40 builds, ``Network(cfg, dsp_width=16)``: one MAC16
per product, the rest in logic; same integers).

Widths: acc ``cfg.acc_format(l)``, v/x/a/phi/bias their ``RegFormat``, s/rho_last/y
``cfg.s`` (unsigned, ``s.frac + 1`` bits), EPS/LAM/INV_LAM unsigned ``cfg.rom_width(name)``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden_model.config import EqSpikeConfig
from golden_model.datapath import stage

from .arith import add_round_shift, align, clip_unit, const_mul, mul, narrow, overflows, reg_shape

__all__ = ["decode_v", "neuron_input", "state_step", "predictive_encode", "sigma_delta",
           "decode_operand", "decode_finish", "nudge_product", "nudge_signed", "input_sum",
           "state_operand", "state_finish", "encode_finish",
           "Decoder", "StateStep", "StateUpdate", "Encoder", "NUDGE_SHAPE"]

#: Shape of the nudge sign: 0 free phase, +1 / -1 nudged with the sign of beta.
NUDGE_SHAPE = signed(2)


def _check(cfg, l=None):
    if not isinstance(cfg, EqSpikeConfig):
        raise TypeError(f"cfg must be an EqSpikeConfig, not {cfg!r}")
    if l is not None and not 1 <= l < cfg.n_layers:
        raise ValueError(f"l must be in 1..{cfg.n_layers - 1}, not {l!r}")


# Each multiply chain in three parts, so that the update pipeline can register the operand and
# the product (``cfg.mul_stages``, :mod:`rtl.pipeline`): ``*_operand`` (a subtraction),
# ``*_product`` (the multiply), ``*_finish`` (rounding, add, saturation). The stage functions
# below are the three composed, the same integers.

def decode_operand(cfg: EqSpikeConfig, l: int, acc, v, fault=None):
    """The decoder's multiplier operand ``align(acc -> v.frac) - v``."""
    vf = cfg.v
    return align(acc, cfg.acc_format(l).frac, vf.frac, vf.rounding, fault) - v


def decode_finish(cfg: EqSpikeConfig, v, prod, fault=None):
    """``v + round(prod / 2**lam_frac)`` narrowed to ``v``; returns (v', overflowed)."""
    vf = cfg.v
    v_wide = add_round_shift(v, prod, cfg.tables.lam_frac, vf.rounding, fault)
    return narrow(v_wide, vf, fault), overflows(v_wide, vf)


@stage("decode_v")
def decode_v(cfg: EqSpikeConfig, l: int, acc, v, lam, fault=None, dsp=None):
    """Decoder of layer ``l``; returns (v', overflowed)."""
    return decode_finish(cfg, v, mul(lam, decode_operand(cfg, l, acc, v, fault), dsp), fault)


def nudge_product(cfg: EqSpikeConfig, y, s, dsp=None):
    """The output layer's nudge magnitude ``beta2_code * (y - s)`` (its operand is ``y - s``)."""
    return const_mul(y - s, cfg.beta2_code, dsp)


def nudge_signed(term, nudge):
    """The nudge term with the phase's sign: 0 free, ``+term`` / ``-term`` nudged."""
    return Mux(nudge == 0, 0, Mux(nudge > 0, term, -term))


def input_sum(cfg: EqSpikeConfig, l: int, v, b, nudged=None, fault=None):
    """``v + b (+ nudged)`` aligned to ``x.frac`` and narrowed; returns (x', overflowed)."""
    vf, xf, sf, bf = cfg.v, cfg.x, cfg.s, cfg.biases[l - 1]
    F = max(vf.frac, bf.frac, xf.frac)
    total = (v << (F - vf.frac)) + (b << (F - bf.frac))
    if nudged is not None:
        nf = cfg.beta_frac + sf.frac
        if nf <= F:
            total = total + (nudged << (F - nf))
        else:   # same value as the model's (an exact left shift before the one rounding)
            total = (total << (nf - F)) + nudged
            F = nf
    x_wide = align(total, F, xf.frac, xf.rounding, fault)
    return narrow(x_wide, xf, fault), overflows(x_wide, xf)


@stage("neuron_input")
def neuron_input(cfg: EqSpikeConfig, l: int, v, b, y=None, s=None, nudge=None, fault=None, dsp=None):
    """Neuron input of layer ``l`` (the nudge only on the output layer); returns (x', overflowed)."""
    nudged = nudge_signed(nudge_product(cfg, y, s, dsp), nudge) if l == cfg.n_layers - 1 else None
    return input_sum(cfg, l, v, b, nudged, fault)


def state_operand(cfg: EqSpikeConfig, x, s):
    """The state step's multiplier operand ``x - s`` (at ``max(x.frac, s.frac)``)."""
    G = max(cfg.x.frac, cfg.s.frac)
    return (x << (G - cfg.x.frac)) - (s << (G - cfg.s.frac))


def state_finish(cfg: EqSpikeConfig, s, prod, fault=None):
    """``clip_unit(s + round(prod / 2**(eps_frac + G - s.frac)))``."""
    sf, G = cfg.s, max(cfg.x.frac, cfg.s.frac)
    s_wide = add_round_shift(s, prod, cfg.tables.eps_frac + G - sf.frac, sf.rounding, fault)
    return clip_unit(s_wide, sf.frac)


@stage("state_step")
def state_step(cfg: EqSpikeConfig, x, s, eps, fault=None, dsp=None):
    """State step; returns s' (the algorithm's clamp, never an overflow)."""
    return state_finish(cfg, s, mul(eps, state_operand(cfg, x, s), dsp), fault)


def encode_finish(cfg: EqSpikeConfig, rho_last, prod, fault=None):
    """``(rho_last * 2**inv_lam_frac + prod)`` aligned to ``a.frac`` and narrowed; returns
    (a', overflowed). The operand of ``prod = inv_lam * (s - rho_last)`` is ``s - rho_last``."""
    sf, af, ilf = cfg.s, cfg.a, cfg.tables.inv_lam_frac
    a_wide = align((rho_last << ilf) + prod, ilf + sf.frac, af.frac, af.rounding, fault)
    return narrow(a_wide, af, fault), overflows(a_wide, af)


@stage("predictive_encode")
def predictive_encode(cfg: EqSpikeConfig, s, rho_last, inv_lam, fault=None, dsp=None):
    """Predictive encoder; returns (a', overflowed). (``rho_last`` then becomes ``s``.)"""
    return encode_finish(cfg, rho_last, mul(inv_lam, s - rho_last, dsp), fault)


@stage("sigma_delta")
def sigma_delta(cfg: EqSpikeConfig, a, phi, fault=None):
    """Sigma-delta modulator; returns (phi', q, overflowed)."""
    af, pf = cfg.a, cfg.phi
    phi_wide = phi + align(a, af.frac, pf.frac, pf.rounding, fault)
    phi_sat = narrow(phi_wide, pf, fault)
    q = phi_sat > (1 << (pf.frac - 1))
    return phi_sat - (q << pf.frac), q, overflows(phi_wide, pf)


def _decoder_members(cfg: EqSpikeConfig, l: int) -> dict:
    """Signature members of :class:`Decoder` (``y`` and ``nudge`` on the output layer only)."""
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
    if l == cfg.n_layers - 1:
        members["y"] = In(reg_shape(cfg.s))
        members["nudge"] = In(NUDGE_SHAPE)
    return members


class Decoder(wiring.Component):
    """Decoder and neuron input of one neuron of non-input layer ``l`` (combinational): the
    stages :func:`decode_v` then :func:`neuron_input`.

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

    def __init__(self, cfg: EqSpikeConfig, l: int, fault=None, dsp=None):
        _check(cfg, l)
        self.cfg, self.l, self.fault, self.dsp = cfg, l, fault, dsp
        self.is_output = l == cfg.n_layers - 1
        super().__init__(_decoder_members(cfg, l))

    def elaborate(self, platform):
        m = Module()
        v_next, ovf_v = decode_v(self.cfg, self.l, self.acc, self.v, self.lam, self.fault, self.dsp)
        m.d.comb += [self.v_next.eq(v_next), self.ovf_v.eq(ovf_v)]
        extra = (self.y, self.s, self.nudge) if self.is_output else ()
        x_next, ovf_x = neuron_input(self.cfg, self.l, self.v_next, self.b, *extra, fault=self.fault, dsp=self.dsp)
        m.d.comb += [self.x_next.eq(x_next), self.ovf_x.eq(ovf_x)]
        return m


class StateStep(wiring.Component):
    """State step of one neuron (combinational): the stage :func:`state_step`.

    Members
    -------
    x, s, eps : In
        This tick's neuron input, the previous state, the eps ROM word.
    s_next : Out
    """

    def __init__(self, cfg: EqSpikeConfig, fault=None, dsp=None):
        _check(cfg)
        self.cfg, self.fault, self.dsp = cfg, fault, dsp
        super().__init__({
            "x": In(reg_shape(cfg.x)),
            "s": In(reg_shape(cfg.s)),
            "eps": In(unsigned(cfg.rom_width("eps"))),
            "s_next": Out(reg_shape(cfg.s)),
        })

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.s_next.eq(state_step(self.cfg, self.x, self.s, self.eps, self.fault, self.dsp))
        return m


class StateUpdate(wiring.Component):
    """:class:`Decoder` then :class:`StateStep` in one combinational block (for unit tests and
    for cores that do not pipeline between them).

    Members
    -------
    acc, v, s, b, eps, lam (and y, nudge on the output layer) : In
    v_next, x_next, s_next, ovf_v, ovf_x : Out
    """

    def __init__(self, cfg: EqSpikeConfig, l: int, fault=None, dsp=None):
        _check(cfg, l)
        self.cfg, self.l, self.fault, self.dsp = cfg, l, fault, dsp
        self.is_output = l == cfg.n_layers - 1
        super().__init__({**_decoder_members(cfg, l), "eps": In(unsigned(cfg.rom_width("eps"))),
                          "s_next": Out(reg_shape(cfg.s))})

    def elaborate(self, platform):
        m = Module()
        dec = m.submodules.decoder = Decoder(self.cfg, self.l, self.fault, self.dsp)
        step = m.submodules.step = StateStep(self.cfg, self.fault, self.dsp)
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
    """Predictive encoder and sigma-delta modulator of one neuron (combinational): the stages
    :func:`predictive_encode` then :func:`sigma_delta`.

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

    def __init__(self, cfg: EqSpikeConfig, fault=None, dsp=None):
        _check(cfg)
        self.cfg, self.fault, self.dsp = cfg, fault, dsp
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
        a_next, ovf_a = predictive_encode(self.cfg, self.s, self.rho_last, self.inv_lam, self.fault, self.dsp)
        m.d.comb += [self.a_next.eq(a_next), self.ovf_a.eq(ovf_a), self.rho_last_next.eq(self.s)]
        phi_next, q, ovf_phi = sigma_delta(self.cfg, self.a_next, self.phi, self.fault)
        m.d.comb += [self.phi_next.eq(phi_next), self.q.eq(q), self.ovf_phi.eq(ovf_phi)]
        return m
