"""Synthesis flow: PLL settings, report parsing, summaries, sweep tables and plot, the synth
command's errors, one small real build (smoke), and the board builds (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from golden_model.config import default_config
from synth.build import (BOARDS, activity, design_digest, parse_nextpnr_report, parse_yosys_stat, summarise, throughput,
                         tool_env)
from synth.sweep import plot_sweep, sweep_points, write_table
from synth.top import ecp5_pll_params

YOSYS_STAT_OLD = """
=== design hierarchy ===

   Number of cells:               5000
     SB_CARRY                      760
     SB_DFFE                       394
     SB_DFFESR                     951
     SB_LUT4                      8260
     SB_RAM40_4K                    44
"""

YOSYS_STAT_NEW = """
=== design hierarchy ===

        +----------Count including submodules.
        |
       76 eqspike
       76 cells
       44   SB_RAM40_4K
     1760   SB_CARRY
      122   SB_DFF
      951   SB_DFFESR
     8260   SB_LUT4
"""


@pytest.mark.parametrize("f_out", [12.5e6, 40e6, 50e6, 62.5e6, 75e6, 100e6])
def test_ecp5_pll_settings_are_exact_and_legal(f_out):
    p = ecp5_pll_params(25e6, f_out)
    assert p["f_out"] == pytest.approx(25e6 * p["CLKFB_DIV"] / p["CLKI_DIV"])
    assert abs(p["f_out"] - f_out) <= 0.005 * f_out
    assert 420e6 <= p["vco"] == p["f_out"] * p["CLKOP_DIV"] <= 780e6
    assert 25e6 / p["CLKI_DIV"] >= 3.125e6


def test_ecp5_pll_rejects_impossible_clock():
    with pytest.raises(ValueError, match="no ECP5 PLL setting"):
        ecp5_pll_params(25e6, 48e6)     # 48/25 needs a 1 MHz phase detector input


@pytest.mark.parametrize("text", [YOSYS_STAT_OLD, YOSYS_STAT_NEW])
def test_parse_yosys_stat_both_formats(text):
    cells = parse_yosys_stat("noise\n=== other ===\n  SB_LUT4 3\n" + text)
    assert cells["SB_LUT4"] == 8260 and cells["SB_RAM40_4K"] == 44 and cells["SB_DFFESR"] == 951


def _report(tmp_path, util, fmax):
    path = tmp_path / "report.json"
    path.write_text(json.dumps({
        "utilization": {k: {"used": u, "available": a} for k, (u, a) in util.items()},
        "fmax": {k: {"achieved": a, "constraint": c} for k, (a, c) in fmax.items()},
        "critical_paths": []}))
    return parse_nextpnr_report(path)


def test_summary_of_a_design_that_fits_and_meets_timing(tmp_path):
    rep = _report(tmp_path, {"ICESTORM_LC": (2300, 5280), "ICESTORM_RAM": (18, 30), "ICESTORM_SPRAM": (0, 4),
                             "ICESTORM_DSP": (3, 8)}, {"cd_sync_clk": (63.2, 12.0)})
    cells = parse_yosys_stat(YOSYS_STAT_NEW)
    s = summarise(BOARDS["icebreaker"], default_config(), rep, cells, 12e6)
    assert (s["logic_cells"], s["logic_cells_available"], s["brams"], s["spram"], s["dsp"]) == (2300, 5280, 18, 0, 3)
    assert (s["luts"], s["ffs"]) == (8260, 122 + 951)
    assert s["fits"] and s["meets_timing"] and s["fmax_mhz"] == 63.2 and s["target_mhz"] == 12.0


def test_summary_worst_clock_decides_timing(tmp_path):
    rep = _report(tmp_path, {"TRELLIS_COMB": (5000, 83640), "DP16KD": (197, 208)},
                  {"clk25": (300.0, 25.0), "pll_clk": (48.0, 50.0)})
    s = summarise(BOARDS["ulx3s-85f"], default_config((784, 500, 10)), rep, {}, 50e6)
    assert s["fits"] and not s["meets_timing"] and s["fmax_mhz"] == 48.0 and s["clock"] == "pll_clk"
    assert s["brams"] == 197 and s["luts"] == 5000


def test_summary_of_a_design_that_does_not_fit():
    msg = "ERROR: Unable to place cell 'w_below', no BELs remaining to implement cell type 'DP16KD'"
    s = summarise(BOARDS["ulx3s-85f"], default_config((784, 500, 10)), None, {"LUT4": 10, "CCU2C": 2}, 50e6, msg)
    assert s["fits"] is False and s["fmax_mhz"] is None and s["error"] == msg and s["luts"] == 14


def test_summary_of_a_build_that_stopped_says_nothing_of_the_fit(capsys):
    """nextpnr stopped for a reason that is not the device's size (killed, crashed): ``fits``
    is None, not False, and the command line says it did not finish."""
    from eqspike.commands.synth import _print_summary
    msg = "CalledProcessError: Command '['sh', 'build_eqspike.sh']' returned non-zero exit status 143."
    s = summarise(BOARDS["ulx3s-85f"], default_config((784, 500, 10)), None, {"LUT4": 10}, 50e6, msg)
    assert s["fits"] is None and s["error"] == msg
    _print_summary(s)
    assert "DID NOT FINISH" in capsys.readouterr().out


def test_activity_and_throughput_use_rtl_cycle_formulas():
    from rtl.network import tick_cycles
    cfg = default_config((64, 12, 10)).replace(n_free=5, n_nudged=2)
    act = activity(cfg, "digits", samples=3)
    assert act["cycles_per_tick_all_spiking"] == tick_cycles(cfg, list(cfg.layers))
    assert tick_cycles(cfg, [0, 0, 0]) <= act["cycles_per_tick_mean"] <= act["cycles_per_tick_max"]
    assert act["cycles_per_inference_mean"] == pytest.approx(5 * act["cycles_per_tick_mean"])
    t = throughput(act, 50.0, cfg)
    assert t["inferences_per_s"] == pytest.approx(50e6 / act["cycles_per_inference_mean"])
    assert t["inferences_per_s_worst"] <= t["inferences_per_s"]
    with pytest.raises(ValueError, match="inputs"):
        activity(default_config((16, 4, 2)), "digits", samples=1)


def test_sweep_points_one_factor_at_a_time():
    base = default_config((64, 100, 10))
    pts = sweep_points(base, lanes=(1, 4, 10), weight_bits=(4, 8), layers=((64, 32, 10), (64, 100, 10)))
    assert pts[0] == base and len(pts) == 1 + 2 + 1 + 1      # duplicates of the base removed
    assert [p.lanes for p in pts] == [1, 4, 10, 1, 1]
    w4 = base.with_weight_bits(4)
    assert all((f.width, f.width - f.frac) == (4, 8 - 6) for f in w4.weights)   # integer bits kept
    assert pts[-1].layers == (64, 32, 10)


def test_sweep_table_and_plot(tmp_path):
    rows = [
        {"board": "ulx3s-85f", "layers": [64, 100, 10], "lanes": 1, "weight_bits": [8, 8], "luts": 3000,
         "ffs": 1500, "brams": 20, "fmax_mhz": 71.234, "target_mhz": 50.0, "meets_timing": True, "fits": True,
         "cycles_per_tick": 2524.1, "inferences_per_s": 282.2, "build_seconds": 100.0},
        {"board": "ulx3s-85f", "layers": [784, 500, 10], "lanes": 1, "weight_bits": [8, 8], "luts": 5518,
         "ffs": 2335, "brams": None, "fmax_mhz": None, "target_mhz": 50.0, "meets_timing": False, "fits": False,
         "error": "ERROR: no BELs remaining to implement cell type 'DP16KD'"},
    ]
    csv_path, md_path = write_table(rows, tmp_path / "sweep")
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("board,layers,lanes,update_lanes,weight_bits,luts") and len(lines) == 3
    assert "64-100-10" in lines[1] and "71.23" in lines[1]
    md = md_path.read_text()
    assert md.count("\n|") >= 3 and "| 784-500-10 |" in md and "DP16KD" in md
    png = plot_sweep(rows, tmp_path / "sweep.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tool_env_points_at_yowasp():
    env = tool_env()
    assert set(env) >= {"YOSYS", "NEXTPNR_ICE40", "ICEPACK", "NEXTPNR_ECP5", "ECPPACK"}
    for var in ("YOSYS", "NEXTPNR_ICE40", "NEXTPNR_ECP5"):
        assert os.path.basename(env[var]).startswith("yowasp-") and os.path.exists(env[var])


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "eqspike.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_synth_cli_user_errors(tmp_path):
    r = _cli("synth", "--board", "nosuchboard")
    assert r.returncode == 2 and "invalid choice" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"layers": [4]}')
    r = _cli("synth", "--config", str(bad), "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "layers" in r.stderr
    r = _cli("synth", "--layers", "64,x", "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and "layers must be" in r.stderr
    r = _cli("synth", "--samples", "0", "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and "--samples" in r.stderr and not (tmp_path / "b").exists()


def test_activity_defaults_to_the_images_cosim_runs():
    """The summary's estimate averages the first ACTIVITY_SAMPLES (20) test images, those of
    `eqspike cosim --samples 20`, unless --samples says otherwise."""
    import inspect
    from synth.build import ACTIVITY_SAMPLES, build
    assert ACTIVITY_SAMPLES == 20
    assert inspect.signature(activity).parameters["samples"].default == ACTIVITY_SAMPLES
    assert inspect.signature(build).parameters["samples"].default == ACTIVITY_SAMPLES
    assert activity(default_config((64, 12, 10)).replace(n_free=3), "digits")["samples"] == ACTIVITY_SAMPLES


# -- real builds -------------------------------------------------------------------------------------
#: The smoke test's board: the smallest ECP5 (fast to place); no network fits the iCE40UP5K yet
#: (docs/fpga.md, "iCEBreaker").
SMOKE_BOARD = "ulx3s-12f"


def test_smoke_build_tiny_network(tmp_path):
    """CI smoke test: a tiny network through Yosys, nextpnr and ecppack; the summary matches the
    tools' outputs (a few minutes; the first run also compiles the YoWASP tools)."""
    from synth.build import build
    cfg = default_config((4, 3, 2))
    s = build(cfg, SMOKE_BOARD, tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text()) == s
    assert type(cfg).load(tmp_path / "config.json") == cfg
    rep = parse_nextpnr_report(tmp_path / "report.json")
    assert s["fits"] and s.get("error") is None, s
    assert s["luts"] == rep["utilization"]["TRELLIS_COMB"][0] > 100
    assert s["brams"] == rep["utilization"]["DP16KD"][0]
    assert s["fmax_mhz"] == round(min(a for a, _ in rep["fmax"].values()), 2) > 5
    assert s["target_mhz"] == 50.0 and s["pll"]["vco"] == 600e6
    assert s["meets_timing"] == (s["fmax_mhz"] >= 50.0)
    assert s["counters"] is True and s["dsp_width"] is None      # ECP5 defaults
    # placed and routed in two nextpnr runs (Board.route_apart): the placement's log and estimate
    assert s["route_apart"] and (tmp_path / "eqspike_place.tim").exists() and (tmp_path / "eqspike_placed.json").exists()
    assert s["fmax_placement_estimate_mhz"] > 5
    bat = [line for line in (tmp_path / "build_eqspike.bat").read_text().splitlines() if line.startswith('"%NEXTPNR_')]
    assert len(bat) == 2 and "--no-route --write eqspike_placed.json || exit /b" in bat[0], bat
    assert "--json eqspike_placed.json --no-pack --no-place" in bat[1] and bat[1].endswith("--textcfg eqspike.config || exit /b")
    assert (tmp_path / "eqspike.bit").stat().st_size > 10_000


