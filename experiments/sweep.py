"""Format sweeps: fixed-point accuracy of trained weights versus weight bits and state fraction bits.

Two one-dimensional sweeps around a base config (normally the default config):

* ``weight_bits``: every matrix's weight width set to ``bits``; fraction bits then fitted per
  matrix from the weights' range (:func:`fit_weight_formats`, a power-of-two scale that never
  clips), biases and registers unchanged;
* ``state_frac``: the fraction bits ``F`` of the neuron registers s, v, x, a and phi (and so of
  ``rho_last``, inputs and targets, which use s's format) set to ``F``, each register keeping
  its integer bits (width = integer bits + F); weights fitted as in the base.

Every variant runs the fixed-point free phase on the same samples; its predictions are compared
with the labels and with the float binary run that uses the config's dynamics (``binary_hw``,
computed once), so ``agreement`` isolates quantisation. Variants are tasks of a
:class:`runtime.executor.Executor` (local Ray, a cluster, or in this process).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from golden_model.config import ConfigError, EqSpikeConfig, RegFormat
from golden_model.fixed_model import FixedModel, fit_weight_formats, quantise_params
from golden_model.float_model import Dynamics, Params
from runtime.executor import Executor, map_rows, source_digest

__all__ = ["weight_bits_config", "state_frac_config", "sweep_variants", "run_sweep", "smallest_within",
           "variant_key", "FAILED_COLUMNS"]

#: Columns of a variant whose task failed (its error in ``error``).
FAILED_COLUMNS = ("sweep", "bits", "error")


def weight_bits_config(base: EqSpikeConfig, params: Params, bits: int) -> EqSpikeConfig:
    """``base`` with ``bits``-bit weights, fraction bits fitted per matrix."""
    return fit_weight_formats(base.with_weight_bits(bits), params)   # fractions refitted from params


def state_frac_config(base: EqSpikeConfig, params: Params, frac: int) -> EqSpikeConfig:
    """``base`` with ``frac`` fraction bits in s, v, x, a, phi (integer bits kept), weights fitted."""
    frac = int(frac)
    changes = {}
    for name in ("v", "x", "a", "phi"):
        f = getattr(base, name)
        changes[name] = dataclasses.replace(f, width=f.width - f.frac + frac, frac=frac)
    changes["s"] = dataclasses.replace(base.s, width=frac + 1, frac=frac)
    return fit_weight_formats(base.replace(**changes), params)


def sweep_variants(base: EqSpikeConfig, params: Params, weight_bits=range(3, 13),
                   state_fracs=(4, 5, 6, 7, 8, 10, 12, 14, 16)) -> list:
    """``[(sweep name, bits, config), ...]``; a variant the config rules reject raises ConfigError."""
    out = [("weight_bits", int(b), weight_bits_config(base, params, b)) for b in weight_bits]
    out += [("state_frac", int(f), state_frac_config(base, params, f)) for f in state_fracs]
    return out


def _fixed_predict(cfg: EqSpikeConfig, params: Params, x: np.ndarray, batch: int):
    w, b, report = quantise_params(cfg, params)
    model = FixedModel(cfg, w, b)
    pred = np.concatenate([model.predict(model.encode_inputs(x[i:i + batch]))
                           for i in range(0, len(x), batch)])
    return pred, report, dict(model.overflows)


def variant_key(variant) -> str:
    """``weight_bits-5``: the name of a variant's result (and its result file)."""
    return f"{variant[0]}-{variant[1]}"


def _run_variant(job, shared):
    kind, bits, cfg = job
    params, x, y, ref, batch = (shared[k] for k in ("params", "x", "y", "ref", "batch"))
    pred, report, overflows = _fixed_predict(cfg, params, x, batch)
    return {"sweep": kind, "bits": bits,
            "fixed_accuracy": float(np.mean(pred == y)),
            "agreement": float(np.mean(pred == ref)),
            "weight_formats": " ".join(f.describe() for f in cfg.weights),
            "state_format": cfg.s.describe(),
            "weights_clipped": int(sum(report.weight_clipped)),
            "overflows": int(sum(overflows.values()))}


def run_sweep(params: Params, x, y, base: EqSpikeConfig, ref_pred: np.ndarray, variants: list,
              executor: Executor | None = None, batch: int = 500, progress=None, results_dir=None,
              resume: bool = True) -> list:
    """Evaluate every variant (fixed point) against labels ``y`` and float predictions ``ref_pred``.

    One task per variant on ``executor`` (default: a local Ray on every CPU), one BLAS thread
    each. Rows come back in variant order; a variant whose task failed gives a row
    ``{"sweep", "bits", "error"}``. ``progress(row)`` is called as rows finish.
    ``results_dir``: every row is saved there as it finishes, and a rerun with the same
    weights, samples, variants and code reuses the saved rows (``resume``).
    """
    if tuple(params.layers) != base.layers:
        raise ConfigError(f"weights are for layers {list(params.layers)}, config has {list(base.layers)}")
    shared = dict(params=params, x=np.asarray(x, dtype=np.float64), y=np.asarray(y),
                  ref=np.asarray(ref_pred), batch=batch)
    root = Path(__file__).resolve().parents[1]
    return map_rows(executor, _run_variant, variants, error_row=lambda v: {"sweep": v[0], "bits": v[1]},
                    progress=progress, keys=[variant_key(v) for v in variants], shared=shared,
                    results_dir=results_dir, resume=resume, desc="sweep", unit="variant",
                    fingerprint=source_digest(root / "golden_model", root / "experiments" / "sweep.py"))


def smallest_within(rows: list, kind: str, reference: float, tolerance: float = 0.005):
    """Smallest ``bits`` of sweep ``kind`` from which every larger value scores at least
    ``reference - tolerance`` (None if none does)."""
    rs = sorted((r for r in rows if r["sweep"] == kind and "error" not in r), key=lambda r: r["bits"])
    best = None
    for r in reversed(rs):
        if r["fixed_accuracy"] >= reference - tolerance:
            best = r["bits"]
        else:
            break
    return best
