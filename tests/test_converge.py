"""Convergence study (spec section 6) and the `eqspike converge` command."""

import json
import subprocess
import sys

import numpy as np
import pytest

from eqspike.cli import main
from experiments.convergence import ConvergenceStudy

CURVES = ["eps_1_sqrt_t", "sched_eps_lambda", "osa", "osa_lambda", "osa_lambda_sched", "fixed_sched_eps_lambda"]


def test_converge_cli_writes_json_and_plot(tmp_path, capsys):
    out, png = tmp_path / "c.json", tmp_path / "c.png"
    rc = main(["converge", "--runs", "1", "--samples", "3", "--steps", "40", "--quiet",
               "--json", str(out), "--plot", str(png)])
    assert rc == 0
    data = json.loads(out.read_text())
    assert sorted(data) == sorted(CURVES)
    for name in CURVES:
        err = data[name]["mean_error"]
        assert len(err) == 40 and all(e >= 0 for e in err)
        assert data[name]["objective"] == pytest.approx(0.5 * (err[19] + err[39]))
    assert png.stat().st_size > 10_000
    table = capsys.readouterr().out
    assert "objective" in table and "fixed_sched_eps_lambda" in table


def test_converge_cli_rejects_bad_arguments(capsys):
    assert main(["converge", "--runs", "0"]) == 2
    assert main(["converge", "--steps", "7"]) == 2
    assert main(["converge", "--config", "/nonexistent/cfg.json", "--runs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("eqspike converge: error:") for line in err)


def test_one_full_length_run_converges_and_fixed_point_tracks_its_float_curve():
    """One run of the real study: errors fall, the fixed-point curve stays near its float twin."""
    study = ConvergenceStudy(samples=10)
    r = study.run_once(3)
    for name, err in r.items():
        assert err[249] < 0.3 * err[20], name           # converging in the free phase
        assert err[499] < err[260], name                # and again after the nudge
    fixed, flt = study.objective(r["fixed_sched_eps_lambda"]), study.objective(r["sched_eps_lambda"])
    assert fixed < 1.5 * flt


def test_console_script_entry_point():
    res = subprocess.run([sys.executable, "-m", "eqspike.cli", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "converge" in res.stdout


def test_reference_early_stop_gives_the_same_states_as_the_full_run():
    from experiments.convergence import _run_to_fixed_point
    from golden_model.float_model import Dynamics, FloatModel, glorot_params
    rng = np.random.default_rng(1)
    p = glorot_params((30, 20, 5), rng)
    x, y = rng.uniform(0, 1, (4, 30)), np.eye(5)[[0, 1, 2, 3]]
    m = FloatModel(p, Dynamics.continuous(800, 800, 0.5))
    full, early = m.reset(x, y), m.reset(x, y)
    for beta in (0.0, 0.5):
        m.run(full, 800, beta)
        _run_to_fixed_point(m, early, 800, beta)
        assert all(np.array_equal(a, b) for a, b in zip(full.s, early.s))
    assert early.t < full.t     # it did stop early


def test_results_do_not_depend_on_worker_count(tmp_path):
    outs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"j{jobs}.json"
        assert main(["converge", "--runs", "2", "--samples", "2", "--steps", "20", "--quiet", "--jobs", jobs,
                     "--json", str(out), "--plot", str(tmp_path / f"p{jobs}.png")]) == 0
        outs.append(json.loads(out.read_text()))
    assert outs[0] == outs[1]
