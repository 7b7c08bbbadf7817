"""Bad input on the command line: each case of issue 13 item 5 gives one line on stderr and exit
status 2, before any work, and leaves existing outputs as they were."""

import json
import os
import signal
import zipfile

import numpy as np
import pytest

from eqspike.cli import main
from experiments.training import load_checkpoint, save_checkpoint
from golden_model.config import EqSpikeConfig, default_config
from golden_model.float_model import glorot_params

FAST = ["--n-train", "40", "--n-test", "10", "--free-steps", "4", "--nudged-steps", "2", "--no-progress",
        "--layers", "64,6,10"]



def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def ckpt(tmp_path):
    """A small checkpoint folder (64-6-10, binary, digits) written as `eqspike train` writes it."""
    d = tmp_path / "ckpt"
    params = glorot_params((64, 6, 10), np.random.default_rng(0))
    save_checkpoint(d, params, default_config((64, 6, 10)),
                    {"mode": "binary", "layers": [64, 6, 10], "dataset": "digits"}, {"epochs": 1})
    return d


# -- tracebacks of the probe ----------------------------------------------------------------------
def test_deeply_nested_config_json(cli_error, tmp_path):
    cfg = tmp_path / "deep.json"
    cfg.write_text("[" * 100_000 + "]" * 100_000)
    err = cli_error(["verilog", "--config", str(cfg), "-o", str(tmp_path / "x.v")])
    assert "nested more than 8 levels" in err


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan, 1e300])
def test_non_finite_or_huge_weights(cli_error, ckpt, value):
    with np.load(ckpt / "weights.npz") as z:
        arrays = dict(z)
    arrays["W1"][0, 0] = value
    np.savez(ckpt / "weights.npz", **arrays)
    err = cli_error(["evaluate", "--weights", str(ckpt), "--n-test", "5"])
    assert "W1 holds" in err