@pytest.mark.slow
def test_icebreaker_digits_default_build(tmp_path):
    """The digits network 64-100-10 in the default config on the iCEBreaker: weights in SPRAM,
    products in MAC16s, no counters; fits the UP5K and meets the 12 MHz board clock
    (docs/fpga.md, iCEBreaker)."""
    from synth.build import build
    s = build(default_config((64, 100, 10)), "icebreaker", tmp_path, dataset="digits")
    assert s["fits"] and s["meets_timing"] and s["target_mhz"] == 12.0 and s["fmax_mhz"] >= 12.0, s
    assert s["spram"] >= 1 and s["counters"] is False and s["dsp_width"] == 16
    for res in ("logic_cells", "brams", "spram", "dsp"):
        assert 0 < s[res] <= s[f"{res}_available"], (res, s)
    assert (tmp_path / "eqspike.bin").stat().st_size > 10_000
    assert s["inferences_per_s"] > 0


@pytest.mark.slow
def test_ulx3s_paper_network_build(tmp_path):
    """The paper's 784-500-10 in the default config on the ULX3S 85F at >= 50 MHz (about 15
    minutes on 2 cores)."""
    from synth.build import build
    s = build(default_config((784, 500, 10)), "ulx3s-85f", tmp_path)
    assert s["fits"] and s["meets_timing"] and s["fmax_mhz"] >= 50


