"""Scoreboard: steps the golden model in lock-step with the RTL and compares every tick.

Per tick ``t`` of a sample, :meth:`Scoreboard.check_tick` advances
:class:`golden_model.fixed_model.FixedModel` by one tick and compares bit-exactly

* every spike: the events the :class:`~sim.monitor.SpikeMonitor` saw on the bus during tick
  ``t`` (which neurons, in address order, once each) against the model's ``q`` of every layer;
* every per-neuron register the spec names (``acc``, ``v``, ``x`` of non-input layers; ``s``,
  ``a``, ``rho_last``, ``phi``, ``q`` of every layer, the clamped input layer too), read from
  the RTL's state memories, against the model's registers (``FixedState.registers``).

The first difference raises :class:`Mismatch` (an AssertionError) naming tick, layer, neuron,
register, expected and got. It also advances the float binary reference
(:class:`~golden_model.float_model.FloatModel` with ``Dynamics.from_config(cfg)``, the same
schedules, encoder, steps and beta) and records ``mean_n |s_rtl - s_float|`` per non-input layer
and tick; when ``float_bound`` is set, a layer mean above it fails the check (a stated bound on
the state difference, see docs/cosim.md for the measured values it is set from).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from golden_model.config import EqSpikeConfig
from golden_model.fixed_model import FixedModel, FixedState
from golden_model.float_model import Dynamics, FloatModel, Params


__all__ = ["Mismatch", "FloatBoundExceeded", "Scoreboard", "float_params_of", "DATAFLOW_ORDER"]

#: Order in which one tick computes the registers (the first of them to differ is the root cause).
DATAFLOW_ORDER = ("acc", "v", "x", "s", "a", "rho_last", "phi", "q")


class Mismatch(AssertionError):
    """First RTL/golden difference: tick, layer, neuron, register, expected, got."""

    def __init__(self, tick: int, layer: int, neuron: int, register: str, expected: int, got: int,
                 differing: int = 1, sample: int | None = None, waves: str | None = None):
        self.tick, self.layer, self.neuron, self.register = tick, layer, neuron, register
        self.expected, self.got, self.differing = int(expected), int(got), differing
        self.sample, self.waves = sample, waves
        super().__init__(self.describe())

    def describe(self) -> str:
        where = f"sample {self.sample} " if self.sample is not None else ""
        waves = f"; waveform: {self.waves}" if self.waves else ""
        return (f"first mismatch: {where}tick {self.tick} layer {self.layer} neuron {self.neuron} "
                f"register {self.register}: expected {self.expected}, got {self.got} "
                f"({self.differing} neuron(s) of the layer differ in {self.register}){waves}")

    def to_json(self) -> dict:
        return {"sample": self.sample, "tick": self.tick, "layer": self.layer, "neuron": self.neuron,
                "register": self.register, "expected": self.expected, "got": self.got,
                "differing": self.differing, "waves": self.waves, "message": self.describe()}


class FloatBoundExceeded(AssertionError):
    """The RTL state left the stated bound around the float binary reference."""


def float_params_of(cfg: EqSpikeConfig, model: FixedModel) -> Params:
    """The float weights/biases the fixed-point codes stand for (``code * 2**-frac``)."""
    w = [c * 2.0 ** -f.frac for c, f in zip(model.weights, cfg.weights)]
    b = [c * 2.0 ** -f.frac for c, f in zip(model.biases, cfg.biases)]
    return Params(w, b)


@dataclass
class SampleStats:
    ticks: int = 0
    spikes: int = 0
    float_diff_max: list = None       # per non-input layer: max over ticks of mean |ds|
    float_diff_final: list = None     # per non-input layer: at the last checked tick


class Scoreboard:
    """Lock-step golden model (and float reference) for one network.

    Parameters
    ----------
    cfg : EqSpikeConfig
    model : FixedModel
        The bit-accurate specification, with the weights the RTL was loaded with.
    float_params : Params, optional
        Float weights for the float binary reference (default: the fixed codes as reals, so
        only the arithmetic differs); ``None`` and ``track_float=False`` skip it.
    float_bound : float or None
        Assert ``mean_n |s_rtl - s_float| <= float_bound`` per layer and tick.
    """

    def __init__(self, cfg: EqSpikeConfig, model: FixedModel, float_params: Params | None = None,
                 float_bound: float | None = None, track_float: bool = True):
        self.cfg, self.model = cfg, model
        self.float_bound = float_bound
        self.float_model = None
        if track_float:
            self.float_model = FloatModel(float_params or float_params_of(cfg, model), Dynamics.from_config(cfg))
        self.st: FixedState | None = None
        self.fst = None
        self.sample = None
        self.stats = SampleStats()
        self.checked_registers = 0
        self.checked_spikes = 0

    def start(self, x_codes, y_codes=None, sample: int | None = None) -> None:
        cfg = self.cfg
        self.sample = sample
        y2 = None if y_codes is None else np.asarray(y_codes)[None]
        self.st = self.model.reset(np.asarray(x_codes)[None], y2)
        if self.float_model is not None:
            lsb = cfg.s.lsb
            self.fst = self.float_model.reset(np.asarray(x_codes)[None] * lsb, None if y2 is None else y2 * lsb)
        k = cfg.n_layers - 1
        self.stats = SampleStats(0, 0, [0.0] * k, [0.0] * k)

    def step(self, nudge_sign: int = 0) -> list:
        """Advance the golden model (and float reference) one tick; returns the model's spikes."""
        q = self.model.tick(self.st, nudge_sign)
        if self.fst is not None:
            self.float_model.tick(self.fst, nudge_sign * self.cfg.beta)
        self.stats.ticks += 1
        self.stats.spikes += int(sum(int(a.sum()) for a in q))
        return [a[0] for a in q]

    def compare_spikes(self, rtl_spikes: list, source: str = "bus") -> None:
        """``rtl_spikes``: one (n_l,) 0/1 array per layer, for the tick just stepped."""
        for l, got in enumerate(rtl_spikes):
            want = self.st.q[l][0]
            bad = np.flatnonzero(np.asarray(got) != want)
            if bad.size:
                n = int(bad[0])
                raise Mismatch(self.st.t, l, n, f"spike ({source})", want[n], got[n], bad.size, self.sample)
            self.checked_spikes += len(want)

    def compare_registers(self, rtl_regs: list, names=DATAFLOW_ORDER) -> None:
        """``rtl_regs``: one dict per layer of register name -> (n_l,) codes (``StateReader``).

        Registers are compared in dataflow order (``acc, v, x, s, a, rho_last, phi, q``), each
        over every layer, so the first mismatch reported is the earliest register that went
        wrong in the tick (call this before :meth:`compare_spikes`).
        """
        for name in names:
            for l, regs in enumerate(rtl_regs):
                model = self.st.registers(l)
                if name not in model:
                    continue
                want, got = model[name][0], regs[name]
                bad = np.flatnonzero(want != got)
                if bad.size:
                    n = int(bad[0])
                    raise Mismatch(self.st.t, l, n, name, want[n], got[n], bad.size, self.sample)
                self.checked_registers += len(want)

    def compare_float(self, rtl_s: list | None = None) -> list:
        """Record (and with ``float_bound`` assert) mean |s_rtl - s_float| per non-input layer
        (``rtl_s``: the RTL's ``s`` codes per layer; default the golden model's)."""
        if self.fst is None:
            return []
        lsb = self.cfg.s.lsb
        diffs = []
        for l in range(1, self.cfg.n_layers):
            s = (rtl_s[l] if rtl_s is not None else self.st.s[l][0]) * lsb
            d = float(np.abs(s - self.fst.s[l][0]).mean())
            diffs.append(d)
            self.stats.float_diff_max[l - 1] = max(self.stats.float_diff_max[l - 1], d)
            if self.float_bound is not None and d > self.float_bound:
                raise FloatBoundExceeded(
                    f"sample {self.sample} tick {self.st.t} layer {l}: mean |s_rtl - s_float| = {d:.4f} "
                    f"exceeds the bound {self.float_bound}")
        self.stats.float_diff_final = diffs
        return diffs

    def check_tick(self, nudge_sign: int, rtl_spikes: list, rtl_regs: list | None) -> None:
        """Step and compare one tick: registers (when read this tick), bus spikes, float state."""
        self.step(nudge_sign)
        if rtl_regs is not None:
            self.compare_registers(rtl_regs)
        self.compare_spikes(rtl_spikes)
        if rtl_regs is not None:
            self.compare_float([r["s"] for r in rtl_regs])

    def predictions(self) -> tuple:
        """argmax of the output state: (golden, float); call after the free phase."""
        g = int(np.argmax(self.st.s[-1][0]))
        f = int(np.argmax(self.fst.s[-1][0])) if self.fst is not None else None
        return g, f
