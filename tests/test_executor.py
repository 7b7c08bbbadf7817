"""runtime.executor: the sequential path, the embedded local Ray and a Ray cluster give the same
results; failed points are recorded with their error; a killed sweep resumes where it stopped.

Every test that starts Ray stops it again (a Ray left running would be joined by a plain
``ray.init()`` elsewhere); the cluster test starts its own head with its own temp dir and port
and ends only that process tree.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from eqspike.cli import main
from runtime.executor import Executor, Outcome, parse_seeds

REPO = Path(__file__).resolve().parent.parent
SWEEP = ["--weight-bits", "3-5", "--state-fracs", "6,8", "--n-test", "60", "--quiet"]


def _square(x, shared):
    if x == 3:
        raise ValueError(f"point {x} made to fail\nsecond line")
    return {"x": x, "y": x * shared["k"], "arr": np.arange(x)}


def _crash(x):
    if x == 1:
        os._exit(3)          # the worker process dies: a lost worker
    return x


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("ck") / "ck"
    assert main(["train", "--mode", "continuous", "--n-train", "300", "--n-test", "60", "--layers", "64,16,10",
                 "--epochs", "2", "--lr", "0.5,0.25", "--out", str(out), "--no-progress"]) == 0
    return out


def _csv(path) -> list:
    with open(path) as f:
        return list(csv.DictReader(f))


def _sweep_rows(checkpoint, out, *extra) -> list:
    assert main(["sweep", "--weights", str(checkpoint), "--out", str(out), *SWEEP, *extra]) == 0
    return _csv(out / "sweep.csv")


def test_parse_seeds():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("2,5,7") == [2, 5, 7]
    assert parse_seeds("4") == [4]
    for bad in ("", "3-1", "a", "1,1", "-2"):
        with pytest.raises(ValueError):
            parse_seeds(bad)


def test_serial_path_records_failure_and_keeps_going(tmp_path):
    outs = Executor(jobs=1, quiet=True).map(_square, range(5), shared={"k": 10}, results_dir=tmp_path)
    assert [o.ok for o in outs] == [True, True, True, False, True]
    assert outs[3].error == "ValueError: point 3 made to fail"
    assert outs[4].value == {"x": 4, "y": 40, "arr": [0, 1, 2, 3]}      # JSON round trip, as resumed
    rec = json.loads((tmp_path / "3.json").read_text())
    assert rec["ok"] is False and rec["error"] == outs[3].error


def test_resume_reuses_saved_points_only_with_the_same_inputs(tmp_path):
    ex = Executor(jobs=1, quiet=True)
    first = ex.map(_square, range(3), shared={"k": 10}, results_dir=tmp_path)
    again = ex.map(_square, range(3), shared={"k": 10}, results_dir=tmp_path)
    assert all(o.reused for o in again) and [o.value for o in again] == [o.value for o in first]
    other = ex.map(_square, range(3), shared={"k": 11}, results_dir=tmp_path)   # other inputs: rerun
    assert not any(o.reused for o in other) and other[2].value["y"] == 22


def test_embedded_ray_sweep_rows_equal_the_sequential_path(checkpoint, tmp_path):
    """Acceptance: `eqspike sweep` on a local 2-CPU Ray gives the sequential run's CSV rows."""
    serial = _sweep_rows(checkpoint, tmp_path / "serial", "--jobs", "1")
    ray_rows = _sweep_rows(checkpoint, tmp_path / "ray", "--jobs", "2")
    assert len(serial) == 5 and all(r["error"] == "" for r in serial)
    assert ray_rows == serial
    assert len(list((tmp_path / "ray" / "points").glob("*.json"))) == 5


def test_embedded_ray_records_failed_point_and_lost_worker():
    import ray
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])    # workers cannot import tests/
    with Executor(jobs=2, quiet=True) as ex:
        outs = ex.map(_square, range(5), shared={"k": 10})
        crashed = ex.map(_crash, range(3), max_retries=0)
    assert [o.ok for o in outs] == [True, True, True, False, True]
    assert outs[3].error == "ValueError: point 3 made to fail"
    assert [o.value["y"] for o in outs if o.ok] == [0, 10, 20, 40]
    assert [o.ok for o in crashed] == [True, False, True] and crashed[1].error.startswith("worker lost:")
    assert not ray.is_initialized()


def test_sweep_with_a_failing_point_finishes_with_that_point_marked(checkpoint):
    """A variant that cannot run (its config is for other layers) fails in its task; the others finish."""
    from golden_model.config import default_config
    from experiments.sweep import run_sweep, sweep_variants
    from experiments.training import load_checkpoint

    ck = load_checkpoint(checkpoint)
    from experiments.data import load_dataset
    data = load_dataset("digits").subset(None, 40)
    variants = sweep_variants(ck.config, ck.params, weight_bits=(4, 6), state_fracs=())
    variants.insert(1, ("weight_bits", 5, default_config((64, 20, 10))))
    ref = np.zeros(len(data.y_test), dtype=int)
    rows = run_sweep(ck.params, data.x_test, data.y_test, ck.config, ref, variants,
                     executor=Executor(jobs=1, quiet=True))   # Ray's failure path: the test above
    assert [r["bits"] for r in rows] == [4, 5, 6]
    assert "error" not in rows[0] and "error" not in rows[2]
    assert rows[1]["error"].startswith("ConfigError") or rows[1]["error"].startswith("ValueError")