@pytest.mark.slow
def test_ulx3s_paper_network_at_500_lanes(tmp_path):
    """Issue 12's build: 784-500-10 at the board's defaults (500 lanes, U 5/4/1, 6-bit weights)
    on the ULX3S 85F fits (W0 in 167 EBRs), meets 50 MHz and runs >= 1,000 inferences/s
    (Glorot weights; about 25 minutes on 2 cores; docs/fpga.md, seventh round)."""
    from synth.build import BOARDS, build
    preset = dict(BOARDS["ulx3s-85f"].network_defaults)[(784, 500, 10)]
    cfg = default_config((784, 500, 10)).with_weight_bits(preset["weight_bits"]).replace(
        lanes=preset["lanes"], update_lanes=preset["update_lanes"], mul_stages=3)
    s = build(cfg, "ulx3s-85f", tmp_path, dataset="fashion-mnist")
    assert s["fits"] and s["meets_timing"] and s["fmax_mhz"] >= 50, s
    assert s["brams"] <= 208 and s["inferences_per_s"] >= 1000, s


def test_synth_cli_summary_lines(capsys):
    from eqspike.commands.synth import _print_summary
    s = {"board": "ulx3s-85f", "layers": [784, 500, 10], "lanes": 1, "fits": True, "luts": 27339,
         "luts_available": 83640, "brams": 199, "brams_available": 208, "fmax_mhz": 28.15, "target_mhz": 50.0,
         "meets_timing": False, "cycles_per_tick": 94790.4, "inferences_per_s": 3.0,
         "activity": {"dataset": "fashion-mnist", "samples": 16}, "bitstream": "b/eqspike.bit"}
    _print_summary(s)
    out = capsys.readouterr().out
    assert "784-500-10, 1 lane(s): fits; luts 27339/83640, brams 199/208" in out
    assert "Fmax 28.15 MHz, target 50.0 MHz: FAILS timing" in out
    assert "94790.4 cycles per tick (fashion-mnist, mean); 3.0 inferences/s" in out
    _print_summary({**s, "fits": False, "fmax_mhz": None, "error": "ERROR: no BELs", "bitstream": None,
                    "over": ["DP16KD 211/208"]})
    out = capsys.readouterr().out
    assert "DOES NOT FIT" in out and "ERROR: no BELs" in out and "Fmax 28" not in out
    assert "needs more than the device has: DP16KD 211/208" in out


