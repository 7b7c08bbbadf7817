"""Error of the fixed-point model against its float twin as the state fraction bits vary.

Measures, for the default config with all per-neuron registers (v, x, s, a, phi) given F
fraction bits (integer bits kept), the mean |s_fixed - s_float| over non-input layers after the
free and after the nudged phase, and the spike agreement, on a Glorot-initialised network with
uniform inputs. The float twin runs the same dynamics (Dynamics.from_config) with the same
quantised weights, so the figures show register rounding alone. These are the figures quoted in
docs/fixed_point.md. Run: ``.venv/bin/python benchmarks/format_error.py``.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from golden_model.config import RegFormat, TableFormats, default_config
from golden_model.fixed_model import FixedModel, fit_weight_formats, quantise_params
from golden_model.float_model import Dynamics, FloatModel, Params, glorot_params


def with_frac(cfg, F):
    regs = {}
    for name in ("v", "x", "a", "phi"):
        f = getattr(cfg, name)
        regs[name] = dataclasses.replace(f, width=f.width - f.frac + F, frac=F)
    regs["s"] = RegFormat(F + 1, F, signed=False, overflow="clip")
    return cfg.replace(**regs, biases=tuple(dataclasses.replace(b, width=b.width - b.frac + F, frac=F)
                                            for b in cfg.biases))


def measure(cfg, params, x, y):
    w, b, _ = quantise_params(cfg, params)
    qp = Params([wc * f.lsb for wc, f in zip(w, cfg.weights)], [bc * f.lsb for bc, f in zip(b, cfg.biases)])
    fx = FixedModel(cfg, w, b)
    fl = FloatModel(qp, Dynamics.from_config(cfg))
    xq = fx.encode_inputs(x)
    sx, sf = fx.reset(xq, fx.encode_inputs(y)), fl.reset(xq * cfg.s.lsb, y)
    agree = total = 0
    out = []
    for phase, n, sign in (("free", cfg.n_free, 0), ("nudged", cfg.n_nudged, 1)):
        for _ in range(n):
            fx.tick(sx, sign)
            fl.tick(sf, cfg.beta * sign)
            agree += sum(int(np.sum(a == c)) for a, c in zip(sx.q[1:], sf.q[1:]))
            total += sum(a.size for a in sx.q[1:])
        out.append(np.mean([np.abs(a * cfg.s.lsb - c).mean() for a, c in zip(sx.s[1:], sf.s[1:])]))
    pred = np.mean(np.argmax(sx.s[-1], 1) == np.argmax(sf.s[-1], 1))
    return out[0], out[1], agree / total, sum(fx.overflows.values())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", default="784-500-10")
    ap.add_argument("--batch", type=int, default=20)
    args = ap.parse_args(argv)
    layers = tuple(int(n) for n in args.layers.split("-"))
    rng = np.random.default_rng(0)
    params = glorot_params(layers, rng)
    x = rng.uniform(0, 1, (args.batch, layers[0]))
    y = np.eye(layers[-1])[rng.integers(0, layers[-1], args.batch)]
    base = fit_weight_formats(default_config(layers), params)
    print(f"{args.layers}, batch {args.batch}, {base.n_free}/{base.n_nudged} steps, default schedules")
    print(f"{'frac bits':>9} {'|ds| free':>11} {'|ds| nudged':>12} {'spike agree':>12} {'overflows':>10}")
    for F in (8, 10, 12, 14, 16):
        e_free, e_nudged, agree, ovf = measure(with_frac(base, F), params, x, y)
        print(f"{F:>9} {e_free:>11.2e} {e_nudged:>12.2e} {agree:>12.4%} {ovf:>10}")


if __name__ == "__main__":
    main()
