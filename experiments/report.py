"""Human-readable descriptions of a config (register table for docs/fixed_point.md)."""

from __future__ import annotations

from golden_model.config import EqSpikeConfig

__all__ = ["register_table"]


def _row(name, where, fmt, rounding, overflow, compare="-", reset="0"):
    sign = "signed" if fmt.signed else "unsigned"
    return (f"| `{name}` | {where} | {fmt.width} | {sign} | {fmt.describe()} (2^-{fmt.frac}) | "
            f"{rounding} | {overflow} | {compare} | {reset} |")


def register_table(cfg: EqSpikeConfig) -> str:
    """Markdown table, one row per register of ``cfg``: width, signedness, radix point,
    rounding, overflow rule, comparison operator, reset value."""
    head = ("| register | where | width | signedness | format (radix point) | rounding | overflow | "
            "comparison | reset |\n|---|---|---|---|---|---|---|---|---|")
    rows = [head]
    for l in range(1, cfg.n_layers):
        acc = cfg.acc_format(l)
        below, above = cfg.fan_in(l)
        rows.append(_row(f"acc[{l}]", f"layer {l} synaptic sum, fan-in {below}+{above}", acc, "exact (sum of shifted weights)",
                         "cannot overflow (width from fan-in)"))
    rows.append(_row("v", "decoder, per neuron", cfg.v, cfg.v.rounding, cfg.v.overflow))
    rows.append(_row("x", "neuron input v + b (+ nudge)", cfg.x, cfg.x.rounding, cfg.x.overflow))
    rows.append(_row("s", "state, per neuron (input layer: clamped input)", cfg.s, cfg.s.rounding,
                     "clip to [0, 1] (algorithm)"))
    rows.append(_row("rho_last", "predictive encoder, per neuron", cfg.s, "none (copy of s)", "none"))
    rows.append(_row("a", "predictive encoder output", cfg.a, cfg.a.rounding, cfg.a.overflow))
    rows.append(_row("phi", "sigma-delta integrator", cfg.phi, cfg.phi.rounding, cfg.phi.overflow,
                     "spike q = phi' > 1/2 (strict)"))
    for i, f in enumerate(cfg.weights):
        rows.append(_row(f"W{i}", f"weights layer {i} -> {i + 1}", f, "half_up (host quantiser)", "saturate (host quantiser, counted)", reset="host-loaded"))
    for i, f in enumerate(cfg.biases):
        rows.append(_row(f"b{i + 1}", f"bias of layer {i + 1}", f, "half_up (host quantiser)", "saturate (host quantiser, counted)", reset="host-loaded"))
    from golden_model.config import RegFormat
    for name, frac in (("eps", cfg.tables.eps_frac), ("lam", cfg.tables.lam_frac),
                       ("inv_lam", cfg.tables.inv_lam_frac)):
        fmt = RegFormat(cfg.rom_width(name), frac, signed=False)
        rows.append(_row(f"{name}_rom[t]", f"schedule ROM, {cfg.n_steps} words", fmt, "half_up (built from config)",
                         "none (width from largest entry)", reset="constant"))
    rows.append(_row("beta2", "nudge gain 2*beta", RegFormat(max(cfg.beta2_code.bit_length(), cfg.beta_frac) + 1,
                                                             cfg.beta_frac), "half_up", "none", reset="constant"))
    return "\n".join(rows)
