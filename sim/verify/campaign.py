"""The campaign loop: draw designs, run them (through :class:`runtime.executor.Executor`),
merge coverage, keep drawing until every bin is hit, shrink the first failure.

``designs`` designs are run; past them the campaign keeps drawing while a coverage bin is
missing, until ``max_designs``. ``budget`` (minutes): once spent, no design starts (those
running finish; the others are skipped and not counted). A mismatch stops the drawing too: the first failing design is
shrunk (:func:`sim.verify.shrink.shrink`) and written as a replay folder.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .coverage import BINS, design_bins, merge, missing, report
from .design import draw_design
from .run import run_design
from .shrink import shrink, write_replay

__all__ = ["CampaignReport", "run_campaign", "design_task"]


@dataclass
class CampaignReport:
    """What a campaign ran, compared and covered (``to_json`` for ``--json``)."""

    seed: int
    plant: str | None
    rows: list = field(default_factory=list)
    hits: Counter = field(default_factory=Counter)
    designs_hit: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)
    rejected_configs: int = 0
    wall_seconds: float = 0.0
    stop_reason: str = ""
    executor: str = ""

    def total(self, key: str) -> int:
        return sum(int(r.get(key) or 0) for r in self.rows)

    @property
    def mismatches(self) -> int:
        return sum(not r["ok"] for r in self.rows)

    @property
    def coverage_complete(self) -> bool:
        return not missing(self.hits)

    def summary(self) -> str:
        lines = [
            f"verify campaign, seed {self.seed}{', PLANTED BUG ' + self.plant if self.plant else ''} ({self.executor}): "
            f"{len(self.rows)} designs, {self.stop_reason}",
            f"ticks compared (every register, every spike): {self.total('ticks'):,}; TRAIN ticks "
            f"{self.total('train_ticks'):,}",
            f"register values compared: {self.total('checked_registers'):,}; spike slots "
            f"{self.total('checked_spikes'):,}; parameter values after TRAIN {self.total('train_values'):,}",
            f"mismatches: {self.mismatches} of {len(self.rows)} designs; configs refused by validation and redrawn: "
            f"{self.rejected_configs}",
            f"time: {self.wall_seconds:.0f} s wall, builds {sum(r['build_seconds'] for r in self.rows):.0f} s",
        ]
        for f in self.failures:
            lines.append(f"FAILURE in design {f['index']}: {f['failure']}")
            if f.get("shrunk"):
                lines.append(f"  shrunk in {f['shrink_runs']} runs ({'; '.join(f['shrink_steps']) or 'no step kept'}) "
                             f"to {f['shrunk']}: {f['shrunk_failure']}")
            if f.get("replay"):
                lines.append(f"  replay folder {f['replay']}: {f['command']}"
                             + (f" (waveform reproduces it: {f['reproduced']})" if f.get("reproduced") is not None else ""))
        return "\n".join(lines)

    def coverage(self) -> str:
        return report(self.hits, self.designs_hit)

    def to_json(self) -> dict:
        return {"seed": self.seed, "plant": self.plant, "designs": len(self.rows), "ticks": self.total("ticks"),
                "train_ticks": self.total("train_ticks"), "register_values": self.total("checked_registers"),
                "spike_slots": self.total("checked_spikes"), "train_values": self.total("train_values"),
                "mismatches": self.mismatches, "rejected_configs": self.rejected_configs,
                "wall_seconds": round(self.wall_seconds, 1), "stop_reason": self.stop_reason,
                "coverage": {b: int(self.hits.get(b, 0)) for b in BINS}, "coverage_missing": missing(self.hits),
                "failures": self.failures, "design_rows": self.rows}


def design_task(item) -> dict:
    """Executor task: ``item = (design, optimise, deadline)`` -> :func:`run_design`'s dict plus
    the design's row; ``{"skipped": True}`` when it starts after ``deadline`` (``time.time()``;
    None: none), so a budget also ends the designs already handed to the executor."""
    d, optimise, deadline = item
    if deadline is not None and time.time() > deadline:
        return {"skipped": True, "index": d.index}
    r = run_design(d, optimise=optimise, log=lambda *a: None)
    r.update(index=d.index, flavour=d.flavour, describe=d.describe(), rejected=d.rejected)
    return r


def _failure_entry(d, r, out_dir, shrink_runs, optimise, log) -> dict:
    entry = {"index": d.index, "failure": r["failure"], "mismatch": r["mismatch"], "failing": r["failing"]}
    small, small_res = d, r
    if shrink_runs:
        log(f"shrinking design {d.index} ...")
        small, small_res, runs, steps = shrink(d, r, max_runs=shrink_runs, optimise=optimise, log=log)
        entry.update(shrunk=small.describe(), shrunk_failure=small_res["failure"], shrink_runs=runs,
                     shrink_steps=steps)
    if out_dir is not None:
        folder = Path(out_dir) / f"replay-seed{d.seed}-design{d.index}{'-' + d.plant if d.plant else ''}"
        info = write_replay(folder, small, small_res, optimise=optimise, log=log)
        entry.update(replay=str(folder), command=info["command"], reproduced=info["reproduced"],
                     waves=info["waves"])
    return entry


def run_campaign(designs: int = 10, seed: int = 0, budget: float | None = None, samples: int = 3,
                 train_samples: int = 6, plant: str | None = None, out_dir="out/verify", jobs: int | None = 1,
                 address: str | None = None, shrink_runs: int = 8, optimise: bool = False,
                 max_designs: int | None = None, json_path=None, log=print) -> CampaignReport:
    """Run the campaign (module docstring); ``jobs``/``address`` choose the executor;
    ``json_path``: the report's JSON, rewritten after every design (a stopped run keeps its figures)."""
    from runtime.executor import Executor

    t0 = time.perf_counter()
    max_designs = max_designs if max_designs is not None else max(designs, 4 * designs, designs + 20)
    rep = CampaignReport(seed=seed, plant=plant, stop_reason="running")
    index = 0
    with Executor(address=address, jobs=jobs, quiet=True) as ex:
        rep.executor = ex.describe()
        # in parallel, the first ``designs`` go out at once (no worker waits for a slow batch mate)
        extra = 1 if ex.serial else max(1, jobs or 2)
        while True:
            if rep.mismatches:
                rep.stop_reason = "stopped at the first mismatch"
                break
            if budget is not None and time.perf_counter() - t0 > budget * 60:
                rep.stop_reason = f"budget of {budget:g} min spent after {len(rep.rows)} designs"
                break
            if index >= designs and (rep.coverage_complete or index >= max_designs):
                rep.stop_reason = ("every coverage bin hit" if rep.coverage_complete
                                   else f"coverage incomplete after {index} designs (limit)")
                break
            width = designs - index if (index < designs and not ex.serial) else extra
            batch = [draw_design(seed, i, samples, train_samples).replace(plant=plant)
                     for i in range(index, index + width)]
            index += width
            deadline = time.time() - (time.perf_counter() - t0) + budget * 60 if budget is not None else None

            def done(i, o, batch=batch):
                if not (o.ok and o.value.get("skipped")):
                    _record(rep, batch[i], o, out_dir, shrink_runs, optimise, log)
                    if json_path:
                        rep.wall_seconds = time.perf_counter() - t0
                        write_json(json_path, rep)
            ex.map(design_task, [(d, optimise, deadline) for d in batch], keys=[f"design-{d.index}" for d in batch],
                   on_result=done)
    rep.wall_seconds = time.perf_counter() - t0
    return rep