RESUME_TASK = """
import os, sys, time
from pathlib import Path
from runtime.executor import Executor

def work(i, log):
    log = Path(log)
    (log / f"ran-{i}-{os.getpid()}-{time.time_ns()}").touch()
    if i >= 3:
        while not (log / "gate").exists():     # the first run is killed while waiting here
            time.sleep(0.1)
    return i * i

if __name__ == "__main__":
    from resume_task import work
    outs = Executor(jobs=int(sys.argv[3]), quiet=True).map(work, range(6), shared=sys.argv[1],
                                                           results_dir=sys.argv[2])
    print("RESULT", [o.value for o in outs], [o.reused for o in outs])
"""


@pytest.mark.parametrize("jobs", [1, 2])
def test_killed_sweep_resumes_without_redoing_finished_points(tmp_path, jobs):
    (tmp_path / "resume_task.py").write_text(textwrap.dedent(RESUME_TASK))
    log, res = tmp_path / "log", tmp_path / "points"
    log.mkdir()
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    cmd = [sys.executable, str(tmp_path / "resume_task.py"), str(log), str(res), str(jobs)]
    p = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    deadline = time.time() + 120
    while len(list(res.glob("*.json"))) < 3 and time.time() < deadline and p.poll() is None:
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGKILL)         # killed halfway: points 0-2 saved, 3.. still running
    p.wait()
    assert sorted(f.name for f in res.glob("*.json")) == ["0.json", "1.json", "2.json"]
    before = {f.name: f.stat().st_mtime_ns for f in res.glob("*.json")}
    ran_first = {f.name.split("-")[1] for f in log.glob("ran-*")}
    for f in log.glob("ran-*"):
        f.unlink()
    (log / "gate").touch()
    out = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "RESULT [0, 1, 4, 9, 16, 25] [True, True, True, False, False, False]" in out.stdout
    assert {"0", "1", "2"} <= ran_first
    assert sorted(f.name.split("-")[1] for f in log.glob("ran-*")) == ["3", "4", "5"]   # only the missing
    assert all(before[n] == (res / n).stat().st_mtime_ns for n in before)


# -- a Ray cluster started beside the test ---------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def ray_head(cpus: int = 2):
    """``ray start --head`` as a separate process (its own temp dir, so a plain ``ray.init()``
    elsewhere never finds it); yields its address. Ends only this head's process tree: SIGTERM to
    ``ray start --block`` (which stops its own raylet, GCS, workers), then SIGKILL to its
    session's process group for anything left (``ray stop`` would end every Ray of the machine)."""
    port = _free_port()
    tmp = tempfile.mkdtemp(prefix="rayh", dir="/tmp")    # short: Ray's socket paths must fit 107 bytes
    ray_bin = Path(sys.executable).with_name("ray")
    log_path = Path(tmp) / "head.log"
    log = open(log_path, "w")
    head = subprocess.Popen([str(ray_bin), "start", "--head", "--port", str(port), "--num-cpus", str(cpus),
                             "--include-dashboard=false", "--temp-dir", tmp, "--block"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO,
                            env=dict(os.environ, RAY_USAGE_STATS_ENABLED="0"))
    try:
        _wait_until_up(log_path)
        yield f"127.0.0.1:{port}"
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(60)
        finally:
            try:
                os.killpg(head.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            log.close()
        left = subprocess.run(["pgrep", "-f", tmp], capture_output=True, text=True).stdout.split()
        for pid in left:                         # only processes started with this head's temp dir
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert not left, f"Ray processes of the test head were still running: {left}"
        shutil.rmtree(tmp, ignore_errors=True)


def _wait_until_up(head_log: Path, timeout: float = 120.0) -> None:
    """Wait for ``ray start`` to report the head running (connecting earlier fails, and a failed
    connection attempt leaves this process's Ray client set up without the cluster's token)."""
    t0 = time.time()
    while "Ray runtime started" not in head_log.read_text(errors="replace"):
        if time.time() - t0 > timeout:
            raise TimeoutError(f"the Ray head did not start in {timeout:.0f} s: {head_log.read_text()[-2000:]}")
        time.sleep(0.5)


def test_cluster_sweep_by_address_equals_the_sequential_path(checkpoint, tmp_path):
    """Acceptance: a head started with `ray start --head --port P` on 127.0.0.1, a sweep run with
    `--address 127.0.0.1:P`, the same CSV rows as the sequential run, the head stopped."""
    import ray
    serial = _sweep_rows(checkpoint, tmp_path / "serial", "--jobs", "1")
    with ray_head() as address:
        rows = _sweep_rows(checkpoint, tmp_path / "cluster", "--address", address)
        assert not ray.is_initialized()
    assert rows == serial


def test_bad_executor_options_are_one_line_errors(checkpoint, capsys):
    assert main(["sweep", "--weights", str(checkpoint), "--jobs", "0"]) == 2
    assert main(["sweep", "--weights", str(checkpoint), "--address", "nonsense"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--jobs must be >= 1" in err[0] and "--address must be HOST:PORT" in err[1]


def test_outcome_fields():
    o = Outcome("k", True, 1)
    assert (o.key, o.ok, o.value, o.error, o.reused) == ("k", True, 1, None, False)