def test_truncated_weights(cli_error, ckpt):
    raw = (ckpt / "weights.npz").read_bytes()
    (ckpt / "weights.npz").write_bytes(raw[: len(raw) // 2])
    err = cli_error(["evaluate", "--weights", str(ckpt), "--n-test", "5"])
    assert "not a weights file" in err


def test_one_dimensional_w0(cli_error, ckpt):
    with np.load(ckpt / "weights.npz") as z:
        arrays = dict(z)
    arrays["W0"] = arrays["W0"][:, 0]
    np.savez(ckpt / "weights.npz", **arrays)
    err = cli_error(["evaluate", "--weights", str(ckpt), "--n-test", "5"])
    assert "W0 is 1-D, expected 2-D" in err


@pytest.mark.parametrize("lr, message", [("nan", "finite"), ("inf", "finite"), ("-0.1", "(0, 100]"),
                                         ("0", "(0, 100]")])
def test_bad_learning_rates(cli_error, tmp_path, lr, message):
    err = cli_error(["train", "--lr", lr, "--out", str(tmp_path / "o")] + FAST)
    assert message in err and not (tmp_path / "o").exists()


def test_out_under_a_regular_file(cli_error, tmp_path):
    (tmp_path / "f").write_text("x")
    err = cli_error(["train", "--out", str(tmp_path / "f" / "o")] + FAST)
    assert "is a file, not a directory" in err


def test_json_naming_a_folder(cli_error, tmp_path):
    err = cli_error(["train", "--json", str(tmp_path), "--out", str(tmp_path / "o")] + FAST)
    assert "is a directory, not a file" in err and not (tmp_path / "o").exists()


# -- silent acceptances ---------------------------------------------------------------------------
def _idx(path, arr):
    head = bytes([0, 0, 8, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    path.write_bytes(head + arr.astype(np.uint8).tobytes())


def test_idx_labels_with_a_gap_are_refused(cli_error, tmp_path):
    for stem, n in (("train", 12), ("t10k", 4)):
        _idx(tmp_path / f"{stem}-images-idx3-ubyte", np.zeros((n, 2, 2)))
        _idx(tmp_path / f"{stem}-labels-idx1-ubyte", np.arange(n) % 10)
    _idx(tmp_path / "train-labels-idx1-ubyte", np.r_[np.arange(11) % 10, 200])
    err = cli_error(["train", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")])
    assert "labels must be the classes 0..200, each with a training sample" in err


@pytest.mark.parametrize("opt, value", [("--n-train", "-5"), ("--n-train", "0"), ("--n-test", "0"),
                                        ("--n-train", "100000"), ("--epochs", "-1"), ("--batch", "0"),
                                        ("--beta", "nan"), ("--beta", "-1"), ("--lr-decay", "0"),
                                        ("--free-steps", "0"), ("--seed", "-3"), ("--lfsr-seed", "0"),
                                        ("--threads", "0")])
def test_out_of_range_numbers(cli_error, tmp_path, opt, value):
    err = cli_error(["train"] + FAST + [f"{opt}={value}", "--out", str(tmp_path / "o")])
    assert opt in err and not (tmp_path / "o").exists()


def test_config_without_layers(cli_error, tmp_path):
    d = default_config().to_dict()
    del d["layers"]
    (tmp_path / "c.json").write_text(json.dumps(d))
    err = cli_error(["verilog", "--config", str(tmp_path / "c.json"), "-o", str(tmp_path / "x.v")])
    assert "config.layers is missing" in err


def test_lanes_above_every_layer(cli_error, tmp_path):
    default_config((4, 3, 2)).replace(lanes=8).save(tmp_path / "c.json")
    err = cli_error(["verilog", "--config", str(tmp_path / "c.json"), "-o", str(tmp_path / "x.v")])
    assert "lanes 8 exceed every layer size" in err
    err = cli_error(["synth", "--layers", "4,3,2", "--lanes", "8", "--out", str(tmp_path / "b")])
    assert "lanes 8 exceed" in err and not (tmp_path / "b").exists()


def test_cosim_lanes_above_every_layer(cli_error, ckpt):
    err = cli_error(["cosim", "--weights", str(ckpt), "--lanes", "100", "--samples", "1"])
    assert "lanes 100 exceed every layer size (largest 64)" in err


def test_verilog_refuses_a_huge_network_at_once(cli_error, tmp_path):
    default_config((64, 1_000_000, 10)).save(tmp_path / "c.json")
    err = cli_error(["verilog", "--config", str(tmp_path / "c.json"), "-o", str(tmp_path / "x.v")])
    assert "74,000,000 synapses, more than the 1,048,576" in err and not (tmp_path / "x.v").exists()


def test_n_test_zero_never_reaches_json(cli_error, tmp_path):
    cli_error(["train", "--n-test", "0", "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


# -- silent overwrites ----------------------------------------------------------------------------
def test_verilog_does_not_replace_a_checkpoint_config(cli_error, ckpt, tmp_path):
    default_config((64, 100, 10)).save(tmp_path / "other.json")
    before = _snapshot(ckpt)
    err = cli_error(["verilog", "--config", str(tmp_path / "other.json"), "-o", str(ckpt / "config.v")])
    assert "holds a different config" in err and "--force" in err
    assert _snapshot(ckpt) == before and not (ckpt / "config.v").exists()


def test_train_does_not_replace_a_checkpoint_of_another_mode(cli_error, ckpt, tmp_path):
    before = _snapshot(ckpt)
    err = cli_error(["train", "--mode", "continuous", "--out", str(ckpt)] + FAST)
    assert "holds a binary checkpoint of 64-6-10 on digits" in err and "--force" in err
    assert _snapshot(ckpt) == before


def test_train_replaces_a_checkpoint_of_another_mode_with_force(capsys, ckpt):
    (ckpt / "learning_state.npz").write_bytes(b"left by an onchip run")
    assert main(["train", "--mode", "continuous", "--epochs", "1", "--force", "--out", str(ckpt)] + FAST) == 0
    training = json.loads((ckpt / "training.json").read_text())
    metrics = json.loads((ckpt / "metrics.json").read_text())
    assert training["mode"] == "continuous"
    assert training["epochs"] == metrics["epochs"] == training["epochs_planned"] == 1
    assert sorted(p.name for p in ckpt.iterdir()) == ["config.json", "metrics.json", "training.json", "weights.npz"]


# -- late failures and interrupted training -------------------------------------------------------
def test_outputs_are_checked_before_the_work(cli_error, ckpt, tmp_path):
    (tmp_path / "f").write_text("x")
    for argv in (["compare", "--weights", str(ckpt), "--json", str(tmp_path / "f" / "c.json")],
                 ["compare", "--weights", str(ckpt), "--out", str(tmp_path / "f" / "cmp")],
                 ["sweep", "--weights", str(ckpt), "--out", str(tmp_path / "f")],
                 ["converge", "--json", str(tmp_path)],
                 ["learn-sweep", "--out", str(tmp_path / "f")],
                 ["cosim", "--weights", str(ckpt), "--json", str(tmp_path)],
                 ["demo", "--out", str(tmp_path / "f")]):
        err = cli_error(argv)
        assert "is a file, not a directory" in err or "is a directory, not a file" in err, err


def test_interrupted_checkpoint_write_leaves_the_previous_one(ckpt, monkeypatch):
    before = _snapshot(ckpt)
    params = glorot_params((64, 6, 10), np.random.default_rng(1))

    def interrupted(self, path):
        raise KeyboardInterrupt
    monkeypatch.setattr(EqSpikeConfig, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(ckpt, params, default_config((64, 6, 10)), {"mode": "binary"}, {"epochs": 2})
    assert _snapshot(ckpt) == before and sorted(p.name for p in ckpt.iterdir()) == sorted(before)


def test_ctrl_c_during_the_commit_is_held_back_until_it_is_complete(ckpt, monkeypatch):
    """A SIGINT arriving between the renames is raised only after the last one."""
    real_replace = os.replace
    calls = []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)
        real_replace(src, dst)
    monkeypatch.setattr(os, "replace", replace)
    params = glorot_params((64, 6, 10), np.random.default_rng(1))
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(ckpt, params, default_config((64, 6, 10)), {"mode": "binary"}, {"epochs": 2})
    assert len(calls) == 4
    assert json.loads((ckpt / "metrics.json").read_text()) == {"epochs": 2}
    assert np.array_equal(load_checkpoint(ckpt).params.weights[0], params.weights[0])
    assert not [p for p in ckpt.iterdir() if p.name.startswith(".partial")]


def test_checkpoint_json_never_holds_nan(tmp_path):
    params = glorot_params((4, 3, 2), np.random.default_rng(0))
    save_checkpoint(tmp_path, params, default_config((4, 3, 2)), {"x": float("nan")},
                    {"test_accuracy": np.float32("nan"), "history": [{"loss": float("inf")}]})
    text = (tmp_path / "metrics.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"test_accuracy": None, "history": [{"loss": None}]}


def test_argparse_errors_are_one_line(cli_error):
    err = cli_error(["train", "--n-train", "x"])
    assert err == "eqspike train: error: argument --n-train: must be an integer, not 'x'"


def test_a_single_array_npy_is_not_a_weights_file(cli_error, tmp_path):
    np.save(tmp_path / "w.npz", np.zeros((3, 3)))
    (tmp_path / "w.npz.npy").rename(tmp_path / "w.npz")
    err = cli_error(["evaluate", "--weights", str(tmp_path / "w.npz")])
    assert "not a weights file" in err
    with zipfile.ZipFile(tmp_path / "p.npz", "w") as z:
        z.writestr("W0.npy", b"\x93NUMPY garbage")
    err = cli_error(["evaluate", "--weights", str(tmp_path / "p.npz")])
    assert "not a weights file" in err