def test_collision_masks_name_real_memories():
    """The flow's don't-care-on-collision list (synth.build._NO_COLLISION_MEMORIES) names memories
    the cores really have, and covers every per-neuron state memory: a rename must not silently
    bring the read-first emulation (about 230 iCE40 cells per layer core) back."""
    from rtl.layer import InputCore, LayerCore, state_memories
    from synth.build import _NO_COLLISION_MEMORIES, _union

    cfg = default_config((8, 6, 3))
    cores = [InputCore(cfg)] + [LayerCore(cfg, l) for l in (1, 2)]
    have = {name for core in cores for name in vars(core) if hasattr(getattr(core, name), "read_port")}
    assert set(_NO_COLLISION_MEMORIES) <= have, set(_NO_COLLISION_MEMORIES) - have
    for l in range(cfg.n_layers):
        assert set(state_memories(cfg, l)) <= set(_NO_COLLISION_MEMORIES)
    assert "bias" not in _NO_COLLISION_MEMORIES     # the learning engine writes biases
    assert _union(["n:a", "n:b", "n:c"]) == "n:a n:b n:c %u %u"


def test_sweep_update_lanes_pair_with_the_lane_counts_they_divide():
    base = default_config((64, 100, 10))
    pts = sweep_points(base, lanes=(4, 10), update_lanes=(2, 5))
    assert [(p.lanes, p.update_lanes) for p in pts] == [(1, 1), (4, 1), (10, 1), (4, 2), (10, 2), (10, 5)]


