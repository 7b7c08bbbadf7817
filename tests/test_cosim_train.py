"""On-chip learning in the generated Verilog (cocotb; Verilator always, Icarus when iverilog is on
PATH): digits training samples through the TRAIN command, every weight copy and bias compared
with golden_model.onchip.OnChipLearner after every sample (sim.tb_train), TRAIN's cycles equal
rtl.learning.train_cycles; a planted rounding bug is caught; `eqspike cosim --train`.
"""

import json
import shutil

import pytest

from eqspike.cli import main
from golden_model.config import learning_config
from sim.cosim import TRAIN_JSON_KEYS, cosim_train
from sim.runner import CosimError

SIMULATORS = ["verilator", pytest.param("icarus", marks=pytest.mark.skipif(
    shutil.which("iverilog") is None, reason="iverilog not on PATH (apt-get install iverilog)"))]


def tiny_config(rounding="stochastic"):
    """A small digits network (64-8-10, 3 lanes: 8 and 10 not divisible) with short phases."""
    return learning_config((64, 8, 10), rounding=rounding, seed=0xDEADBEEFCAFEF00D).replace(
        lanes=3, n_free=12, n_nudged=6)


#: Verilator builds of the small test networks compile at -O0 (quicker build, slower run).
FAST_BUILD = {"optimise": False}


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_tiny_network_trains_bit_exact(simulator):
    samples = 4 if simulator == "verilator" else 2       # Icarus runs this design ~10x slower
    rep = cosim_train(samples, simulator, cfg=tiny_config(), read_every=3, log=print, **FAST_BUILD)
    assert rep.bit_exact_samples == samples
    assert all(r["cycles"] == r["expected_cycles"] for r in rep.rows)
    if samples == 4:
        assert {r["sign"] for r in rep.rows} == {1, -1}
    # every weight copy and bias after every sample (+ the check after the load)
    n = 64 * 8 + 8 * 10
    per_sample = n + 8 * 10 + 8 + 10
    assert rep.values_compared == (samples + 1) * per_sample
    assert rep.host_read_values == 2 * (n + 18)      # after the first and the last sample


def test_planted_rounding_bug_is_caught():
    """The build with fault="learn_round" fails the scoreboard (Icarus when installed: it builds in
    a second; else Verilator; `eqspike cosim --train --fault learn_round` shows it on Verilator)."""
    simulator = "icarus" if shutil.which("iverilog") else "verilator"
    with pytest.raises(CosimError) as e:
        cosim_train(3, simulator, cfg=tiny_config("nearest"), read_every=0, fault="learn_round", log=print,
                    **FAST_BUILD)
    rep = e.value.report
    assert rep.mismatch is not None and rep.mismatch["parameter"].startswith("W")
    assert rep.bit_exact_samples < 3


def test_cli_train_json_and_user_errors(tmp_path, capsys):
    cfg_path = tmp_path / "cfg.json"
    tiny_config().save(cfg_path)
    out = tmp_path / "train.json"
    assert main(["cosim", "--train", "--samples", "2", "--config", str(cfg_path), "--read-every", "0",
                 "--fast-build", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert tuple(report) == TRAIN_JSON_KEYS
    assert report["samples"] == report["bit_exact_samples"] == 2
    assert report["cycles_per_sample"] == report["formula_cycles_per_sample"] > 0
    assert "samples bit-exact: 2 / 2" in text and "equal for every sample" in text
    assert main(["cosim", "--train", "--samples", "1", "--weights", str(tmp_path)]) == 2
    assert "does not apply to --train" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("simulator,samples", [
    ("verilator", 200),                 # the acceptance run: about 5 minutes
    pytest.param("icarus", 10, marks=pytest.mark.skipif(      # Icarus: about 2 minutes per sample
        shutil.which("iverilog") is None, reason="iverilog not on PATH (apt-get install iverilog)"))])
def test_digits_samples_bit_exact(simulator, samples):
    """64-100-10, learning_config, Glorot seed 0, the first digits training samples."""
    rep = cosim_train(samples, simulator, read_every=50, log=print)
    print(rep.table())
    assert rep.bit_exact_samples == samples
    assert all(r["cycles"] == r["expected_cycles"] for r in rep.rows)
