"""rtl.replicas: copies of a control register, one per bank of its loads, that Yosys keeps on
ECP5; and the one-word accumulator's banks that use them (rtl.layer)."""

import json
import os
import random
import subprocess
from types import SimpleNamespace

from amaranth.back import rtlil
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from golden_model.config import default_config
from rtl.layer import ACC_BANK_BITS, LayerCore, acc_banks
from rtl.replicas import keeps_copies, register_copies
from synth.build import tool_env

ECP5 = SimpleNamespace(family="ecp5")


def _copies_design(platform, n=6):
    m = Module()
    a, b = Signal(), Signal()
    copies = register_copies(m, platform, a & b, n, "en")
    word, data = Signal(8 * n), Signal(8 * n)
    for i, q in enumerate(copies):      # each copy enables its own byte of a word
        with m.If(q):
            m.d.sync += word[8 * i:8 * i + 8].eq(data[8 * i:8 * i + 8])
    return m, (a, b, data, word), copies


def test_copies_follow_their_next_value_one_cycle_later():
    m, (a, b, _, _), copies = _copies_design(None)
    sim = Simulator(m)
    sim.add_clock(1e-6)
    rng = random.Random(3)
    seen = []

    async def bench(ctx):
        for _ in range(40):
            va, vb = rng.randint(0, 1), rng.randint(0, 1)
            ctx.set(a, va)
            ctx.set(b, vb)
            await ctx.tick()
            seen.append([ctx.get(q) for q in copies] == [va & vb] * len(copies))

    sim.add_testbench(bench)
    sim.run()
    assert len(seen) == 40 and all(seen)


def _yosys_ffs(tmp_path, platform, n=6):
    m, ports, _ = _copies_design(platform, n)
    (tmp_path / "d.il").write_text(rtlil.convert(m, ports=list(ports)))
    env = dict(os.environ, **tool_env())
    subprocess.run([env["YOSYS"], "-q", "-p", "read_rtlil d.il; synth_ecp5 -top top -json d.json"],
                   cwd=tmp_path, env=env, check=True)
    cells = json.loads((tmp_path / "d.json").read_text())["modules"]["top"]["cells"].values()
    types = [c["type"] for c in cells]
    return types.count("TRELLIS_FF")


def test_yosys_keeps_the_ecp5_copies_and_merges_plain_ones(tmp_path):
    """The reason for the primitive: plain copies of one register are merged into one
    flip-flop by synth_ecp5; TRELLIS_FF instances all stay (6 copies + 48 word bits)."""
    assert keeps_copies(ECP5) and not keeps_copies(None) and not keeps_copies(SimpleNamespace(family="ice40"))
    (tmp_path / "plain").mkdir()
    (tmp_path / "ecp5").mkdir()
    assert _yosys_ffs(tmp_path / "plain", None) == 1 + 48
    assert _yosys_ffs(tmp_path / "ecp5", ECP5) == 6 + 48


def test_accumulator_banks_cover_the_word():
    assert acc_banks(500, 16) == [(b * 256, min(b * 256 + 256, 8000)) for b in range(32)]
    assert acc_banks(10, 17) == [(0, 17 * 10)]        # 15 lanes per bank: one bank
    assert acc_banks(3, 300) == [(0, 300), (300, 600), (600, 900)]   # wider than a bank: one lane each
    for lanes, width in ((1, 9), (40, 13), (77, 16)):
        banks = acc_banks(lanes, width)
        assert banks[0][0] == 0 and banks[-1][1] == lanes * width
        assert all(hi == lo2 for (_, hi), (lo2, _) in zip(banks, banks[1:]))
        assert all((hi - lo) % width == 0 and hi - lo <= max(ACC_BANK_BITS, width) for lo, hi in banks)


def test_one_word_accumulator_gets_three_controls_per_bank_on_ecp5():
    """40 lanes of a one-word accumulator (C = 1): each bank of ACC_BANK_BITS bits has its
    own zero, load and shift flip-flop; a core with an accumulator memory (C > 1) has none."""
    cfg = default_config((40, 40, 4)).replace(lanes=40, update_lanes=4)
    core = LayerCore(cfg, 1)
    assert core.acc_mem is None
    banks = len(acc_banks(40, cfg.acc_format(1).width))
    assert banks > 1
    text = rtlil.convert(core, platform=ECP5)
    assert text.count("cell \\TRELLIS_FF") == 3 * banks
    assert rtlil.convert(LayerCore(cfg, 1)).count("TRELLIS_FF") == 0     # simulation: plain registers
    chunked = LayerCore(default_config((40, 40, 4)).replace(lanes=8), 1)
    assert chunked.acc_mem is not None
    assert rtlil.convert(chunked, platform=ECP5).count("TRELLIS_FF") == 0
