"""``eqspike tune`` on a tiny digits search: Ray Tune with ASHA on a local 2-CPU Ray; the best
recipe's command line reproduces that trial's accuracies; table, plot and JSON written."""

import json
import shlex

import pytest

from eqspike.cli import main

SMALL = ["--n-train", "150", "--n-test", "60", "--free-steps", "20", "--nudged-steps", "6"]


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    out = tmp_path_factory.mktemp("tune")
    assert main(["tune", *SMALL, "--epochs", "1,2", "--hidden", "12", "--trials", "3", "--jobs", "2",
                 "--quiet", "--out", str(out)]) == 0
    return out


def test_tune_writes_best_recipe_table_plot(search):
    res = json.loads((search / "tune.json").read_text())
    assert len(res["trials"]) == 3 and res["metric"] == "fixed_accuracy"
    best = json.loads((search / "best.json").read_text())
    finished = [t for t in res["trials"] if not t["stopped_early"]]
    assert best["fixed_accuracy"] == max(t["fixed_accuracy"] for t in finished)
    assert best["command"].startswith("eqspike train --dataset digits --seed 0")
    assert (search / "trials.md").read_text().count("\n") == 2 + 3
    assert (search / "trials.png").stat().st_size > 1000


def test_best_command_reproduces_the_trial(search, tmp_path):
    best = json.loads((search / "best.json").read_text())
    argv = shlex.split(best["command"])[1:]
    js = tmp_path / "run.json"
    assert main([*argv, "--out", str(tmp_path / "run"), "--json", str(js), "--no-progress"]) == 0
    assert json.loads(js.read_text())["test_accuracy"] == best["float_accuracy"]


def test_tune_rejects_bad_ranges(capsys):
    assert main(["tune", "--beta", "1,0.5"]) == 2
    assert main(["tune", "--trials", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--beta must be LO,HI" in err[0] and "--trials must be >= 1" in err[1]
