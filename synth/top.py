"""Board-level tops: the network behind a UART host link, with status LEDs.

:class:`SerialTop` is the whole design with a serial line and LED outputs as plain signals
(simulated as is by the tests); :class:`BoardTop` puts it on an amaranth-boards platform:
pins, and on ECP5 an ``EHXPLLL`` that makes the core clock from the board oscillator.

LEDs (``leds`` bits): 0 heartbeat (about 1 Hz: the clock runs), 1 busy (a frame is being
received or answered), 2 error (held about 0.25 s after an error response), 3 serial activity
(held about 50 ms after a byte).
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockDomain, ClockSignal, Elaboratable, Instance, Module, ResetSignal, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from golden_model.config import EqSpikeConfig
from rtl.network import Network

from .hostlink import HostLink, link_byte_cycles
from .uart import UARTRx, UARTTx, baud_period

__all__ = ["SerialTop", "BoardTop", "ecp5_pll_params", "N_LEDS"]

N_LEDS = 4


def _stretch(m, pulse, cycles: int, name: str):
    """A signal high for ``cycles`` cycles after each ``pulse``."""
    ctr = Signal(range(cycles + 1), name=f"{name}_ctr")
    out = Signal(name=name)
    with m.If(pulse):
        m.d.sync += ctr.eq(cycles)
    with m.Elif(ctr != 0):
        m.d.sync += ctr.eq(ctr - 1)
    m.d.comb += out.eq(ctr != 0)
    return out


class SerialTop(wiring.Component):
    """Network + host link + UART, for a core clock of ``clk_hz``.

    Parameters
    ----------
    cfg : EqSpikeConfig
    clk_hz : int
        Core clock in whole Hz (sets the bit period and the LED timings).
    baud : int
    bit_period : int, Fraction or None
        Clock cycles per bit; default ``baud_period(clk_hz, baud)``, exact (simulations pass a
        small one).
    timeout : int or None
        Host-link mid-frame timeout in cycles; default 50 ms (USB-serial adapters leave gaps
        of a few milliseconds inside a frame).
    counters : bool
        Build the network's performance counters (without them STATUS reads other than TICK
        answer 0).

    Members
    -------
    rx : In(1)
    tx : Out(1)
    leds : Out(N_LEDS)
    """

    def __init__(self, cfg: EqSpikeConfig, clk_hz: int, baud: int = 115200, bit_period=None,
                 timeout: int | None = None, counters: bool = True, dsp_width: int | None = None):
        if not isinstance(cfg, EqSpikeConfig):
            raise TypeError(f"cfg must be an EqSpikeConfig, not {cfg!r}")
        self.cfg, self.clk_hz, self.baud = cfg, int(clk_hz), int(baud)
        self.bit_period = bit_period if bit_period is not None else baud_period(clk_hz, baud)
        self.timeout = timeout if timeout is not None else max(1, int(clk_hz * 0.05))
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "leds": Out(N_LEDS)})
        if 10 * self.bit_period < link_byte_cycles(cfg):
            raise ValueError(f"baud {self.baud} is too fast for the host link at {self.clk_hz / 1e6:g} MHz with "
                             f"{min(f.width for f in cfg.weights + cfg.biases + (cfg.s,))}-bit values "
                             f"(a byte every {float(10 * self.bit_period):.0f} cycles, the link needs "
                             f"{link_byte_cycles(cfg)} to write its values)")
        self.network = Network(cfg, counters=counters, dsp_width=dsp_width)
        self.link = HostLink(cfg, self.clk_hz, self.baud, self.timeout)

    def elaborate(self, platform):
        m = Module()
        m.submodules.network = net = self.network
        m.submodules.link = link = self.link
        m.submodules.uart_rx = urx = UARTRx(self.bit_period)
        m.submodules.uart_tx = utx = UARTTx(self.bit_period)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        wiring.connect(m, urx.data, link.rx)
        wiring.connect(m, link.tx, utx.data)
        wiring.connect(m, link.cmd, net.cmd)
        wiring.connect(m, net.rsp, link.rsp)

        half = max(1, self.clk_hz // 2)
        beat_ctr = Signal(range(half + 1))
        beat = Signal()
        with m.If(beat_ctr == half - 1):
            m.d.sync += [beat_ctr.eq(0), beat.eq(~beat)]
        with m.Else():
            m.d.sync += beat_ctr.eq(beat_ctr + 1)
        err = _stretch(m, link.error, max(1, self.clk_hz // 4), "err_led")
        act = _stretch(m, urx.data.valid | ~utx.data.ready, max(1, self.clk_hz // 20), "act_led")
        m.d.comb += self.leds.eq(Cat(beat, link.busy | net.running, err, act))
        return m


def ecp5_pll_params(f_in: float, f_out: float, vco_min: float = 420e6, vco_max: float = 780e6) -> dict:
    """``EHXPLLL`` dividers for ``f_out`` from ``f_in`` (feedback from CLKOP).

    ``f_out = f_in * CLKFB_DIV / CLKI_DIV`` and ``VCO = f_out * CLKOP_DIV``; the VCO is kept
    inside 400-800 MHz with margin (``vco_min``/``vco_max``) and the phase detector input
    (``f_in / CLKI_DIV``) at or above 3.125 MHz. The setting with the smallest error wins, then the VCO nearest 600 MHz;
    raises ValueError if none is within 0.5 %.
    """
    best = None
    for clki in range(1, 129):
        pfd = f_in / clki
        if pfd < 3.125e6:
            break
        for fb in range(1, 81):
            fout = pfd * fb
            for op in range(1, 129):
                vco = fout * op
                if vco > vco_max:
                    break
                if vco < vco_min:
                    continue
                err = (abs(fout - f_out), abs(vco - 600e6))   # exact first, then a mid-range VCO
                if best is None or err < best[0]:
                    best = (err, {"CLKI_DIV": clki, "CLKFB_DIV": fb, "CLKOP_DIV": op,
                                  "f_out": fout, "vco": vco})
    if best is None or best[0][0] > 0.005 * f_out:
        raise ValueError(f"no ECP5 PLL setting makes {f_out / 1e6:g} MHz from {f_in / 1e6:g} MHz")
    return best[1]


class _ECP5PLL(Elaboratable):
    def __init__(self, clk_in, f_in: float, f_out: float):
        self.clk_in, self.params = clk_in, ecp5_pll_params(f_in, f_out)
        self.clk_out = Signal()
        self.locked = Signal()

    def elaborate(self, platform):
        m = Module()
        p = self.params
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=str(round(p["f_out"] * p["CLKI_DIV"] / p["CLKFB_DIV"] / 1e6, 6)),
            a_FREQUENCY_PIN_CLKOP=str(round(p["f_out"] / 1e6, 6)),
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=p["CLKI_DIV"], p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=p["CLKOP_DIV"],
            p_CLKOP_CPHASE=p["CLKOP_DIV"] - 1, p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
            p_CLKFB_DIV=p["CLKFB_DIV"],
            i_RST=0, i_STDBY=0, i_CLKI=self.clk_in, o_CLKOP=self.clk_out, i_CLKFB=self.clk_out,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=self.locked,
        )
        return m


class BoardTop(Elaboratable):
    """:class:`SerialTop` on a platform's UART and LEDs.

    Parameters
    ----------
    cfg : EqSpikeConfig
    clk_hz : float
        Core clock. On ECP5, when it differs from the board oscillator, an ``EHXPLLL`` makes it
        (the design is held in reset until the PLL locks); on iCE40 it must equal the oscillator.
    baud : int
        UART rate; its bit period is exact at the core clock (:func:`synth.uart.baud_period`),
        e.g. 3 Mbaud (the ULX3S FT231X's fastest) is 50/3 cycles at 50 MHz.
    led_map : sequence of int
        Board LED index for each ``SerialTop.leds`` bit (``None`` skips a bit).
    counters, dsp_width : bool, int or None
        See :class:`SerialTop` and :class:`rtl.network.Network` (``dsp_width``: products split
        for DSP blocks of that operand width, e.g. the iCE40UP's 16-bit MAC16).
    """

    def __init__(self, cfg: EqSpikeConfig, clk_hz: float, baud: int = 115200, led_map=(0, 1, 2, 3),
                 counters: bool = True, dsp_width: int | None = None):
        self.cfg, self.clk_hz, self.baud, self.led_map = cfg, clk_hz, baud, tuple(led_map)
        self.counters, self.dsp_width = counters, dsp_width
        self.pll_params = None

    def elaborate(self, platform):
        m = Module()
        f_osc = platform.default_clk_frequency
        if abs(self.clk_hz - f_osc) > 1:
            if platform.family != "ecp5":
                raise ValueError(f"a {self.clk_hz / 1e6:g} MHz core clock needs a PLL, which this flow "
                                 f"only builds on ECP5 (the board clock is {f_osc / 1e6:g} MHz)")
            osc = platform.request(platform.default_clk, dir="-")
            m.submodules.osc_buf = osc_buf = io.Buffer("i", osc)
            m.submodules.pll = pll = _ECP5PLL(osc_buf.i, f_osc, self.clk_hz)
            self.pll_params = pll.params
            m.domains.sync = ClockDomain("sync")
            m.d.comb += [ClockSignal("sync").eq(pll.clk_out), ResetSignal("sync").eq(~pll.locked)]
            # nextpnr derives the PLL output's constraint from the oscillator's
            clk_hz = pll.params["f_out"]
        else:
            clk_hz = f_osc
        m.submodules.core = core = SerialTop(self.cfg, int(round(clk_hz)), self.baud, counters=self.counters,
                                                dsp_width=self.dsp_width)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buf = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.tx_buf = tx_buf = io.Buffer("o", uart.tx)
        m.d.comb += [core.rx.eq(rx_buf.i), tx_buf.o.eq(core.tx)]
        for bit, idx in enumerate(self.led_map):
            if idx is None:
                continue
            led_buf = m.submodules[f"led{bit}_buf"] = io.Buffer("o", platform.request("led", idx, dir="-"))
            m.d.comb += led_buf.o.eq(core.leds[bit])
        return m
