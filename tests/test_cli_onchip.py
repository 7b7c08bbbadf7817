"""``eqspike train --mode onchip`` and ``eqspike learn-sweep`` end to end, and their bad input."""

import json

import numpy as np
import pytest

from eqspike.cli import main
from golden_model.config import EqSpikeConfig

SMALL = "--n-train 60 --n-test 30 --free-steps 20 --nudged-steps 6 --no-progress".split()


@pytest.fixture(scope="module")
def onchip(cli_run):
    """One epoch of on-chip training, 64-12-10 on digits (shared by the tests below)."""
    argv = ["train", "--mode", "onchip", "--layers", "64,12,10", "--epochs", "1", "--lr", "0.2,0.1"]
    return cli_run("onchip", argv + SMALL)


def test_onchip_folder_config_and_state(onchip):
    """The checkpoint folder holds the learning state; the config records the learning block."""
    out, js = onchip
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "learning_state.npz", "metrics.json",
                                                     "training.json", "weights.npz"]
    cfg = EqSpikeConfig.load(out / "config.json")
    assert cfg.learning is not None and cfg.n_free == 20 and cfg.n_nudged == 6
    assert cfg.learning.rounding == "stochastic" and cfg.learning.rate_shift == (9, 10)
    training = json.loads((out / "training.json").read_text())
    assert training["mode"] == "onchip" and training["batch"] == 1
    with np.load(out / "learning_state.npz") as z, np.load(out / "weights.npz") as w:
        assert int(z["samples"]) == 60 and int(z["lfsr_state"]) != cfg.learning.seed
        e = cfg.learning.extra_frac
        for l, f in enumerate(cfg.weights):
            inf = np.minimum((z[f"W{l}"] + (1 << (e - 1))) >> e, f.max_code)
            assert np.array_equal(w[f"W{l}"], inf * 2.0 ** -f.frac)   # float view = inference codes
    d = json.loads(js.read_text())
    assert 0.0 <= d["test_accuracy"] <= 1.0


def test_evaluate_onchip_checkpoint_reproduces_its_accuracy(onchip, tmp_path):
    out, js = onchip
    res = tmp_path / "e.json"
    assert main(["evaluate", "--weights", str(out), "--config", str(out / "config.json"), "--no-fit",
                 "--n-test", "30", "--json", str(res)]) == 0
    assert json.loads(res.read_text())["fixed_accuracy"] == json.loads(js.read_text())["test_accuracy"]


def test_onchip_options_change_the_config(tmp_path):
    out = tmp_path / "r"
    assert main(["train", "--mode", "onchip", "--layers", "64,8,10", "--epochs", "1", "--rounding", "nearest",
                 "--learn-width", "12", "--lfsr-seed", "0x9E3779B97F4A7C15", "--out", str(out)] + SMALL) == 0
    lrn = EqSpikeConfig.load(out / "config.json").learning
    assert lrn.rounding == "nearest" and lrn.extra_frac == 4 and lrn.seed == 0x9E3779B97F4A7C15



@pytest.mark.parametrize("extra,message", [
    (["--mode", "onchip", "--batch", "5"], "--batch must be 1"),
    (["--mode", "onchip", "--lr-decay", "0.9"], "no --lr-decay"),
    (["--mode", "binary", "--rounding", "nearest"], "are for --mode onchip"),
    (["--mode", "binary", "--lfsr-seed", "5"], "are for --mode onchip"),
    (["--mode", "onchip", "--lfsr-seed", "0"], "--lfsr-seed: must be in 1..2^64-1"),
    (["--mode", "onchip", "--learn-width", "30"], "--learn-width 30 must be 0..16 bits wider"),
])
def test_onchip_bad_options(cli_error, tmp_path, extra, message):
    err = cli_error(["train", "--layers", "64,8,10", "--out", str(tmp_path / "x")] + extra + SMALL)
    assert message in err


def test_onchip_config_without_learning_section(cli_error, tmp_path):
    from golden_model.config import default_config
    p = tmp_path / "c.json"
    default_config((64, 8, 10)).replace(n_free=20, n_nudged=6).save(p)
    err = cli_error(["train", "--mode", "onchip", "--layers", "64,8,10", "--config", str(p)] + SMALL)
    assert "needs a config with a 'learning' section" in err


def test_learn_sweep_writes_table_csv_and_png(tmp_path, capsys):
    assert main(["learn-sweep", "--n-train", "30", "--n-test", "20", "--hidden", "8", "--widths", "8,12",
                 "--epochs", "1", "--processes", "2", "--out", str(tmp_path)]) == 0
    rows = (tmp_path / "learn_sweep.csv").read_text().splitlines()
    assert rows[0].startswith("width,rounding,test_accuracy") and len(rows) == 5
    md = (tmp_path / "learn_sweep.md").read_text().splitlines()
    assert md[0] == "| learning width | stochastic | nearest |" and len(md) == 4
    assert (tmp_path / "learn_sweep.png").stat().st_size > 1000
    assert "cheapest learning format" in capsys.readouterr().out


def test_learn_sweep_rejects_bad_width(cli_error, tmp_path):
    err = cli_error(["learn-sweep", "--widths", "6", "--n-train", "5", "--out", str(tmp_path)])
    assert "learning width 6 must be 0..16 bits wider" in err
