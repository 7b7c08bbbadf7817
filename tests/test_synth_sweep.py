"""synth.sweep on the executor: the same CSV rows sequentially and on a local 2-CPU Ray, a point
whose build fails is marked failed with its error while the others finish, finished points are
reused on a rerun. The build is replaced by a quick stand-in with build()'s file layout (a real
iCEBreaker sweep takes minutes: docs/fpga.md gives the command and its measured result)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from golden_model.config import default_config
from runtime.executor import Executor
from synth.build import BuildError, rtl_digest
from synth.sweep import run_sweep, sweep_points

BASE = default_config((64, 10))


def fake_build(job: dict) -> dict:
    """build()'s outputs for a point, without the tools: config.json and summary.json."""
    cfg = job["cfg"]
    if cfg.lanes == 3:
        raise BuildError("ERROR: nextpnr crashed (planted)")
    d = Path(job["dir"])
    d.mkdir(parents=True, exist_ok=True)
    cfg.save(d / "config.json")
    luts = 100 * sum(cfg.layers) // cfg.lanes + 7 * cfg.weights[0].width
    s = {"board": job["board"], "layers": list(cfg.layers), "lanes": cfg.lanes,
         "weight_bits": [f.width for f in cfg.weights], "luts": luts, "fits": luts < 5000,
         "fmax_mhz": round(1000.0 / luts, 2), "target_mhz": 12.0, "rtl_digest": rtl_digest(),
         "build_seconds": 0.1}
    (d / "summary.json").write_text(json.dumps(s))
    return s


def _sweep(tmp, jobs, resume=True):
    pts = sweep_points(BASE, lanes=(2, 3), weight_bits=(4,))
    lines = []
    rows = run_sweep(pts, "icebreaker", tmp, dataset=None, resume=resume, executor=Executor(jobs=jobs, quiet=True),
                     build_fn=fake_build, log=lines.append)
    return rows, (tmp / "sweep.csv").read_text(), lines


def test_sweep_rows_equal_sequential_and_failed_point_marked(tmp_path):
    import ray
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])   # workers cannot import tests/
    rows1, csv1, _ = _sweep(tmp_path / "serial", 1)
    rows2, csv2, _ = _sweep(tmp_path / "ray", 2)
    assert csv2 == csv1
    assert [r["lanes"] for r in rows1] == [BASE.lanes, 2, 3, BASE.lanes]
    failed = [r for r in rows1 if r.get("failed")]
    assert len(failed) == 1 and failed[0]["lanes"] == 3
    assert failed[0]["error"] == "BuildError: ERROR: nextpnr crashed (planted)"
    assert "FAILED: BuildError: ERROR: nextpnr crashed (planted)" in (tmp_path / "ray" / "sweep.md").read_text()
    # a rerun reuses the built points and retries only the failed one
    rows3, csv3, lines = _sweep(tmp_path / "serial", 1)
    assert csv3 == csv1
    assert sum("reused" in line for line in lines) == 3
    assert any("1 of 4 points to build" in line for line in lines)


def test_synth_shows_a_line_per_tool_stage_with_elapsed_time(tmp_path, capsys):
    """eqspike synth's stage lines follow the files each tool starts writing."""
    import time

    from synth.build import _StageBars

    bars = _StageBars(tmp_path, "eqspike", "ice40")
    bars.stage("elaborate")
    bars.tools()                                   # yosys starts
    time.sleep(0.7)
    (tmp_path / "eqspike.tim").write_text("")      # nextpnr's log appears
    time.sleep(1.5)
    (tmp_path / "eqspike.asc").write_text("")      # the placed design: icepack next
    time.sleep(1.5)
    bars.close()
    err = capsys.readouterr().err
    stages = [s for s in ("elaborate", "yosys", "nextpnr", "pack") if f"synth {s}: 00:0" in err]
    assert stages == ["elaborate", "yosys", "nextpnr", "pack"], err
