"""Plots of the training commands: register ranges (hls4ml-style profile) and format sweeps."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["register_profile_plot", "register_histogram_plot", "sweep_plot", "training_curve_plot",
           "learn_sweep_plot"]


def register_profile_plot(registers, path, title: str = "") -> None:
    """log2 |value| of every register (box: quartiles, whiskers: 1-99 %, dots: extremes) over
    its representable magnitude range (grey bar: LSB .. max), one row per register and layer."""
    regs = list(registers)
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(regs) + 1.6))
    labels = []
    for i, r in enumerate(regs):
        y = len(regs) - 1 - i
        top = np.log2(max(abs(r.lo), abs(r.hi)))
        ax.barh(y, top - np.log2(r.lsb), left=np.log2(r.lsb), height=0.7, color="0.85",
                edgecolor="0.6", zorder=1)
        v = np.abs(r.values())
        v = v[v > 0]
        if v.size:
            lv = np.log2(v)
            q1, med, q3 = np.percentile(lv, [25, 50, 75])
            lo, hi = np.percentile(lv, [1, 99])
            ax.plot([lo, hi], [y, y], color="tab:blue", lw=1, zorder=2)
            ax.barh(y, q3 - q1, left=q1, height=0.4, color="tab:blue", alpha=0.7, zorder=3)
            ax.plot([med, med], [y - 0.2, y + 0.2], color="k", lw=1.2, zorder=4)
        m = max(abs(r.obs_min), abs(r.obs_max))
        if np.isfinite(m) and m > 0:
            ax.plot(np.log2(m), y, "o", color="tab:red" if m >= max(abs(r.lo), abs(r.hi)) else "tab:orange",
                    ms=4, zorder=5)
        labels.append((y, f"L{r.layer} {r.name} ({r.fmt})"))
    ax.set_yticks([y for y, _ in labels], [t for _, t in labels], fontsize=8)
    # The whisker spans the 1st..99th percentile of the *sampled* values; the dot is the largest
    # magnitude seen over every tick (tracked exactly, not sampled), so it usually lies beyond it.
    ax.set_xlabel("log2 |value|   grey: representable LSB..max;  blue box: quartiles of sampled values, "
                  "whisker: their 1st-99th percentile;\ndot: largest |value| over all ticks "
                  "(exact, beyond the whisker when the top 1% is rare; red if it reached the format's limit)",
                  fontsize=8)
    ax.set_title(title or "fixed-point registers: observed values vs representable range")
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sweep_plot(rows, path, references: dict, title: str = "", defaults: dict | None = None) -> None:
    """Accuracy vs bits, one panel per swept quantity; horizontal lines for float references,
    a vertical line at ``defaults[sweep]`` (the base config's value)."""
    order = {"weight_bits": 0, "state_frac": 1}
    kinds = sorted({r["sweep"] for r in rows}, key=lambda k: (order.get(k, 9), k))
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds), 4.2), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        rs = sorted((r for r in rows if r["sweep"] == kind), key=lambda r: r["bits"])
        bits = [r["bits"] for r in rs]
        ax.plot(bits, [100 * r["fixed_accuracy"] for r in rs], "o-", label="fixed point")
        ax.plot(bits, [100 * r["agreement"] for r in rs], "s--", ms=4, alpha=0.7,
                label="agreement with float binary (hw dynamics)")
        for (name, val), style in zip(references.items(), (":", "-.", "--")):
            ax.axhline(100 * val, ls=style, color="0.4", lw=1, label=f"{name} {100 * val:.2f}%")
        if "binary_hw" in references:
            ax.axhspan(100 * references["binary_hw"] - 0.5, 100 * references["binary_hw"] + 0.5,
                       color="tab:green", alpha=0.12, label="binary_hw +- 0.5 point")
        if defaults and kind in defaults:
            ax.axvline(defaults[kind], color="tab:red", lw=0.8, ls=":", label=f"default config ({defaults[kind]})")
        ax.set_xlabel({"weight_bits": "weight bits (per-matrix power-of-two scale)",
                       "state_frac": "fraction bits of s, v, x, a, phi"}.get(kind, kind))
        ax.set_ylabel("test accuracy / agreement (%)")
        lo = min([100 * r["fixed_accuracy"] for r in rs] + [100 * v for v in references.values()])
        ax.set_ylim(max(0, lo - 3), 100.5)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def training_curve_plot(history, path, title: str = "") -> None:
    """Loss and accuracies per epoch from a metrics history."""
    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    a1.plot(ep, [h["loss"] for h in history], "o-")
    a1.set_xlabel("epoch")
    a1.set_ylabel("free-phase loss ||s_out - y||^2")
    a1.grid(True, alpha=0.3)
    a2.plot(ep, [100 * h["train_running_accuracy"] for h in history], "o-", label="train (running)")
    a2.plot(ep, [100 * h["test_accuracy"] for h in history], "s-", label="test")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy (%)")
    a2.grid(True, alpha=0.3)
    a2.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def register_histogram_plot(registers, path, title: str = "") -> None:
    """One histogram per register and layer (sampled values, log counts); red lines mark the
    representable range when it falls inside the plotted span, which the panel title gives."""
    regs = list(registers)
    layers = sorted({r.layer for r in regs})
    names = []
    for r in regs:
        if r.name not in names:
            names.append(r.name)
    fig, axes = plt.subplots(len(names), len(layers), figsize=(3.6 * len(layers), 1.9 * len(names)),
                             squeeze=False)
    for ax in axes.ravel():
        ax.set_visible(False)
    for r in regs:
        ax = axes[names.index(r.name)][layers.index(r.layer)]
        ax.set_visible(True)
        v = r.values()
        if v.size:
            lo, hi = float(v.min()), float(v.max())
            pad = 0.05 * (hi - lo) + 1e-9
            ax.hist(v, bins=60, range=(lo - pad, hi + pad), color="tab:blue", log=True)
            for edge in (r.lo, r.hi):
                if lo - pad <= edge <= hi + pad:
                    ax.axvline(edge, color="tab:red", lw=1.2)
        ax.set_title(f"L{r.layer} {r.name} {r.fmt}: [{r.lo:.3g}, {r.hi:.3g}]", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(title or "fixed-point register values (sampled) and representable range")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def learn_sweep_plot(rows, path, title: str = "") -> None:
    """Test accuracy after on-chip training versus learning-weight width, one line per rounding."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for rounding, style in (("stochastic", "o-"), ("nearest", "s--")):
        rs = sorted((r for r in rows if r["rounding"] == rounding), key=lambda r: r["width"])
        if rs:
            ax.plot([r["width"] for r in rs], [100 * r["test_accuracy"] for r in rs], style,
                    label=f"{rounding} rounding")
    ax.set_xlabel("learning weight width (bits)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
