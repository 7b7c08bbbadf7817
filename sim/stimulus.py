"""Random stimulus for the co-simulation tests: configs, networks and samples from one seed.

Everything derives from a ``numpy.random.Generator``, so a seed replays a test exactly
(``pytest --seed N``). Configs stay inside the supported range (``EqSpikeConfig`` validates);
they vary layer sizes, lanes, register widths and fractions, rounding modes, schedules and
phase lengths.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from golden_model.config import EqSpikeConfig, RegFormat, Schedule, TableFormats, narrow_config
from golden_model.fixed_model import FixedModel, choose_frac, quantise_params
from golden_model.float_model import Params, glorot_params

__all__ = ["random_config", "random_narrow_config", "random_params", "random_network", "random_samples"]


def _rounding(rng) -> str:
    return str(rng.choice(["half_up", "floor"]))


def random_config(rng: np.random.Generator, layers=None) -> EqSpikeConfig:
    """A config with default-like (non-saturating) formats, random within the supported range.

    ``layers`` fixes the sizes (e.g. digits-shaped ``(64, h, 10)``); default: 3 or 4 random layers.
    """
    if layers is None:
        depth = int(rng.integers(3, 5))
        layers = tuple(int(n) for n in rng.integers(2, 13, size=depth))
    frac = int(rng.integers(10, 13))
    reg = lambda extra: RegFormat(frac + int(rng.integers(*extra)), frac, rounding=_rounding(rng))
    n_free, n_nudged = int(rng.integers(12, 21)), int(rng.integers(4, 9))
    sched = int(rng.integers(3))
    if sched == 0:        # constant step, scheduled predictive coding (the default kind)
        eps, lam = Schedule.constant(float(rng.uniform(0.3, 0.6))), Schedule.power(float(rng.uniform(0.4, 0.8)),
                                                                                   float(rng.uniform(0.2, 0.5)))
    elif sched == 1:      # annealed step, no predictive coding
        eps, lam = Schedule.power(float(rng.uniform(0.7, 1.0)), float(rng.uniform(0.3, 0.6))), Schedule.constant(1.0)
    else:                 # both constant
        eps, lam = Schedule.constant(float(rng.uniform(0.3, 0.6))), Schedule.constant(float(rng.uniform(0.3, 0.7)))
    n_mat = len(layers) - 1
    w_width = int(rng.integers(5, 9))
    return EqSpikeConfig(
        layers=tuple(layers),
        weights=tuple(RegFormat(w_width, w_width - 2, rounding="half_up") for _ in range(n_mat)),
        biases=tuple(RegFormat(frac + 4, frac) for _ in range(n_mat)),
        v=reg((6, 9)), x=reg((6, 9)),
        s=RegFormat(frac + 1, frac, signed=False, overflow="clip", rounding=_rounding(rng)),
        a=reg((5, 7)), phi=reg((5, 7)),
        eps=eps, lam=lam, tables=TableFormats(eps_frac=int(rng.integers(8, 13)), lam_frac=int(rng.integers(8, 13)),
                                              inv_lam_frac=int(rng.integers(8, 11))),
        beta=float(rng.choice([0.5, 1.0])), beta_frac=int(rng.integers(4, 9)),
        n_free=n_free, n_nudged=n_nudged, lanes=int(rng.integers(1, 7)),
    )


def random_narrow_config(rng: np.random.Generator) -> EqSpikeConfig:
    """:func:`golden_model.config.narrow_config` on random sizes and lanes: random full-range
    weights drive v, x, a and phi into saturation (the test that catches wrap-for-saturate)."""
    depth = int(rng.integers(3, 5))
    layers = tuple(int(n) for n in rng.integers(3, 11, size=depth))
    cfg = narrow_config(layers)
    return cfg.replace(lanes=int(rng.integers(1, 5)), n_free=int(rng.integers(10, 17)),
                       n_nudged=int(rng.integers(3, 7)))


def random_params(cfg: EqSpikeConfig, rng: np.random.Generator, gain: float = 2.5) -> Params:
    """Glorot weights times ``gain`` (so that the net is active) and small random biases."""
    p = glorot_params(cfg.layers, rng)
    p.weights = [gain * w for w in p.weights]
    p.biases = [rng.uniform(-0.2, 0.3, size=n) for n in cfg.layers[1:]]
    return p


def fit_weights(cfg: EqSpikeConfig, params: Params) -> EqSpikeConfig:
    """``cfg`` with each matrix's fraction bits chosen so that ``params`` fit unclipped."""
    return cfg.replace(weights=tuple(dataclasses.replace(f, frac=choose_frac(float(np.abs(w).max()), f))
                                     for w, f in zip(params.weights, cfg.weights)))


def random_network(cfg: EqSpikeConfig, rng: np.random.Generator, full_range: bool = False) -> FixedModel:
    """A golden model with random codes: quantised random params, or (``full_range``) every code
    of each weight/bias format equally likely."""
    if full_range:
        w = [rng.integers(f.min_code, f.max_code + 1, size=(a, b))
             for f, a, b in zip(cfg.weights, cfg.layers[:-1], cfg.layers[1:])]
        b = [rng.integers(f.min_code, f.max_code + 1, size=n) for f, n in zip(cfg.biases, cfg.layers[1:])]
        return FixedModel(cfg, w, b)
    w, b, _ = quantise_params(cfg, random_params(cfg, rng))
    return FixedModel(cfg, w, b)


def random_samples(cfg: EqSpikeConfig, rng: np.random.Generator, n: int):
    """``(x_codes, y_codes)``: uniform random inputs in [0, 1] and one-hot targets, as codes."""
    one = 1 << cfg.s.frac
    x = rng.integers(0, one + 1, size=(n, cfg.layers[0]))
    y = np.zeros((n, cfg.layers[-1]), dtype=np.int64)
    y[np.arange(n), rng.integers(cfg.layers[-1], size=n)] = one
    return x, y
