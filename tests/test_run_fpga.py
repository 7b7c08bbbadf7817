"""`eqspike run-fpga`: driving a board over a serial port (here the simulated board,
``--port sim``) and comparing every prediction with the golden model."""

import json
import subprocess
import sys

from golden_model.config import default_config


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "eqspike.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_run_fpga_cli_user_errors(tmp_path):
    r = _cli("run-fpga", "--port", str(tmp_path / "no-such-tty"), "--samples", "1")
    assert r.returncode == 2 and "cannot open" in r.stderr
    r = _cli("run-fpga", "--port", "sim", "--samples", "0")
    assert r.returncode == 2 and "samples must be" in r.stderr


def test_run_fpga_cli_on_simulated_board(tmp_path):
    """Weights loaded over the simulated line, one real digit, prediction equal to the model's."""
    cfg = default_config((64, 4, 10))
    cfg.save(tmp_path / "cfg.json")
    out = tmp_path / "run.json"
    r = _cli("run-fpga", "--port", "sim", "--config", str(tmp_path / "cfg.json"), "--samples", "1",
             "--ticks", "3", "--json", str(out))
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert res["agreement"] == 1.0 and res["samples"][0]["board"] == res["samples"][0]["model"]
    assert res["samples"][0]["cycles"] > 0 and "agrees with the golden model on 1" in r.stdout
