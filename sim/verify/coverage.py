"""Functional coverage of the verification campaign: named bins, counted per design and merged.

Most bins come from the golden model's trace, which equals the RTL's once the scoreboard has
compared the tick (a :class:`CoverageModel` records which end a register overflowed at; the
rounding ties are recomputed from the registers before and after the tick); the handshake bins
come from what the testbench observes on the streams. The list (kept in docs/cosim.md):

=========================  =======================================================================
``sat_high:R``/``sat_low:R``   register R (v, x, a, phi) saturated at its top / bottom code (rule ``saturate``)
``wrap_high:R``/``wrap_low:R`` R wrapped past its top / bottom code (rule ``wrap``)
``clip_high:s``/``clip_low:s`` the state clamp of ``s`` to [0, 1] acted at 1 / at 0
``tie:R``                      a half_up rounding into R (v, x, s, a, phi) met an exact tie (dropped
                               bits = 100...0)
``queue_full:below``/``above`` every neuron of a layer feeding a queue spiked in one tick: the queue
                               from below / from above held ``rtl.layer.queue_depth`` spikes (full)
``bp:cmd``                     a command was offered while the top was not ready (response pending)
``bp:rsp``                     a response was held by the host (``rsp.ready`` low)
``bp:bus``                     a spike on the internal bus was offered and not taken (bus stall)
``lanes:1``                    a design with one lane
``lanes:divides_no_layer``     lanes > 1 dividing no layer size
``update_lanes:many``          several neurons updated per cycle (``update_lanes`` > 1)
``update_lanes:per_layer``     cores updating different numbers of neurons per cycle (one ``U_l`` per core)
``lanes:padding_not_stored``   lanes wider than a layer: its core stores fewer lanes
                               (``EqSpikeConfig.stored_lanes`` < ``lanes``; padding reads as 0)
``tick:no_spikes``             a tick in which no neuron of any layer spiked
``tick:all_spike``             a tick in which every neuron of every layer spiked
``nudge:+1``/``nudge:-1``      a nudged phase with beta positive / negative (RUN or TRAIN)
``n_nudged:0``                 a design with no nudged phase
``schedule:last_index``        a sample ran to the schedule tables' last entry (t = n_free + n_nudged)
``schedule:power``             eps or lambda followed a power schedule (not constant)
``train:w_sat_high``/``low``   a TRAIN update saturated a weight at the top / bottom of its learning format
=========================  =======================================================================
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from golden_model.config import EqSpikeConfig
from golden_model.fixed_model import FixedModel
from golden_model.fixedpoint import align, round_shift
from golden_model.onchip import OnChipLearner

__all__ = ["BINS", "CoverageModel", "CoverageLearner", "design_bins", "snapshot", "tick_bins", "merge", "missing",
           "report"]

_REGS = ("v", "x", "a", "phi")
BINS = tuple(
    [f"{kind}:{r}" for kind in ("sat_high", "sat_low", "wrap_high", "wrap_low") for r in _REGS]
    + ["clip_high:s", "clip_low:s"]
    + [f"tie:{r}" for r in ("v", "x", "s", "a", "phi")]
    + ["queue_full:below", "queue_full:above", "bp:cmd", "bp:rsp", "bp:bus", "lanes:1",
       "lanes:divides_no_layer", "lanes:padding_not_stored", "update_lanes:many", "update_lanes:per_layer", "tick:no_spikes", "tick:all_spike", "nudge:+1", "nudge:-1", "n_nudged:0",
       "schedule:last_index", "schedule:power", "train:w_sat_high", "train:w_sat_low"])


class CoverageModel(FixedModel):
    """:class:`FixedModel` that also counts, per register, overflows at each end in ``hits``.

    Built without the input-layer look-ahead, so every narrowing goes through ``_narrow``.
    """

    def __init__(self, cfg: EqSpikeConfig, weights, biases):
        super().__init__(cfg, weights, biases, lookahead=False)
        self.hits = Counter()

    def _narrow(self, value, fmt, name, l, t):
        lo, hi = self._ranges[name]
        rule = "wrap" if fmt.overflow == "wrap" else "sat"
        if value.max() > hi:
            self.hits[f"{rule}_high:{name}"] += 1
        if value.min() < lo:
            self.hits[f"{rule}_low:{name}"] += 1
        return super()._narrow(value, fmt, name, l, t)


class CoverageLearner(OnChipLearner):
    """:class:`OnChipLearner` counting weight saturations per end in ``hits`` (biases apart).

    ``update`` narrows the ``n_mat`` weight matrices first, then the ``n_mat`` bias vectors,
    each through ``_saturate``: the call's position says which it is.
    """

    def __init__(self, cfg: EqSpikeConfig, weights, biases):
        super().__init__(cfg, weights, biases)
        self.hits = Counter()
        self._calls = 0

    def _saturate(self, value, fmt):
        is_weight = self._calls % (2 * (self.cfg.n_layers - 1)) < self.cfg.n_layers - 1
        self._calls += 1
        if is_weight:
            if value.max() > fmt.max_code:
                self.hits["train:w_sat_high"] += 1
            if value.min() < fmt.min_code:
                self.hits["train:w_sat_low"] += 1
        return super()._saturate(value, fmt)


def design_bins(cfg: EqSpikeConfig) -> Counter:
    """Bins a design hits by its shape alone."""
    c = Counter()
    if cfg.lanes == 1:
        c["lanes:1"] += 1
    elif all(n % cfg.lanes for n in cfg.layers):
        c["lanes:divides_no_layer"] += 1
    if any(cfg.stored_lanes(l) < cfg.lanes for l in range(1, cfg.n_layers)):
        c["lanes:padding_not_stored"] += 1
    if cfg.parallel_update:
        c["update_lanes:many"] += 1
    if len({cfg.update_lanes_of(l) for l in range(cfg.n_layers)}) > 1:
        c["update_lanes:per_layer"] += 1
    if cfg.n_nudged == 0:
        c["n_nudged:0"] += 1
    if "power" in (cfg.eps.kind, cfg.lam.kind):
        c["schedule:power"] += 1
    return c


def _tie(value, n: int, rounding: str) -> bool:
    """A round-half-up right shift by ``n`` of ``value`` meets a tie (low bits exactly 2^(n-1))."""
    if n <= 0 or rounding != "half_up":
        return False
    mask = (1 << n) - 1
    return bool(np.any((np.asarray(value) & mask) == (1 << (n - 1))))


def _layer_ties(cfg, model, prev, st, l, t, sign, hits) -> None:
    """Ties of the decoder, neuron input and state step of layer ``l`` (FixedModel.tick's formulas)."""
    vf, xf, sf, bf = cfg.v, cfg.x, cfg.s, cfg.biases[l - 1]
    acc_frac = cfg.acc_format(l).frac
    acc = st.acc[l][0]
    lam, eps = int(cfg.lam_rom[t - 1]), int(cfg.eps_rom[t - 1])
    u = align(acc, acc_frac, vf.frac, vf.rounding)
    if _tie(acc, acc_frac - vf.frac, vf.rounding) or _tie(lam * (u - prev["v"][l][0]), cfg.tables.lam_frac,
                                                           vf.rounding):
        hits["tie:v"] += 1
    F = max(vf.frac, bf.frac, xf.frac)
    total = align(st.v[l][0], vf.frac, F) + align(model.biases[l - 1], bf.frac, F)
    if sign and l == cfg.n_layers - 1:
        nf = cfg.beta_frac + sf.frac
        nudge = (sign * cfg.beta2_code) * (st.y[0] - prev["s"][l][0])
        if nf <= F:
            total = total + align(nudge, nf, F)
        else:
            total, F = align(total, F, nf) + nudge, nf
    if _tie(total, F - xf.frac, xf.rounding):
        hits["tie:x"] += 1
    G = max(xf.frac, sf.frac)
    d = align(st.x[l][0], xf.frac, G) - align(prev["s"][l][0], sf.frac, G)
    if _tie(eps * d, cfg.tables.eps_frac + G - sf.frac, sf.rounding):
        hits["tie:s"] += 1


def _encoder_ties(cfg, prev, st, l, t, hits) -> None:
    sf, af, pf = cfg.s, cfg.a, cfg.phi
    ilf = cfg.tables.inv_lam_frac
    rho_last = prev["rho_last"][l][0]
    num = (rho_last << ilf) + int(cfg.inv_lam_rom[t - 1]) * (st.s[l][0] - rho_last)
    if _tie(num, ilf + sf.frac - af.frac, af.rounding):
        hits["tie:a"] += 1
    if _tie(st.a[l][0], af.frac - pf.frac, pf.rounding):
        hits["tie:phi"] += 1


def snapshot(st) -> dict:
    """The registers a tick reads from the previous tick (arrays are replaced, not modified)."""
    return {"v": list(st.v), "s": list(st.s), "rho_last": list(st.rho_last)}


def tick_bins(cfg: EqSpikeConfig, model: FixedModel, prev: dict, st, sign: int, hits: Counter) -> None:
    """Add the bins of the tick just stepped (``prev``: :func:`snapshot` before it) to ``hits``."""
    from rtl.layer import queue_depth

    t = st.t
    k = cfg.n_layers - 1
    for l in range(1, k + 1):
        _layer_ties(cfg, model, prev, st, l, t, sign, hits)
        s_new = st.s[l][0]
        # the clamp acted when the unclamped sum left [0, 1]: recompute it from the tick's inputs
        one = 1 << cfg.s.frac
        if np.any(s_new == one) or np.any(s_new == 0):
            G = max(cfg.x.frac, cfg.s.frac)
            d = align(st.x[l][0], cfg.x.frac, G) - align(prev["s"][l][0], cfg.s.frac, G)
            raw = prev["s"][l][0] + round_shift(int(cfg.eps_rom[t - 1]) * d, cfg.tables.eps_frac + G - cfg.s.frac,
                                                cfg.s.rounding)
            if np.any(raw > one):
                hits["clip_high:s"] += 1
            if np.any(raw < 0):
                hits["clip_low:s"] += 1
    for l in range(k + 1):
        _encoder_ties(cfg, prev, st, l, t, hits)
    counts = [int(q[0].sum()) for q in st.q]
    if sum(counts) == 0:
        hits["tick:no_spikes"] += 1
    if all(c == n for c, n in zip(counts, cfg.layers)):
        hits["tick:all_spike"] += 1
    for l, (c, n) in enumerate(zip(counts, cfg.layers)):
        if c == n and n >= queue_depth(n):
            if l + 1 <= k:
                hits["queue_full:below"] += 1
            if l - 1 >= 1:
                hits["queue_full:above"] += 1
    if sign:
        hits[f"nudge:{sign:+d}"] += 1
    if t == cfg.n_steps:
        hits["schedule:last_index"] += 1


def merge(total: Counter, part) -> Counter:
    for k, v in dict(part).items():
        total[k] += int(v)
    return total


def missing(hits) -> list:
    return [b for b in BINS if not hits.get(b)]


def report(hits, designs_hit=None) -> str:
    """One line per bin: hits (and designs that hit it), ``MISSING`` where none."""
    lines = [f"coverage: {len(BINS) - len(missing(hits))} / {len(BINS)} bins hit"]
    for b in BINS:
        n = int(hits.get(b, 0))
        d = f" in {designs_hit.get(b, 0)} designs" if designs_hit is not None else ""
        lines.append(f"  {b:<26} {n:>10,}{d}" if n else f"  {b:<26} {'MISSING':>10}")
    return "\n".join(lines)
