"""Convergence study of spec section 6 (paper Figure 2).

A 500-500-10 net with Glorot weights and zero biases, 20 samples x ~ U[0,1]^500 and random
one-hot targets, a fresh network per run. 500 steps: free for steps 0..249, nudged
(beta = 0.5) from step 250. Reference fixed points: the continuous net (eps = 0.5) run ten times
longer (2,500 free, then 2,500 nudged steps). Error at step t: mean |s_t - s_fixed| over samples
and units per non-input layer, then the plain mean of the layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from golden_model.config import EqSpikeConfig, Schedule, default_config
from golden_model.fixed_model import FixedModel, fit_weight_formats, quantise_params
from golden_model.float_model import OSA, Dynamics, FloatModel, Params, glorot_params

__all__ = ["STUDY_LAYERS", "float_curves", "fixed_config", "ConvergenceStudy", "run_seed", "run_study"]

STUDY_LAYERS = (500, 500, 10)
N_STEPS = 500
N_FREE = 250
BETA = 0.5
E_STUDY = 1e-7


def float_curves(n_free: int = N_FREE, n_nudged: int = N_STEPS - N_FREE) -> dict:
    """The five float curves of the paper's figure, by name."""
    mk = lambda eps, lam: Dynamics(mode="binary", eps=eps, lam=lam, n_free=n_free,
                                   n_nudged=n_nudged, beta=BETA)
    one = Schedule.constant(1.0)
    return {
        "eps_1_sqrt_t": mk(Schedule.power(1.0, 0.5), one),
        "sched_eps_lambda": mk(Schedule.power(0.775, 0.313), Schedule.power(0.67, 0.578)),
        "osa": mk(OSA(0.0503, E_STUDY), one),
        "osa_lambda": mk(OSA(0.0411, E_STUDY), Schedule.constant(0.206)),
        "osa_lambda_sched": mk(OSA(0.108, E_STUDY), Schedule.power(0.39, 0.45)),
    }


def fixed_config(base: EqSpikeConfig | None = None, layers=STUDY_LAYERS, n_free: int = N_FREE,
                 n_nudged: int = N_STEPS - N_FREE) -> EqSpikeConfig:
    """The default formats with the study's sizes and the scheduled eps/lambda curve."""
    base = base or default_config()
    return base.with_layers(layers).replace(
        eps=Schedule.power(0.775, 0.313), lam=Schedule.power(0.67, 0.578),
        n_free=n_free, n_nudged=n_nudged, beta=BETA)


def _run_to_fixed_point(model: FloatModel, st, n_steps: int, beta: float) -> None:
    """``n_steps`` continuous steps, stopping early once a step leaves every state bit-identical.

    The continuous step is a deterministic function of the states, so once s_t == s_{t-1}
    exactly, every later step returns the same states: stopping there gives the same result as
    running all ``n_steps``.
    """
    for _ in range(n_steps):
        # the input layer too: continuous step 1 reads s_0 = 0 and only clamps it to x (spec 2)
        before = [s.copy() for s in st.s]
        model.tick(st, beta)
        if all(np.array_equal(a, b) for a, b in zip(st.s, before)):
            return


def _layer_error(states, ref) -> float:
    return float(np.mean([np.mean(np.abs(s - r)) for s, r in zip(states[1:], ref[1:])]))


