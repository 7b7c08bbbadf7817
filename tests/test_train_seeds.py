"""``eqspike train --seeds``: one task per seed on a local 2-CPU Ray; every seed's accuracies
equal those of a single run with that --seed; mean, min and max over the seeds."""

import json

import pytest

from eqspike.cli import main

RECIPE = ["--dataset", "digits", "--layers", "64,12,10", "--epochs", "2", "--n-train", "150", "--n-test", "60",
          "--free-steps", "20", "--nudged-steps", "6", "--no-progress"]


def test_seeds_equal_single_runs_and_report_mean_min_max(tmp_path, capsys):
    single = {}
    for seed in range(4):
        js = tmp_path / f"single-{seed}.json"
        assert main(["train", *RECIPE, "--seed", str(seed), "--out", str(tmp_path / f"single-{seed}"),
                     "--json", str(js)]) == 0
        single[seed] = json.loads(js.read_text())
    capsys.readouterr()
    out = tmp_path / "seeds"
    assert main(["train", *RECIPE, "--seeds", "0-3", "--jobs", "2", "--out", str(out),
                 "--json", str(tmp_path / "seeds.json")]) == 0
    printed = capsys.readouterr().out
    res = json.loads((tmp_path / "seeds.json").read_text())
    assert [r["seed"] for r in res["per_seed"]] == [0, 1, 2, 3]
    for r in res["per_seed"]:
        assert r["test_accuracy"] == single[r["seed"]]["test_accuracy"]
        assert r["train_accuracy"] == single[r["seed"]]["train_accuracy"]
        assert (out / f"seed-{r['seed']}" / "weights.npz").is_file()
    accs = [single[s]["test_accuracy"] for s in range(4)]
    assert res["test_accuracy"]["mean"] == pytest.approx(sum(accs) / 4)
    assert (res["test_accuracy"]["min"], res["test_accuracy"]["max"]) == (min(accs), max(accs))
    assert len(set(accs)) > 1          # the seeds really differ
    assert "| mean |" in printed and "| min |" in printed and "| max |" in printed
    assert (out / "seeds.md").read_text().count("\n") == 2 + 4 + 3


@pytest.mark.parametrize("bad", ["3-1", "x", "1,1"])
def test_bad_seeds_are_one_line_errors(bad, tmp_path, capsys):
    assert main(["train", *RECIPE, "--seeds", bad, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "seeds must be" in err
