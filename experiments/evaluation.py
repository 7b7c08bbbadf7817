"""Float versus fixed-point evaluation of trained weights (issue 6, ``compare``/``evaluate``).

Four runs of the same float weights on the same samples, all read out as the argmax of the
output state after the free phase:

* ``float``: continuous float dynamics (spec section 2);
* ``binary``: float binary dynamics used in training (e.g. OSA, lambda 0.275);
* ``binary_hw``: float binary dynamics with exactly the fixed-point config's dynamics
  (``Dynamics.from_config(cfg)``: its eps and lambda schedules, steps, sigma-delta);
* ``fixed``: the bit-accurate :class:`FixedModel` with the weights quantised to ``cfg``.

``agreement`` compares ``fixed`` with ``binary_hw`` prediction by prediction, so it measures
quantisation alone; ``binary`` versus ``binary_hw`` shows what replacing the training dynamics
(OSA) by the hardware schedule costs. Also measured: per-layer mean |s_fixed - s_binary_hw|
after the free phase, spikes per inference per layer (fixed model), every register's observed
range against its format, and overflow counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from golden_model.config import EqSpikeConfig
from golden_model.fixed_model import FixedModel, QuantReport, fit_weight_formats, quantise_params
from golden_model.float_model import Dynamics, FloatModel, Params

__all__ = ["Comparison", "RegisterStats", "compare", "JSON_KEYS", "register_names"]

JSON_KEYS = ("float_accuracy", "binary_accuracy", "binary_hw_accuracy", "fixed_accuracy",
             "agreement", "spikes_per_inference")


def register_names(l: int) -> tuple:
    """Registers of layer ``l`` in the fixed model (the input layer has no acc, v, x)."""
    return ("s", "a", "phi") if l == 0 else ("acc", "v", "x", "s", "a", "phi")


@dataclass
class RegisterStats:
    """Observed values of one register of one layer against its format (real units)."""

    name: str
    layer: int
    fmt: str
    lo: float              # representable range
    hi: float
    lsb: float
    obs_min: float = np.inf
    obs_max: float = -np.inf
    sample: list = field(default_factory=list)   # a subsample of values, for the plot

    def update(self, values: np.ndarray) -> None:
        if values.size:
            self.obs_min = min(self.obs_min, float(values.min()))
            self.obs_max = max(self.obs_max, float(values.max()))

    @property
    def headroom_bits(self) -> float:
        """log2(representable max magnitude / observed max magnitude); < 0 would mean overflow."""
        m = max(abs(self.obs_min), abs(self.obs_max))
        return float("inf") if m == 0 else float(np.log2(max(abs(self.lo), abs(self.hi)) / m))

    def values(self) -> np.ndarray:
        return np.concatenate(self.sample) if self.sample else np.zeros(0)


@dataclass
class Comparison:
    """Result of :func:`compare` (accuracies are fractions in [0, 1])."""

    n_samples: int
    float_accuracy: float
    binary_accuracy: float
    binary_hw_accuracy: float
    fixed_accuracy: float
    agreement: float
    spikes_per_inference: list          # per layer, input first (fixed model, free phase)
    state_diff: list                    # per non-input layer: mean |s_fixed - s_binary_hw|
    quant: QuantReport
    overflows: dict
    registers: list
    config: EqSpikeConfig
    dynamics: dict

    def to_json(self) -> dict:
        d = {k: getattr(self, k) for k in JSON_KEYS}
        d.update({"n_samples": self.n_samples, "state_diff": self.state_diff,
                  "weight_clipped": self.quant.weight_clipped, "bias_clipped": self.quant.bias_clipped,
                  "overflows": self.overflows,
                  "weight_formats": [f.describe() for f in self.config.weights],
                  "registers": [{"register": r.name, "layer": r.layer, "format": r.fmt,
                                 "range": [r.lo, r.hi], "observed": [r.obs_min, r.obs_max]}
                                for r in self.registers],
                  "dynamics": self.dynamics})
        return d

    def table(self) -> str:
        """The side-by-side summary printed by the commands."""
        pct = lambda a: f"{100 * a:6.2f}%"
        d = self.dynamics
        rows = [
            ("float continuous", pct(self.float_accuracy), d["float"]),
            ("float binary (training dynamics)", pct(self.binary_accuracy), d["binary"]),
            ("float binary (config's dynamics)", pct(self.binary_hw_accuracy), d["binary_hw"]),
            ("fixed point (config)", pct(self.fixed_accuracy), d["fixed"]),
        ]
        w = max(len(r[0]) for r in rows)
        lines = [f"{'run':<{w}}  accuracy  dynamics", "-" * (w + 30)]
        lines += [f"{a:<{w}}  {b:>8}  {c}" for a, b, c in rows]
        lines += [
            f"agreement fixed vs binary_hw: {100 * self.agreement:.2f}%  "
            f"(fixed - binary_hw {100 * (self.fixed_accuracy - self.binary_hw_accuracy):+.2f} points; "
            f"binary_hw - binary {100 * (self.binary_hw_accuracy - self.binary_accuracy):+.2f} points), "
            f"{self.n_samples} samples",
            "mean |s_fixed - s_binary_hw| after the free phase: "
            + ", ".join(f"L{l + 1} {v:.4f}" for l, v in enumerate(self.state_diff)),
            "spikes per inference (free phase): "
            + ", ".join(f"L{l} {v:.0f}" for l, v in enumerate(self.spikes_per_inference)),
            "quantisation: " + self.quant.describe(),
            "register overflows: " + (", ".join(f"{k} {v}" for k, v in self.overflows.items() if v) or "none"),
        ]
        return "\n".join(lines)

    def register_table(self) -> str:
        lines = [f"{'reg':<5}{'layer':>5}  {'format':<8}{'representable':>24}{'observed':>24}{'headroom':>10}"]
        for r in self.registers:
            lines.append(f"{r.name:<5}{r.layer:>5}  {r.fmt:<8}{f'[{r.lo:.4g}, {r.hi:.4g}]':>24}"
                         f"{f'[{r.obs_min:.4g}, {r.obs_max:.4g}]':>24}{r.headroom_bits:>9.1f}b")
        return "\n".join(lines)


def _reg_format(cfg: EqSpikeConfig, name: str, l: int):
    return cfg.acc_format(l) if name == "acc" else getattr(cfg, name)


def _float_pass(params, dyn, x, batch, dtype, seed):
    model = FloatModel(params, dyn, rng=np.random.default_rng(seed), dtype=dtype)
    preds, states = [], []
    for i in range(0, len(x), batch):
        st = model.free_phase(x[i:i + batch])
        preds.append(np.argmax(st.s[-1], axis=1))
        states.append([s.astype(np.float64) for s in st.s[1:]])
    return np.concatenate(preds), states


def compare(params: Params, x: np.ndarray, y: np.ndarray, cfg: EqSpikeConfig,
            train_dynamics: Dynamics, float_dynamics: Dynamics | None = None, *, fit: bool = True,
            batch: int = 500, dtype=np.float32, seed: int = 0, register_samples: int = 100,
            register_every: int = 4, skip_float: bool = False,
            float_steps: int = 50) -> Comparison:
    """Run the four models on ``(x, y)`` and collect the statistics (module docstring).

    ``fit``: choose each matrix's weight fraction bits from the weights' range first
    (:func:`fit_weight_formats`); otherwise ``cfg``'s weight formats are used as given.
    ``float_dynamics``: default continuous eps 0.5 for ``float_steps`` free steps (the training
    dynamics when those were continuous). ``register_samples`` samples of the first batch (every ``register_every``-th tick) are kept
    for the register plot; observed min/max cover every sample and tick.
    """
    if tuple(params.layers) != cfg.layers:
        from golden_model.config import ConfigError
        raise ConfigError(f"weights are for layers {list(params.layers)}, config has {list(cfg.layers)}")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if fit:
        cfg = fit_weight_formats(cfg, params)
    if float_dynamics is None:
        float_dynamics = (train_dynamics if train_dynamics.mode == "continuous"
                          else Dynamics.continuous(n_free=float_steps, beta=train_dynamics.beta))
    float_dyn = float_dynamics
    if train_dynamics.mode != "binary":     # continuous training: the paper's binary dynamics
        train_dynamics = Dynamics(beta=train_dynamics.beta)
    hw_dyn = Dynamics.from_config(cfg)

    acc = lambda p: float(np.mean(p == y)) if len(y) else float("nan")
    float_pred = None if skip_float else _float_pass(params, float_dyn, x, batch, dtype, seed)[0]
    bin_pred = None if skip_float else _float_pass(params, train_dynamics, x, batch, dtype, seed)[0]
    hw_pred, hw_states = _float_pass(params, hw_dyn, x, batch, dtype, seed)

    w, b, report = quantise_params(cfg, params)
    model = FixedModel(cfg, w, b)
    L = cfg.layers
    regs = {}
    for l in range(len(L)):
        for name in register_names(l):
            f = _reg_format(cfg, name, l)
            regs[(name, l)] = RegisterStats(name, l, f.describe(), f.min_value, f.max_value, f.lsb)
    spikes = np.zeros(len(L))
    diffs = np.zeros(len(L) - 1)
    fixed_pred = []
    for bi, i in enumerate(range(0, len(x), batch)):
        xb = x[i:i + batch]
        st = model.reset(model.encode_inputs(xb))
        count = [np.zeros(len(xb)) for _ in L]

        def observe(st, bi=bi):
            for l in range(len(L)):
                count[l] += st.q[l].sum(axis=1)
                for name in register_names(l):
                    r = regs[(name, l)]
                    codes = getattr(st, name)[l]
                    vals = codes * r.lsb
                    r.update(vals)
                    if bi == 0 and st.t % register_every == 0:
                        r.sample.append(vals[:register_samples].ravel().astype(np.float32))

        model.run(st, cfg.n_free, 0, callback=observe)
        fixed_pred.append(np.argmax(st.s[-1], axis=1))
        for l in range(len(L)):
            spikes[l] += count[l].sum()
        for l, (sf, sh) in enumerate(zip(model.state_values(st)[1:], hw_states[bi])):
            diffs[l] += np.abs(sf - sh).mean(axis=1).sum()
    fixed_pred = np.concatenate(fixed_pred) if fixed_pred else np.zeros(0, dtype=np.int64)
    n = max(len(x), 1)
    return Comparison(
        n_samples=len(x),
        float_accuracy=float("nan") if float_pred is None else acc(float_pred),
        binary_accuracy=float("nan") if bin_pred is None else acc(bin_pred),
        binary_hw_accuracy=acc(hw_pred),
        fixed_accuracy=acc(fixed_pred),
        agreement=float(np.mean(fixed_pred == hw_pred)) if len(x) else float("nan"),
        spikes_per_inference=[float(s / n) for s in spikes],
        state_diff=[float(d / n) for d in diffs],
        quant=report,
        overflows=dict(model.overflows),
        registers=list(regs.values()),
        config=cfg,
        dynamics={"float": float_dyn.describe(), "binary": train_dynamics.describe(),
                  "binary_hw": hw_dyn.describe(),
                  "fixed": f"{hw_dyn.describe()}; weights "
                           + ", ".join(f.describe() for f in cfg.weights)},
    )
