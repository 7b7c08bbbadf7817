"""Hyper-parameter search for EqProp training recipes with Ray Tune (``eqspike tune``).

A *recipe* is a set of ``eqspike train`` options: per-matrix learning rates, beta, the
learning-rate decay and the epoch it starts after, epochs, hidden width, and the binary
dynamics' step size (OSA ``nu_bar``) and predictive-coding lambda. Each trial turns its sampled
recipe into those options (:func:`recipe_argv`), builds the training settings through the same
path as the command line (``make_settings(argv, data)``, given by the caller: ``eqspike train``'s
parser and ``build_settings``), trains epoch by epoch, and after every epoch reports the test
accuracy of the float model (the training dynamics) and of the bit-accurate fixed-point model
(the default hardware config, weight fractions fitted: what ``eqspike train`` saves beside the
weights). The ASHA scheduler stops trials that trail at an epoch milestone. The best trial's
options are therefore a command line that reproduces it exactly (same seed).

The search selects on the test split, as the project's accuracy figures are test accuracies;
``--n-test`` can hold part of it back for the report.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["SearchSpace", "recipe_argv", "trial", "run_search", "trials_table", "trials_plot", "METRICS"]

#: Reported per epoch by every trial; the search metric is one of the first two.
METRICS = ("fixed_accuracy", "float_accuracy")


@dataclass(frozen=True)
class SearchSpace:
    """Ranges of the search (around a data set's default recipe).

    Members
    -------
    lr0 : (low, high)
        First matrix's learning rate, log-uniform.
    lr_ratio : (low, high)
        Second (and later) matrix's rate as a fraction of the first, uniform.
    beta, lr_decay, nu_bar, lam : (low, high)
        Uniform (``nu_bar``: log-uniform).
    epochs, hidden : tuple
        Choices; the largest epoch count is ASHA's horizon.
    """

    lr0: tuple = (0.01, 0.2)
    lr_ratio: tuple = (0.25, 1.0)
    beta: tuple = (0.2, 1.0)
    lr_decay: tuple = (0.6, 1.0)
    nu_bar: tuple = (0.015, 0.08)
    lam: tuple = (0.1, 0.5)
    epochs: tuple = (3,)
    hidden: tuple = (500,)

    def tune_space(self) -> dict:
        from ray import tune
        return {
            "lr0": tune.loguniform(*self.lr0), "lr_ratio": tune.uniform(*self.lr_ratio),
            "beta": tune.uniform(*self.beta), "lr_decay": tune.uniform(*self.lr_decay),
            "lr_decay_start": tune.randint(1, max(self.epochs) + 1),
            "nu_bar": tune.loguniform(*self.nu_bar), "lam": tune.uniform(*self.lam),
            "epochs": tune.choice(list(self.epochs)), "hidden": tune.choice(list(self.hidden)),
        }

    def to_dict(self) -> dict:
        return {k: list(v) for k, v in self.__dict__.items()}


def recipe_argv(config: dict, n_inputs: int, n_classes: int, layers_between=1) -> list:
    """``eqspike train`` options of a sampled recipe (rounded to what is printed, so the command
    line reproduces the trial exactly)."""
    lr0 = float(f"{config['lr0']:.4g}")
    lr1 = float(f"{config['lr0'] * config['lr_ratio']:.4g}")
    hidden = [int(config["hidden"])] * layers_between
    return ["--mode", "binary", "--layers", ",".join(map(str, [n_inputs, *hidden, n_classes])),
            "--epochs", str(int(config["epochs"])), "--lr", f"{lr0:g},{lr1:g}",
            "--lr-decay", f"{config['lr_decay']:.4g}",
            "--lr-decay-start", str(min(int(config["lr_decay_start"]), int(config["epochs"]))),
            "--beta", f"{config['beta']:.4g}", "--eps", f"osa:{config['nu_bar']:.4g}",
            "--lam", f"{config['lam']:.4g}"]


def _fixed_accuracy(trainer, settings, x, y) -> float:
    from golden_model.config import default_config
    from experiments.training import accuracy, hardware_config, predict
    cfg = hardware_config(trainer.params, default_config(settings.layers).replace(beta=settings.dynamics.beta))
    return accuracy(predict(trainer.params, x=x, cfg=cfg), y)


def trial(config: dict, data=None, make_settings=None, base_argv=()) -> None:
    """One Ray Tune trial: train the recipe epoch by epoch, reporting both accuracies each epoch."""
    from ray import tune
    from threadpoolctl import threadpool_limits

    from experiments.training import Trainer, accuracy

    threadpool_limits(1)        # one CPU per trial (see runtime.executor)
    argv = list(base_argv) + recipe_argv(config, data.n_inputs, data.n_classes)
    settings = make_settings(argv, data)
    trainer = Trainer(settings)
    for epoch in range(1, settings.epochs + 1):
        trainer.train_epoch(data.x_train, data.y_train, data.n_classes)
        float_acc = accuracy(trainer.predict(data.x_test), data.y_test)
        fixed_acc = _fixed_accuracy(trainer, settings, data.x_test, data.y_test)
        tune.report({"fixed_accuracy": fixed_acc, "float_accuracy": float_acc, "epoch": epoch,
                     "gap": float_acc - fixed_acc})


def run_search(data, make_settings, space: SearchSpace, out, trials: int, metric: str = "fixed_accuracy",
               base_argv=(), seed: int = 0, grace: int = 1, executor=None, quiet: bool = False) -> dict:
    """Run the search; returns ``{"best": {...}, "trials": [rows]}`` and writes ``OUT/tune.json``.

    Each trial reserves one CPU of ``executor``'s Ray (default: a local Ray on every CPU; a
    cluster by address). Sampling is seeded (``seed``): the same search on the same data draws
    the same recipes.
    """
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    from runtime.executor import Executor

    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    ex = executor or Executor(quiet=quiet)
    with ex.start(force=True):         # jobs=1: a 1-CPU local Ray (Tune runs on Ray)
        trainable = tune.with_resources(tune.with_parameters(trial, data=data, make_settings=make_settings,
                                                             base_argv=list(base_argv)), {"cpu": 1})
        bar = _TrialBar(trials, metric, quiet)
        tuner = tune.Tuner(
            trainable, param_space=space.tune_space(),
            tune_config=tune.TuneConfig(
                metric=metric, mode="max", num_samples=trials,
                scheduler=ASHAScheduler(time_attr="training_iteration", max_t=max(space.epochs),
                                        grace_period=grace, reduction_factor=2),
                search_alg=BasicVariantGenerator(random_state=seed)),
            run_config=tune.RunConfig(name="tune", storage_path=str(out / "ray_results"), verbose=0,
                                      callbacks=[bar]))
        try:
            grid = tuner.fit()
        finally:
            bar.close()
    rows = _rows(grid, data, metric)
    best = rows[0] if rows else None
    result = {"metric": metric, "space": space.to_dict(), "trials": rows, "best": best}
    (out / "tune.json").write_text(json.dumps(result, indent=2, default=_plain) + "\n")
    return result


def _plain(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(f"cannot write {type(o).__name__} as JSON")


def _rows(grid, data, metric: str) -> list:
    """One row per trial: its recipe, last and best-epoch accuracies, epochs run; best first."""
    rows = []
    for r in grid:
        hist = r.metrics_dataframe
        if hist is None or hist.empty or metric not in hist:
            rows.append({"trial": _trial_name(r), "error": str(r.error).splitlines()[0] if r.error else "no result",
                         "config": r.config})
            continue
        last = hist.iloc[-1]
        rows.append({
            "trial": _trial_name(r), "config": {k: (float(v) if isinstance(v, float) else int(v))
                                                   for k, v in r.config.items()},
            "argv": recipe_argv(r.config, data.n_inputs, data.n_classes),
            "epochs_run": int(last["epoch"]), "epochs_planned": int(r.config["epochs"]),
            "fixed_accuracy": float(last["fixed_accuracy"]), "float_accuracy": float(last["float_accuracy"]),
            "history_fixed": [float(v) for v in hist["fixed_accuracy"]],
            "history_float": [float(v) for v in hist["float_accuracy"]],
            "stopped_early": int(last["epoch"]) < int(r.config["epochs"]),
        })
    ok = [r for r in rows if "error" not in r]
    # a recipe is its full run: the best row is a trial that ran all its epochs
    ok.sort(key=lambda r: (not r["stopped_early"], r[metric]), reverse=True)
    return ok + [r for r in rows if "error" in r]


def _trial_name(result) -> str:
    """``trial_42a43_00002`` (Tune's folder name without the parameter list)."""
    return "_".join(Path(result.path).name.split("_")[:3])


def trials_table(rows: list, metric: str) -> str:
    """Markdown table of the trials, best first."""
    pct = lambda v: f"{100 * v:.2f}%"
    lines = ["| trial | fixed acc | float acc | epochs | lr | beta | decay (from) | OSA nu_bar | lambda | hidden |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['trial']} | failed: {r['error']} | | | | | | | | |")
            continue
        c, a = r["config"], dict(zip(r["argv"][::2], r["argv"][1::2]))
        ep = f"{r['epochs_run']}/{r['epochs_planned']}" + (" (stopped)" if r["stopped_early"] else "")
        lines.append(f"| {r['trial']} | {pct(r['fixed_accuracy'])} | {pct(r['float_accuracy'])} | {ep} | {a['--lr']} | "
                     f"{a['--beta']} | {a['--lr-decay']} ({a['--lr-decay-start']}) | {a['--eps'][4:]} | {a['--lam']} | "
                     f"{c['hidden']} |")
    return "\n".join(lines)


def trials_plot(rows: list, path, metric: str, title: str = "") -> Path:
    """Accuracy per epoch of every trial (the best one highlighted, early-stopped ones thin)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = "history_fixed" if metric == "fixed_accuracy" else "history_float"
    ok = [r for r in rows if "error" not in r]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, r in enumerate(ok):
        ep = range(1, len(r[key]) + 1)
        if i == 0:
            ax.plot(ep, [100 * v for v in r[key]], "o-", color="tab:red", lw=2.5, label=f"best ({r['trial']})", zorder=3)
        else:
            ax.plot(ep, [100 * v for v in r[key]], "-", color="tab:blue", alpha=0.5,
                    lw=0.8 if r["stopped_early"] else 1.5)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"test accuracy, {'fixed point' if metric == 'fixed_accuracy' else 'float'} (%)")
    ax.set_title(title or f"{len(ok)} trials (ASHA: thin lines stopped early)")
    if ok:
        ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


class _TrialBar:
    """Ray Tune callback driving one progress bar over the trials (running, done, stopped early)."""

    def __new__(cls, trials: int, metric: str, quiet: bool):
        from ray import tune

        from runtime.progress import progress

        class Bar(tune.Callback):
            def __init__(self):
                self.bar = progress(total=trials, desc="tune", unit="trial", disable=quiet)
                self.best = -math.inf
                self.running = set()
                self.done = 0

            def on_trial_start(self, iteration, trials, trial, **info):
                self.running.add(trial.trial_id)
                self._post()

            def on_trial_result(self, iteration, trials, trial, result, **info):
                if result.get(metric) is not None:
                    self.best = max(self.best, float(result[metric]))
                self._post()

            def _finish(self, trial):
                self.running.discard(trial.trial_id)
                self.done += 1
                self._post()
                self.bar.update(1)

            def on_trial_complete(self, iteration, trials, trial, **info):
                self._finish(trial)

            def on_trial_error(self, iteration, trials, trial, **info):
                self._finish(trial)

            def _post(self):
                post = {"running": len(self.running), "done": self.done}
                if self.best > -math.inf:
                    post["best"] = f"{100 * self.best:.2f}%"
                self.bar.set_postfix(post, refresh=False)

            def close(self):
                self.bar.close()

        return Bar()
