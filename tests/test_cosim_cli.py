"""`eqspike cosim`: real digits samples through the generated Verilog with a checkpoint folder in
`eqspike train`'s layout; the JSON report; user errors; a modified design's first mismatch."""

import dataclasses
import json
import shutil

import numpy as np
import pytest

from eqspike.cli import main
from experiments.training import save_checkpoint
from sim.cosim import JSON_KEYS
from sim.stimulus import random_params

from test_cosim_network import digits_shaped_config


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint folder (weights.npz + config.json + training/metrics JSON) for the config of
    test_cosim_network's random test, so the Verilator build is shared with it."""
    cfg = digits_shaped_config(101)
    params = random_params(cfg, np.random.default_rng(5))
    d = tmp_path_factory.mktemp("ckpt")
    save_checkpoint(d, params, cfg, training={}, metrics={})
    return d, cfg


def test_cosim_digits_json_report(checkpoint, tmp_path, capsys):
    d, cfg = checkpoint
    out = tmp_path / "cosim.json"
    assert main(["cosim", "--weights", str(d), "--dataset", "digits", "--samples", "3", "--first", "7",
                 "--jobs", "2", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert tuple(report) == JSON_KEYS
    assert report["samples"] == report["bit_exact_samples"] == 3
    for key in ("rtl_accuracy", "golden_accuracy", "float_accuracy"):
        assert 0.0 <= report[key] <= 1.0
    assert report["rtl_accuracy"] == report["golden_accuracy"]
    assert report["cycles_per_sample"] > cfg.n_steps
    # every sample's cycles equal rtl.network.tick_cycles of its spikes (the testbench checks it)
    assert report["cycles_per_sample"] == report["formula_cycles_per_sample"]
    assert "equal on 3/3 samples" in text
    assert "3 of 3 run, 3 bit-exact" in text and "RTL vs golden 100.00%" in text
    for i in (7, 8, 9):
        assert f"sample {i}: bit-exact" in text


def test_cosim_user_errors(tmp_path, capsys):
    assert main(["cosim", "--weights", str(tmp_path / "missing"), "--samples", "1"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["cosim", "--weights", str(tmp_path), "--samples", "1"]) == 2     # no weights.npz
    assert main(["cosim", "--weights", str(tmp_path), "--registers-every", "0"]) == 2
    err = capsys.readouterr().err
    assert all(len(line) < 300 for line in err.splitlines())


def test_cosim_rejects_samples_outside_the_test_split(checkpoint, capsys):
    d, _ = checkpoint
    assert main(["cosim", "--weights", str(d), "--samples", "10", "--first", "355"]) == 2
    assert "outside the 360 test samples" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not on PATH (apt-get install iverilog)")
def test_cosim_modified_design_reports_first_mismatch_and_waveform(checkpoint, tmp_path, capsys):
    """--rtl-config with s rounding changed: exit 1, the first mismatch (tick, layer, neuron,
    register, expected, got) and a recorded waveform of the failing sample."""
    d, cfg = checkpoint
    golden = cfg.replace(s=dataclasses.replace(cfg.s, rounding="half_up"))
    golden.save(d / "config.json")
    bad = golden.replace(s=dataclasses.replace(cfg.s, rounding="floor"))
    bad.save(tmp_path / "bad.json")
    try:
        rc = main(["cosim", "--weights", str(d), "--samples", "2", "--simulator", "icarus", "--jobs", "1",
                   "--rtl-config", str(tmp_path / "bad.json")])
    finally:
        cfg.save(d / "config.json")
    text = capsys.readouterr().out
    assert rc == 1
    line = next(line for line in text.splitlines() if line.startswith("FIRST MISMATCH"))
    assert "digits test sample 0, tick " in line and "register s: expected " in line and ", got " in line
    waves = next(line for line in text.splitlines() if line.startswith("waveform: "))[len("waveform: "):]
    assert waves.endswith(".fst")
    from pathlib import Path
    assert Path(waves).is_file() and Path(waves).stat().st_size > 0


def test_cosim_rtl_config_with_pipelined_multiplies(checkpoint, tmp_path, capsys):
    """--rtl-config that changes only cycles (mul_stages 3, as eqspike synth builds for the
    ULX3S): bit-exact, and every sample's cycles equal the formula of the built design (more
    than the checkpoint config's, whose pipeline is shorter)."""
    d, cfg = checkpoint
    cfg.replace(mul_stages=3).save(tmp_path / "m3.json")
    out = tmp_path / "cosim.json"
    assert main(["cosim", "--weights", str(d), "--samples", "2", "--jobs", "1", "--rtl-config",
                 str(tmp_path / "m3.json"), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["samples"] == report["bit_exact_samples"] == 2
    assert report["cycles_per_sample"] == report["formula_cycles_per_sample"]
    assert "equal on 2/2 samples" in text
    from rtl.network import update_cycles
    assert cfg.update_lanes == 1 and update_cycles(cfg.replace(mul_stages=3)) > update_cycles(cfg)


def _narrower(cfg, bits: int):
    """``cfg`` with every weight format ``bits`` wide (as a board default of eqspike synth)."""
    return cfg.replace(weights=tuple(dataclasses.replace(f, width=bits, frac=bits) for f in cfg.weights))


def test_cosim_config_quantises_the_checkpoint_into_a_build_config(checkpoint, tmp_path, capsys):
    """--config CFG (an `eqspike synth --weights` build's config.json: other weight widths,
    lanes, update lanes, pipelining): the checkpoint's float weights are quantised into it and
    golden model and RTL both come from it; bit-exact, cycles equal to that design's formula.
    --rtl-config with those widths is refused with a line naming --config."""
    d, cfg = checkpoint
    bits = 6 if cfg.weights[0].width != 6 else 7
    build = _narrower(cfg, bits).replace(lanes=6, update_lanes=(2, 3, 1), mul_stages=3)
    build.save(tmp_path / "build.json")
    out = tmp_path / "cosim.json"
    assert main(["cosim", "--weights", str(d), "--samples", "2", "--jobs", "1", "--config",
                 str(tmp_path / "build.json"), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["samples"] == report["bit_exact_samples"] == 2
    assert report["cycles_per_sample"] == report["formula_cycles_per_sample"]
    assert f"lanes 6, update lanes (2, 3, 1), mul_stages 3, weights {bits}/{bits}-bit" in text
    assert main(["cosim", "--weights", str(d), "--samples", "1", "--rtl-config", str(tmp_path / "build.json")]) == 2
    err = capsys.readouterr().err
    assert f"weights[0] format is {bits} bits" in err and "--config" in err and len(err.splitlines()) == 1
    assert main(["cosim", "--weights", str(d), "--samples", "1", "--config", str(tmp_path / "build.json"),
                 "--rtl-config", str(tmp_path / "build.json")]) == 2
    assert "--config and --rtl-config together" in capsys.readouterr().err