def _record(rep: CampaignReport, d, o, out_dir, shrink_runs, optimise, log) -> None:
    """Merge one finished design into the report (and shrink it if it is the first failure)."""
    r = o.value if o.ok else {"ok": False, "failure": o.error, "mismatch": None, "failing": None,
                              "hits": {}, "build_seconds": 0.0, "index": d.index}
    part = merge(Counter(r.get("hits", {})), design_bins(d.cfg))
    merge(rep.hits, part)
    merge(rep.designs_hit, {b: 1 for b, n in part.items() if n})
    rep.rejected_configs += d.rejected
    rep.rows.append({k: r.get(k) for k in ("index", "ok", "failure", "ticks", "train_ticks",
                                           "checked_registers", "checked_spikes", "train_values",
                                           "build_seconds", "wall_seconds")}
                    | {"design": d.describe()})
    rep.rows[-1]["build_seconds"] = float(r.get("build_seconds") or 0.0)
    log(f"design {d.index}: {d.describe()}: "
        + (f"bit-exact, {r.get('ticks', 0)} ticks + {r.get('train_ticks', 0)} TRAIN, "
           f"{r.get('checked_registers', 0):,} registers, {r.get('wall_seconds', 0):.0f} s"
           if r["ok"] else f"FAILED: {r['failure']}")
        + f"; totals {rep.total('ticks'):,} ticks, bins {len(BINS) - len(missing(rep.hits))}/{len(BINS)}")
    if not r["ok"] and not rep.failures and o.ok:
        rep.failures.append(_failure_entry(d, r, out_dir, shrink_runs, optimise, log))


def write_json(path, rep: CampaignReport) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rep.to_json(), indent=1, default=str) + "\n")
