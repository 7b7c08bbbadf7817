"""Plot helpers (matplotlib, Agg backend: no screen needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["plt", "convergence_plot"]

CURVE_LABELS = {
    "eps_1_sqrt_t": r"$\epsilon = 1/\sqrt{t}$",
    "sched_eps_lambda": r"$\epsilon = 0.775/t^{0.313}$, $\lambda = 0.67/t^{0.578}$",
    "osa": r"OSA $\bar\nu = 0.0503$",
    "osa_lambda": r"OSA $\bar\nu = 0.0411$, $\lambda = 0.206$",
    "osa_lambda_sched": r"OSA $\bar\nu = 0.108$, $\lambda = 0.39/t^{0.45}$",
    "fixed_sched_eps_lambda": "fixed point (default config), scheduled $\\epsilon$, $\\lambda$",
}


def convergence_plot(curves: dict, path, n_free: int, title: str) -> None:
    """Log error vs step, mean +- std band over runs per curve (curves: name -> (runs, steps))."""
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for name, runs in curves.items():
        runs = np.asarray(runs)
        mean, std = runs.mean(axis=0), runs.std(axis=0)
        steps = np.arange(runs.shape[1])
        style = "--" if name.startswith("fixed") else "-"
        line, = ax.plot(steps, mean, style, label=CURVE_LABELS.get(name, name), lw=1.4)
        ax.fill_between(steps, np.maximum(mean - std, 1e-6), mean + std, color=line.get_color(), alpha=0.18)
    ax.axvline(n_free, color="grey", lw=0.8, ls=":")
    ax.text(n_free, 1.0, " nudge on", color="grey", va="top",
            transform=ax.get_xaxis_transform())
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("mean |s - s*| (layer-averaged)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