def test_activity_from_trained_weights_names_them():
    from golden_model.float_model import glorot_params
    import numpy as np
    cfg = default_config((64, 12, 10)).replace(lanes=4, update_lanes=2)
    params = glorot_params(cfg.layers, np.random.default_rng(3))
    params.weights = [3 * w for w in params.weights]           # "trained": other spikes than seed 0
    trained = activity(cfg, "digits", samples=2, params=params, weights_name="ck")
    glorot = activity(cfg, "digits", samples=2)
    assert trained["weights"] == "ck" and glorot["weights"].startswith("glorot")
    assert trained["cycles_per_tick_all_spiking"] == glorot["cycles_per_tick_all_spiking"]
    assert trained["cycles_per_inference_mean"] != glorot["cycles_per_inference_mean"]


def test_design_digest_follows_the_design_not_the_source_lines():
    """Moving a line of rtl/ shifts every ``src`` attribute; the gateware, and the digest, stay."""
    il = 'attribute \\src "/a/rtl/layer.py:312"\ncell $add $1\nend\n'
    ys = 'read_rtlil top.il\n(* src = "/a/rtl/x.py:1" *) synth_ecp5\n'
    files = {"top.il": il, "top.ys": ys, "build_top.sh": "echo 1", "top.debug.v": "x"}
    moved = {"top.il": il.replace("/a/rtl/layer.py:312", "/b/rtl/layer.py:330"),
             "top.ys": ys.replace("x.py:1", "x.py:9"), "build_top.sh": "echo 2", "top.debug.v": "x"}
    assert design_digest(files) == design_digest(moved)
    assert design_digest({**files, "top.il": il.replace("$add", "$sub")}) != design_digest(files)
    assert design_digest({**files, "top.ys": ys + "opt\n"}) != design_digest(files)



