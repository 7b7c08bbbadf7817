"""Resource and Fmax sweep: build a grid of configs, tabulate (CSV, markdown) and plot.

The grid is one factor at a time around a base config: every lane count, every weight width
and every layer list, each with the other two factors at the base. Each point is a full
:func:`synth.build.build` in its own folder, run as a task of a
:class:`runtime.executor.Executor` (local Ray, a cluster, or one after another in this process)
that reserves a CPU and the board family's build memory (:func:`synth.build.build_resources`).
A point whose ``summary.json`` already exists is read back instead of rebuilt (``resume``) when
it was built from the same RTL sources (``rtl_digest``) and config, so an interrupted sweep
continues where it stopped. A point whose build fails for a reason other than not fitting (a
tool error, a lost worker) gets a row with ``failed: true`` and the one-line ``error``; the
other points go on, and a rerun tries it again.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from golden_model.config import EqSpikeConfig

from runtime.executor import Executor

from .build import ACTIVITY_SAMPLES, build, build_resources, rtl_digest

__all__ = ["sweep_points", "run_sweep", "build_point", "COLUMNS", "write_table", "plot_sweep"]

COLUMNS = ["board", "layers", "lanes", "update_lanes", "weight_bits", "luts", "ffs", "logic_cells", "brams", "spram", "dsp",
           "lutram_write_ports",
           "fmax_mhz", "target_mhz", "meets_timing", "fits", "cycles_per_tick", "inferences_per_s",
           "build_seconds", "failed", "error"]


def sweep_points(base: EqSpikeConfig, lanes=(), weight_bits=(), layers=(), update_lanes=()) -> list:
    """The configs of a one-factor-at-a-time grid around ``base`` (duplicates removed, base first).
    ``update_lanes`` pairs with every lane count of ``lanes`` (and the base's) it divides."""
    pts = [base]
    pts += [base.replace(lanes=n, update_lanes=1) for n in lanes]
    pts += [base.replace(lanes=n, update_lanes=u) for n in (base.lanes, *lanes) for u in update_lanes
            if n % u == 0]
    pts += [base.with_weight_bits(b) for b in weight_bits]
    pts += [base.with_layers(ls) for ls in layers]
    out = []
    for p in pts:
        if p not in out:
            out.append(p)
    return out


def _label(cfg: EqSpikeConfig) -> str:
    u = f"_u{cfg.update_lanes_text().replace('/', '-')}" if cfg.parallel_update else ""
    return f"{'-'.join(map(str, cfg.layers))}_l{cfg.lanes}{u}_w{'-'.join(str(f.width) for f in cfg.weights)}"


def build_point(job: dict) -> dict:
    """One sweep point (an executor task): :func:`synth.build.build` of ``job["cfg"]`` into
    ``job["dir"]`` with the sweep's options; returns the summary."""
    return build(job["cfg"], job["board"], job["dir"], clk_mhz=job["clk_mhz"], seed=job["seed"],
                 dataset=job["dataset"], small_ram_depth=job["small_ram_depth"], log=lambda m: None,
                 progress=False, params=job.get("params"), weights_name=job.get("weights_name"),
                 samples=job.get("samples") or ACTIVITY_SAMPLES)


def _reusable(d: Path, cfg: EqSpikeConfig, digest: str) -> dict | None:
    """The summary of a point already built in ``d`` from the same config and RTL, else None."""
    try:
        old = json.loads((d / "summary.json").read_text())
        same_cfg = EqSpikeConfig.load(d / "config.json") == cfg
    except (OSError, ValueError):        # not built, or killed while writing
        return None
    return old if old.get("rtl_digest") == digest and same_cfg else None


def _failed_row(cfg: EqSpikeConfig, board: str, error: str) -> dict:
    return {"board": board, "layers": list(cfg.layers), "lanes": cfg.lanes,
            "weight_bits": [f.width for f in cfg.weights], "fits": None, "failed": True, "error": error}


def run_sweep(points, board: str, out_dir, dataset: str | None = "digits", resume: bool = True,
              seed: int = 1, clk_mhz: float | None = None, small_ram_depth: int | None = None,
              log=print, executor: Executor | None = None, build_fn=None, params=None,
              weights_name: str | None = None, samples: int | None = None) -> list:
    """Build every config, one task each on ``executor`` (default: a local Ray on every CPU);
    returns the summaries (one dict per point, in point order). ``sweep.csv``/``sweep.md`` are
    rewritten as points finish. ``build_fn(job)`` replaces :func:`build_point` (tests).
    ``params``: trained weights for the inferences/s estimate of the points with their layers."""
    from .build import BOARDS

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    digest = rtl_digest()
    rows: list = [None] * len(points)
    todo, jobs = [], []
    for i, cfg in enumerate(points):
        d = out / f"{board}_{_label(cfg)}"
        old = _reusable(d, cfg, digest) if resume else None
        if old is not None:
            rows[i] = old
            log(f"[{i + 1}/{len(points)}] {d.name}: reused")
            continue
        ds = dataset if dataset and _dataset_fits(dataset, cfg) else None
        todo.append(i)
        trained = params is not None and tuple(params.layers) == cfg.layers
        jobs.append({"cfg": cfg, "board": board, "dir": str(d), "clk_mhz": clk_mhz, "seed": seed, "dataset": ds,
                     "small_ram_depth": small_ram_depth, "params": params if trained else None,
                     "weights_name": weights_name if trained else None, "samples": samples})

    def done(k, outcome):
        i = todo[k]
        rows[i] = outcome.value if outcome.ok else _failed_row(points[i], board, outcome.error)
        s = rows[i]
        name = Path(jobs[k]["dir"]).name
        if outcome.ok:
            log(f"[{i + 1}/{len(points)}] {name}: fits {s.get('fits')}, LUTs {s.get('luts')}, BRAMs {s.get('brams')}, "
                f"Fmax {s.get('fmax_mhz')} MHz ({s.get('build_seconds')} s)")
        else:
            log(f"[{i + 1}/{len(points)}] {name}: FAILED: {outcome.error}")
        write_table([r for r in rows if r is not None], out / "sweep")

    res = build_resources(BOARDS[board]) if board in BOARDS else {"cpus": 1}
    if todo:
        with (executor or Executor()) as ex:
            log(f"{len(todo)} of {len(points)} points to build on {ex.describe()}")
            ex.map(build_fn or build_point, jobs, keys=[Path(j["dir"]).name for j in jobs], desc="synth sweep",
                   unit="build", on_result=done, cpus=res["cpus"], memory=res.get("memory"))
    write_table(rows, out / "sweep")
    return rows


def _dataset_fits(dataset: str, cfg: EqSpikeConfig) -> bool:
    from experiments.data import INPUT_SIZES
    return INPUT_SIZES.get(dataset) == cfg.layers[0]


def _cell(row: dict, key: str):
    v = row.get(key)
    if isinstance(v, list):
        return "-".join(map(str, v))
    if isinstance(v, float):
        return f"{v:.1f}" if key != "fmax_mhz" else f"{v:.2f}"
    return "" if v is None else v


def write_table(rows: list, stem) -> tuple[Path, Path]:
    """``stem.csv`` and ``stem.md`` (a markdown table) of sweep summaries."""
    stem = Path(stem)
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([_cell(r, c) for c in COLUMNS])
    cols = [c for c in COLUMNS if c not in ("error", "failed") and any(r.get(c) is not None for r in rows)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(str(_cell(r, c)) for c in cols) + " |")
    for r in rows:
        if r.get("failed"):
            lines.append(f"\n{_cell(r, 'layers')}, {r.get('lanes')} lane(s), weights {_cell(r, 'weight_bits')} bits: "
                         f"FAILED: {r['error']}")
        elif r.get("error"):
            over = f" (needs {', '.join(r['over'])})" if r.get("over") else ""
            lines.append(f"\n{_cell(r, 'layers')}, {r.get('lanes')} lane(s), weights {_cell(r, 'weight_bits')} bits: "
                         f"does not fit{over}: {r['error']}")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return stem.with_suffix(".csv"), stem.with_suffix(".md")


def plot_sweep(rows: list, path) -> Path:
    """Two panels: LUTs and BRAMs per config (bars), Fmax (line) with the target."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if not r.get("failed")]
    labels = [f"{_cell(r, 'layers')}\nL{r.get('lanes')} W{_cell(r, 'weight_bits')}" for r in rows]
    x = range(len(rows))
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(max(6, 1.3 * len(rows)), 7), sharex=True)
    luts = [r.get("luts") or 0 for r in rows]
    brams = [r.get("brams") or 0 for r in rows]
    a1.bar([i - 0.2 for i in x], luts, 0.4, label="LUTs", color="tab:blue")
    a1.set_ylabel("LUT4s")
    a1b = a1.twinx()
    a1b.bar([i + 0.2 for i in x], brams, 0.4, label="block RAMs", color="tab:orange")
    a1b.set_ylabel("block RAMs")
    a1.set_title(f"{rows[0].get('board', '')}: resources and Fmax per configuration" if rows else "")
    h1, l1 = a1.get_legend_handles_labels()
    h2, l2 = a1b.get_legend_handles_labels()
    a1.legend(h1 + h2, l1 + l2, loc="upper left")
    fmax = [r.get("fmax_mhz") or float("nan") for r in rows]
    a2.plot(list(x), fmax, "o-", label="Fmax")
    a2.plot(list(x), [r.get("target_mhz") for r in rows], "k--", label="target clock")
    for i, r in enumerate(rows):
        if not r.get("fits"):
            a2.annotate("does not fit" if r.get("fits") is False else "did not finish", (i, 0),
                        ha="center", va="bottom", color="red", fontsize=8)
    a2.set_ylabel("MHz")
    a2.set_ylim(bottom=0)
    a2.legend(loc="upper right")
    a2.set_xticks(list(x))
    a2.set_xticklabels(labels, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