@dataclass
class ConvergenceStudy:
    """Runs the study; ``run_once(seed)`` returns {curve name: error per step} for one run."""

    samples: int = 20
    n_steps: int = N_STEPS
    n_free: int = N_FREE
    ref_factor: int = 10
    layers: tuple = STUDY_LAYERS
    config: EqSpikeConfig | None = None

    def __post_init__(self):
        if not 0 < self.n_free < self.n_steps:
            raise ValueError(f"n_free must be in 1..{self.n_steps - 1}, not {self.n_free}")
        self.curves = float_curves(self.n_free, self.n_steps - self.n_free)
        self.fixed_cfg = fixed_config(self.config, self.layers, self.n_free, self.n_steps - self.n_free)

    @property
    def curve_names(self) -> list:
        return list(self.curves) + ["fixed_sched_eps_lambda"]

    def reference(self, params: Params, x, y):
        """Fixed points (free, nudged) of the continuous net run ``ref_factor`` times longer."""
        n_free, n_nudged = self.n_free * self.ref_factor, (self.n_steps - self.n_free) * self.ref_factor
        m = FloatModel(params, Dynamics.continuous(n_free, n_nudged, BETA))
        st = m.reset(x, y)
        _run_to_fixed_point(m, st, n_free, 0.0)
        free = [s.copy() for s in st.s]
        _run_to_fixed_point(m, st, n_nudged, BETA)
        return free, [s.copy() for s in st.s]

    def _errors(self, tick, n_steps, ref_free, ref_nudged, values):
        err = np.empty(n_steps)
        for i in range(n_steps):
            nudged = i >= self.n_free
            tick(nudged)
            err[i] = _layer_error(values(), ref_nudged if nudged else ref_free)
        return err

    def run_once(self, seed: int) -> dict:
        rng = np.random.default_rng(seed)
        params = glorot_params(self.layers, rng)
        x = rng.uniform(0.0, 1.0, size=(self.samples, self.layers[0]))
        y = np.eye(self.layers[-1])[rng.integers(0, self.layers[-1], self.samples)]
        out = {}
        ref_free, ref_nudged = self.reference(params, x, y)
        for name, dyn in self.curves.items():
            m = FloatModel(params, dyn, rng=np.random.default_rng(seed))
            st = m.reset(x, y)
            out[name] = self._errors(lambda nudged: m.tick(st, BETA if nudged else 0.0), self.n_steps,
                                     ref_free, ref_nudged, lambda: st.s)
        # fixed point: same weights quantised to the config's formats; reference with them too
        cfg = fit_weight_formats(self.fixed_cfg, params)
        w, b, _ = quantise_params(cfg, params)
        fm = FixedModel(cfg, w, b)
        xq = fm.encode_inputs(x)
        qparams = Params([wc * f.lsb for wc, f in zip(w, cfg.weights)],
                         [bc * f.lsb for bc, f in zip(b, cfg.biases)])
        qref_free, qref_nudged = self.reference(qparams, xq * cfg.s.lsb, y)
        st = fm.reset(xq, fm.encode_inputs(y))
        out["fixed_sched_eps_lambda"] = self._errors(
            lambda nudged: fm.tick(st, 1 if nudged else 0), self.n_steps, qref_free, qref_nudged,
            lambda: fm.state_values(st))
        return out

    def objective(self, mean_error: np.ndarray) -> float:
        """Mean of the errors at the last free step and the last step."""
        return float(0.5 * (mean_error[self.n_free - 1] + mean_error[self.n_steps - 1]))


def run_seed(seed: int, study: ConvergenceStudy) -> dict:
    """One run of ``study`` (an executor task: the study is the shared input)."""
    return study.run_once(seed)


def run_study(study: ConvergenceStudy, seeds, executor=None, results_dir=None, resume: bool = True) -> dict:
    """Every run of ``seeds`` on ``executor`` (default: a local Ray on every CPU), one task per
    seed; {curve name: [errors per step of each run, in seed order]}. Raises RuntimeError naming
    the failed runs (a mean over the remaining runs would be another study). ``results_dir``:
    runs saved as they finish and reused by a rerun of the same study (``resume``)."""
    from pathlib import Path

    from runtime.executor import Executor, source_digest

    seeds = [int(s) for s in seeds]
    root = Path(__file__).resolve().parents[1]
    with (executor or Executor()) as ex:
        outs = ex.map(run_seed, seeds, keys=[f"seed-{s}" for s in seeds], shared=study, results_dir=results_dir,
                      resume=resume, desc="converge", unit="run",
                      fingerprint=source_digest(root / "golden_model", root / "experiments" / "convergence.py"))
    failed = [f"seed {s}: {o.error}" for s, o in zip(seeds, outs) if not o.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(seeds)} runs failed ({'; '.join(failed)})")
    per_curve = {n: [] for n in study.curve_names}
    for o in outs:
        for name, err in o.value.items():
            per_curve[name].append(np.asarray(err, dtype=float))
    return per_curve