def test_large_memories_stay_in_block_ram(tmp_path):
    """The LUT-RAM rule for small memories sends a wide, shallow memory of more than
    ``small_ram_bits`` back to block RAM (``synth.build._large_memory_rules``; Yosys itself
    applies the selections). Scaled down: 1 Kbit, 64 words."""
    from amaranth.back import rtlil
    from amaranth.hdl import Module, unsigned
    from amaranth.lib import memory, wiring
    from amaranth.lib.wiring import In, Out

    from synth.build import _large_memory_rules

    shapes = {"tall": (64, 8), "wide": (40, 64), "narrow": (8, 64), "edge": (16, 64), "deep": (200, 8)}

    class Top(wiring.Component):
        def __init__(self):
            super().__init__({"a": In(8), "d": In(64), "o": Out(64)})

        def elaborate(self, platform):
            m, out = Module(), 0
            for name, (depth, width) in shapes.items():
                mem = m.submodules[name] = memory.Memory(shape=unsigned(width), depth=depth, init=[])
                wr, rd = mem.write_port(), mem.read_port()
                m.d.comb += [wr.addr.eq(self.a), rd.addr.eq(self.a), wr.data.eq(self.d), wr.en.eq(1)]
                out = out ^ rd.data
            m.d.comb += self.o.eq(out)
            return m

    (tmp_path / "top.il").write_text(rtlil.convert(Top(), name="top"))
    rules = ["proc; memory_collect", 'setattr -set ram_style "distributed" t:$mem_v2 r:SIZE<=100 %i']
    rules += _large_memory_rules(1024, 100)
    rules.append("select -write block.txt t:$mem_v2 a:ram_style=block %i")
    env = dict(os.environ, **tool_env())
    subprocess.run([env["YOSYS"], "-q", "-p", "read_rtlil top.il; " + "; ".join(rules)],
                   cwd=tmp_path, env=env, check=True)
    block = {name for name in shapes for line in (tmp_path / "block.txt").read_text().split() if name in line}
    # 40 x 64 = 2,560 bits: over 1 Kbit; 8 x 64, 64 x 8 (512) and 16 x 64 (1,024) stay in LUT RAM;
    # 200 x 8 is deeper than the LUT-RAM rule (Yosys decides, no attribute)
    assert block == {"wide"}, (tmp_path / "block.txt").read_text()
    assert _large_memory_rules(1 << 16, 1024)[0].startswith('setattr -set ram_style "block"')


