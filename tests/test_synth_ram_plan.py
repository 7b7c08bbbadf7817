"""synth.ram_plan: the costs of a memory in EBRs and LUT-RAM cells, the plan's choice within the
device's block RAMs, and the Yosys rule it writes (Yosys applies it to a module of a hierarchy)."""

import os
import subprocess

from synth.build import tool_env
from synth.ram_plan import Mem, ebr_cost, lutram_cost, plan_block_ram, rtlil_memories, yosys_rules


def test_costs_follow_the_dp16kd_shapes_and_dpr16x4_cells():
    assert ebr_cost(784, 3000) == 167        # 1024 x 18: the paper's W0 at 500 six-bit lanes
    assert ebr_cost(500, 60) == 2            # 512 x 36
    assert ebr_cost(783, 10) == 1            # 1024 x 18
    assert ebr_cost(10, 3000) == 84
    assert ebr_cost(16384, 1) == 1 and ebr_cost(16385, 1) == 2
    assert lutram_cost(783, 10) == 49 * 3
    assert lutram_cost(16, 4) == 1 and lutram_cost(17, 5) == 4


def test_plan_takes_the_best_gain_first_within_the_budget():
    mems = [Mem("top.a", "queue", 783, 10, True),      # 147 cells / 1 EBR
            Mem("top.b", "w", 500, 60, True),          # 480 / 2 = 240
            Mem("top.b", "state", 79, 480, True),      # 600 / 14: under the gain
            Mem("top.c", "big", 784, 3000, True),      # over small_bits: block RAM anyway (167)
            Mem("top", "rom", 150, 14, False)]         # a ROM: counted as one EBR
    picked = plan_block_ram(mems, block_rams=208, small_depth=1024, small_bits=1 << 16)
    assert [m.path for m in picked] == ["top.b.w", "top.a.queue"]
    # 167 + 1 (ROM) + 2 = 170 leaves no room for the queue under 172 - 2 spare
    assert [m.path for m in plan_block_ram(mems, 172, 1024, 1 << 16)] == ["top.b.w"]
    # under 171 - 2 the matrix does not fit, the next best (the queue) does
    assert [m.path for m in plan_block_ram(mems, 171, 1024, 1 << 16)] == ["top.a.queue"]
    assert plan_block_ram(mems, 170, 1024, 1 << 16) == []
    assert plan_block_ram(mems, 208, 1024, 1 << 16, min_gain=1000) == []
    # only the named memories move (the flow names those read into a register)
    assert [m.path for m in plan_block_ram(mems, 208, 1024, 1 << 16, movable=("queue",))] == ["top.a.queue"]


def test_rule_reaches_a_memory_of_a_submodule(tmp_path):
    """The design's RTLIL names the memories; the rule written for one of them (in a module whose
    name has dots, as Amaranth writes hierarchy) marks that memory and no other."""
    from amaranth.back import rtlil
    from amaranth.hdl import Module, unsigned
    from amaranth.lib import memory, wiring
    from amaranth.lib.wiring import In, Out

    class Leaf(wiring.Component):
        def __init__(self, depth, width):
            self.depth, self.width = depth, width
            super().__init__({"a": In(10), "d": In(width), "o": Out(width)})

        def elaborate(self, platform):
            m = Module()
            mem = m.submodules.store = memory.Memory(shape=unsigned(self.width), depth=self.depth, init=[])
            wr, rd = mem.write_port(), mem.read_port()
            m.d.comb += [wr.addr.eq(self.a), rd.addr.eq(self.a), wr.data.eq(self.d), wr.en.eq(1), self.o.eq(rd.data)]
            return m

    class Top(wiring.Component):
        def __init__(self):
            super().__init__({"a": In(10), "d": In(64), "o": Out(64)})

        def elaborate(self, platform):
            m = Module()
            m.submodules.queue = q = Leaf(783, 10)
            m.submodules.state = s = Leaf(79, 64)
            for leaf in (q, s):
                m.d.comb += [leaf.a.eq(self.a), leaf.d.eq(self.d)]
            m.d.comb += self.o.eq(q.o ^ s.o)
            return m

    il = rtlil.convert(Top(), name="top")
    mems = rtlil_memories(il)
    assert {(m.path, m.depth, m.width, m.writable) for m in mems} == {
        ("top.queue.store", 783, 10, True), ("top.state.store", 79, 64, True)}
    picked = plan_block_ram(mems, 10, 1024, 1 << 16)
    assert [m.path for m in picked] == ["top.queue.store"]
    (tmp_path / "top.il").write_text(il)
    script = ["read_rtlil top.il", "proc; memory_collect", 'setattr -set ram_style "distributed" t:$mem_v2']
    script += yosys_rules(picked)
    script.append("select -write block.txt t:$mem_v2 a:ram_style=block %i")
    env = dict(os.environ, **tool_env())
    subprocess.run([env["YOSYS"], "-q", "-p", "; ".join(script)], cwd=tmp_path, env=env, check=True)
    assert (tmp_path / "block.txt").read_text().split() == ["top.queue/store"]
