"""The training commands end to end: train -> evaluate/compare/sweep, and bad input -> one-line error."""

import json

import numpy as np
import pytest

from eqspike.cli import main
from golden_model.config import default_config
from golden_model.float_model import glorot_params

SMALL = ["--n-train", "100", "--n-test", "30", "--free-steps", "20", "--nudged-steps", "6", "--no-progress"]


@pytest.fixture(scope="module")
def trained(cli_run):
    return cli_run("train", ["train", "--dataset", "digits", "--layers", "64,12,10", "--epochs", "1",
                             "--seed", "3"] + SMALL)


def test_train_writes_the_documented_folder_and_json(trained):
    out, js = trained
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "metrics.json", "training.json", "weights.npz"]
    d = json.loads(js.read_text())
    assert set(d) == {"train_accuracy", "test_accuracy", "epochs", "seconds"}
    assert d["epochs"] == 1 and 0.0 <= d["test_accuracy"] <= 1.0 and d["seconds"] > 0
    training = json.loads((out / "training.json").read_text())
    assert training["dynamics"]["n_free"] == 20 and training["layers"] == [64, 12, 10]
    with np.load(out / "weights.npz") as z:
        assert sorted(z.files) == ["W0", "W1", "b1", "b2"] and z["W0"].shape == (64, 12)

def test_train_is_reproducible(trained, tmp_path):
    out, js = trained
    main(["train", "--dataset", "digits", "--layers", "64,12,10", "--epochs", "1", "--seed", "3",
          "--out", str(tmp_path / "again")] + SMALL)
    with np.load(out / "weights.npz") as a, np.load(tmp_path / "again" / "weights.npz") as b:
        assert all(np.array_equal(a[k], b[k]) for k in a.files)

@pytest.mark.parametrize("command", ["evaluate", "compare"])
def test_evaluate_and_compare_json_keys(trained, tmp_path, command, capsys):
    out, _ = trained
    js = tmp_path / "c.json"
    extra = ["--out", str(tmp_path / "cmp")] if command == "compare" else []
    assert main([command, "--weights", str(out), "--n-test", "30", "--json", str(js)] + extra) == 0
    d = json.loads(js.read_text())
    assert set(d) == {"float_accuracy", "binary_accuracy", "binary_hw_accuracy", "fixed_accuracy",
                      "agreement", "spikes_per_inference"}
    assert 0.0 <= d["agreement"] <= 1.0 and len(d["spikes_per_inference"]) == 3
    text = capsys.readouterr().out
    assert "agreement fixed vs binary_hw" in text
    if command == "compare":
        full = json.loads((tmp_path / "cmp" / "compare.json").read_text())
        assert len(full["state_diff"]) == 2 and full["weight_clipped"] == [0, 0]
        for png in ("registers.png", "register_histograms.png"):
            assert (tmp_path / "cmp" / png).stat().st_size > 1000

def test_sweep_writes_csv_and_png(trained, tmp_path):
    out, _ = trained
    assert main(["sweep", "--weights", str(out), "--n-test", "20", "--weight-bits", "4,8",
                 "--state-fracs", "8", "--processes", "2", "--out", str(tmp_path)]) == 0
    lines = (tmp_path / "sweep.csv").read_text().splitlines()
    assert lines[0].startswith("sweep,bits,fixed_accuracy,agreement") and len(lines) == 4
    assert (tmp_path / "sweep.png").stat().st_size > 1000

def test_unknown_dataset(cli_error, tmp_path):
    err = cli_error(["train", "--dataset", "cifar", "--out", str(tmp_path)])
    assert "unknown data set 'cifar'" in err

def test_missing_weights_file(cli_error, tmp_path):
    for cmd in ("evaluate", "compare", "sweep"):
        err = cli_error([cmd, "--weights", str(tmp_path / "absent")])
        assert "does not exist" in err

def test_weights_and_config_layer_mismatch(cli_error, trained, tmp_path):
    out, _ = trained
    cfg = tmp_path / "cfg.json"
    default_config((64, 13, 10)).save(cfg)
    err = cli_error(["compare", "--weights", str(out), "--config", str(cfg), "--n-test", "5"])
    assert "weights are for layers [64, 12, 10], config has [64, 13, 10]" in err

def test_weights_and_data_mismatch(cli_error, tmp_path):
    p = glorot_params((10, 5, 10), np.random.default_rng(0))
    p.save(tmp_path / "w.npz")
    err = cli_error(["evaluate", "--weights", str(tmp_path / "w.npz"), "--dataset", "digits"])
    assert "10 inputs but digits has 64" in err

def test_layers_do_not_fit_the_data(cli_error, tmp_path):
    err = cli_error(["train", "--layers", "60,10,10", "--out", str(tmp_path)] + SMALL)
    assert "64" in err
    err = cli_error(["train", "--layers", "64,10,10", "--lr", "0.1,0.2,0.3", "--out", str(tmp_path)] + SMALL)
    assert "one rate per matrix" in err

def test_bad_schedule_and_config_mismatch_in_fixed_mode(cli_error, tmp_path):
    err = cli_error(["train", "--eps", "fast", "--out", str(tmp_path)] + SMALL)
    assert "eps must be" in err
    cfg = tmp_path / "cfg.json"
    default_config((64, 20, 10)).save(cfg)
    err = cli_error(["train", "--mode", "fixed", "--layers", "64,12,10", "--config", str(cfg),
                          "--out", str(tmp_path)] + SMALL)
    assert "config is for layers [64, 20, 10]" in err

def test_not_a_weights_file(cli_error, tmp_path):
    (tmp_path / "weights.npz").write_text("not numpy")
    err = cli_error(["evaluate", "--weights", str(tmp_path)])
    assert "not a weights file" in err

def test_data_dir_defaults_to_idx(cli_error, tmp_path):
    err = cli_error(["train", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path)])
    assert "data directory" in err and "does not exist" in err
