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
computed once), so ``agreement`` isolates quantisation. Variants run in parallel processes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from golden_model.config import ConfigError, EqSpikeConfig, RegFormat
from golden_model.fixed_model import FixedModel, fit_weight_formats, quantise_params
from golden_model.float_model import Dynamics, Params
from runtime.parallel import map_processes

__all__ = ["weight_bits_config", "state_frac_config", "sweep_variants", "run_sweep", "smallest_within"]

_SHARED: dict = {}


def weight_bits_config(base: EqSpikeConfig, params: Params, bits: int) -> EqSpikeConfig:
    """``base`` with ``bits``-bit weights, fraction bits fitted per matrix."""
    cfg = base.replace(weights=tuple(dataclasses.replace(f, width=int(bits), frac=min(f.frac, int(bits) + 16))
                                     for f in base.weights))
    return fit_weight_formats(cfg, params)


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


def _run_variant(job):
    kind, bits, cfg = job
    params, x, y, ref, batch = (_SHARED[k] for k in ("params", "x", "y", "ref", "batch"))
    pred, report, overflows = _fixed_predict(cfg, params, x, batch)
    return {"sweep": kind, "bits": bits,
            "fixed_accuracy": float(np.mean(pred == y)),
            "agreement": float(np.mean(pred == ref)),
            "weight_formats": " ".join(f.describe() for f in cfg.weights),
            "state_format": cfg.s.describe(),
            "weights_clipped": int(sum(report.weight_clipped)),
            "overflows": int(sum(overflows.values()))}


def run_sweep(params: Params, x, y, base: EqSpikeConfig, ref_pred: np.ndarray, variants: list,
              processes: int | None = None, batch: int = 500, progress=None) -> list:
    """Evaluate every variant (fixed point) against labels ``y`` and float predictions ``ref_pred``.

    Runs in ``processes`` worker processes (default: the CPU count), one BLAS thread each.
    """
    if tuple(params.layers) != base.layers:
        raise ConfigError(f"weights are for layers {list(params.layers)}, config has {list(base.layers)}")
    _SHARED.update(params=params, x=np.asarray(x, dtype=np.float64), y=np.asarray(y),
                   ref=np.asarray(ref_pred), batch=batch)
    rows = []
    for row in map_processes(_run_variant, variants, processes):   # forked: workers inherit _SHARED
        rows.append(row)
        if progress:
            progress(row)
    _SHARED.clear()
    return rows


def smallest_within(rows: list, kind: str, reference: float, tolerance: float = 0.005):
    """Smallest ``bits`` of sweep ``kind`` from which every larger value scores at least
    ``reference - tolerance`` (None if none does)."""
    rs = sorted((r for r in rows if r["sweep"] == kind), key=lambda r: r["bits"])
    best = None
    for r in reversed(rs):
        if r["fixed_accuracy"] >= reference - tolerance:
            best = r["bits"]
        else:
            break
    return best