def test_synth_weight_bits_option_fits_the_checkpoint(tmp_path):
    """``eqspike synth --weight-bits 6 --weights CKPT``: every matrix 6 bits, fraction bits fitted
    to the checkpoint's weights (none clipped), lanes and U as given."""
    import argparse

    import numpy as np

    from eqspike.commands.synth import _config
    from experiments.training import Checkpoint
    from golden_model.fixed_model import quantise_params
    from golden_model.float_model import glorot_params

    params = glorot_params((16, 8, 4), np.random.default_rng(0))      # |w| < 0.5
    ckpt = Checkpoint(params=params, config=default_config((16, 8, 4)), training={}, metrics={}, path=tmp_path)
    args = argparse.Namespace(config=None, layers=None, lanes=8, update_lanes=2, weight_bits=6)
    cfg = _config(args, ckpt)
    assert [f.width for f in cfg.weights] == [6, 6] and (cfg.lanes, cfg.update_lanes) == (8, 2)
    _, _, report = quantise_params(cfg, ckpt.params)
    assert sum(report.weight_clipped) == 0
    assert min(f.frac for f in cfg.weights) >= 5      # |w| < 0.5: fraction bits fitted, not kept
    r = _cli("synth", "--weight-bits", "1", "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and "weight-bits" in r.stderr


def test_synth_board_default_mul_stages():
    """eqspike synth builds ULX3S designs with each neuron multiply pipelined (mul_stages 3),
    the iCEBreaker with none; --mul-stages overrides; the summary records it."""
    import argparse

    from eqspike.commands.synth import _config, add_arguments
    p = argparse.ArgumentParser()
    add_arguments(p)
    for argv, want in ((["--board", "ulx3s-85f"], 3), (["--board", "icebreaker"], 1),
                       (["--board", "ulx3s-85f", "--mul-stages", "2"], 2)):
        assert _config(p.parse_args(argv)).mul_stages == want
    with pytest.raises(SystemExit):
        p.parse_args(["--mul-stages", "4"])
    cfg = default_config((784, 500, 10)).replace(mul_stages=3)
    assert summarise(BOARDS["ulx3s-85f"], cfg, None, {"LUT4": 10}, 50e6, "stopped")["mul_stages"] == 3


def test_synth_update_lanes_one_per_layer(capsys):
    """``--update-lanes 10,5,1`` gives each core its own U (input first); one value is every
    core's; a count or value the config refuses is a one-line error naming it."""
    import argparse

    from eqspike.commands.synth import _config, add_arguments
    from golden_model.config import ConfigError
    p = argparse.ArgumentParser()
    add_arguments(p)
    cfg = _config(p.parse_args(["--board", "ulx3s-85f", "--layers", "784,500,10", "--lanes", "500",
                                "--update-lanes", "10,5,1"]))
    assert cfg.update_lanes == (10, 5, 1) and [cfg.groups(l) for l in range(3)] == [79, 100, 10]
    assert _config(p.parse_args(["--lanes", "4", "--update-lanes", "2"])).update_lanes == 2
    with pytest.raises(ConfigError, match=r"update_lanes\[1\] must divide lanes \(500\), not 3"):
        _config(p.parse_args(["--layers", "784,500,10", "--lanes", "500", "--update-lanes", "10,3,1"]))
    with pytest.raises(SystemExit):
        p.parse_args(["--update-lanes", "10,x"])
    assert "comma-separated integers" in capsys.readouterr().err


def test_synth_board_defaults_for_the_paper_network(capsys, tmp_path):
    """The ULX3S 85F builds 784-500-10 at its own defaults (500 lanes, U 5/4/1, 6-bit weights,
    said on one line) unless a setting they cover is given; other boards and networks keep the
    config's."""
    import argparse

    from eqspike.commands.synth import _config, add_arguments
    p = argparse.ArgumentParser()
    add_arguments(p)
    cfg = _config(p.parse_args(["--board", "ulx3s-85f", "--layers", "784,500,10"]))
    assert (cfg.lanes, cfg.update_lanes, [f.width for f in cfg.weights], cfg.mul_stages) == (500, (5, 4, 1), [6, 6], 3)
    assert "ulx3s-85f defaults for 784-500-10: lanes 500, update lanes 5,4,1, 6-bit weights" in capsys.readouterr().out
    cfg = _config(p.parse_args(["--board", "ulx3s-85f", "--layers", "784,500,10", "--lanes", "100"]))
    assert (cfg.lanes, cfg.update_lanes, cfg.weights[0].width) == (100, 1, 8)
    default_config((784, 500, 10)).save(tmp_path / "cfg.json")
    assert _config(p.parse_args(["--board", "ulx3s-85f", "--config", str(tmp_path / "cfg.json")])).lanes == 1
    assert _config(p.parse_args(["--board", "ulx3s-45f", "--layers", "784,500,10"])).lanes == 1
    assert _config(p.parse_args(["--board", "ulx3s-85f", "--layers", "64,100,10"])).lanes == 1
    assert capsys.readouterr().out == ""


def test_route_time_limit_is_a_clear_error(tmp_path, monkeypatch):
    """A route run that does not finish within its time limit (router2 has no iteration limit)
    ends the build with a summary naming it, not a hang or a bare exit status."""
    import shutil
    if shutil.which("timeout") is None:
        pytest.skip("coreutils' timeout is not on PATH: the route run is not bounded here")
    from synth.build import build
    monkeypatch.setenv("EQSPIKE_ROUTE_TIMEOUT", "1")
    s = build(default_config((4, 3, 2)), SMOKE_BOARD, tmp_path, progress=False)
    assert s["fits"] is None and s["meets_timing"] is False and s["fmax_mhz"] is None, s
    assert s["error"].startswith("routing did not finish: the router did not converge"), s
    assert (tmp_path / "eqspike_placed.json").exists() and not (tmp_path / "eqspike.bit").exists()
