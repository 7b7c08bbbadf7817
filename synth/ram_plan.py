"""Block RAM for the small memories that gain most from it, within the device's block RAMs (ECP5).

The ECP5 flow keeps memories of at most ``small_ram_depth`` words in LUT RAM (``synth.build``):
Yosys would otherwise spend a whole 18 Kbit EBR on each, or several for a wide word. Some small
memories are the other way round: a 783-word spike queue takes 147 LUT-RAM cells (16 words x 4
bits each, about 590 LUTs) or one EBR. :func:`plan_block_ram` moves such memories to block RAM,
best gain first (LUT-RAM cells saved per EBR spent, at least ``min_gain``), while the block RAMs
of the whole design stay within the device's count less ``spare``.

Shapes come from the design's RTLIL (:func:`rtlil_memories`); the costs are the mappings Yosys
uses: :func:`ebr_cost` the best DP16KD aspect ratio (``EBR_SHAPES``), :func:`lutram_cost`
``TRELLIS_DPR16X4`` cells.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["EBR_SHAPES", "MIN_GAIN", "Mem", "rtlil_memories", "ebr_cost", "lutram_cost", "plan_block_ram",
           "yosys_rules"]

#: DP16KD shapes (words, bits) of one 18 Kbit EBR; 36 bits is the pseudo-dual-port width.
EBR_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
#: LUT-RAM cells (16 x 4 bits) an EBR must replace to be worth spending on a small memory.
MIN_GAIN = 64


@dataclass(frozen=True)
class Mem:
    """A memory of the design: ``module`` (RTLIL module name), ``name``, ``depth`` words of
    ``width`` bits; ``writable``: has a write port (else a ROM, which Yosys maps itself)."""
    module: str
    name: str
    depth: int
    width: int
    writable: bool

    @property
    def path(self) -> str:
        return f"{self.module}.{self.name}"


def ebr_cost(depth: int, width: int) -> int:
    """EBRs of a ``depth`` x ``width`` memory: ``min over shapes (d, w) of ceil(width / w) *
    ceil(depth / d)``."""
    return min(-(-width // w) * -(-depth // d) for d, w in EBR_SHAPES)


def lutram_cost(depth: int, width: int) -> int:
    """``TRELLIS_DPR16X4`` cells of a ``depth`` x ``width`` memory: ``ceil(depth / 16) *
    ceil(width / 4)``."""
    return -(-depth // 16) * -(-width // 4)


def rtlil_memories(il: str) -> list:
    """The memories (``memory width W size N \\name``) of an RTLIL text, by module."""
    # a memory is writable when a $memwr cell of its module names it (MEMID)
    out = []
    module, mems, wr, cell = None, [], set(), None
    for line in il.splitlines() + ["module \\<end>"]:
        s = line.strip()
        if s.startswith("module "):
            if module is not None:
                out.extend(Mem(module, n, d, w, n in wr) for n, d, w in mems)
            module, mems, wr, cell = s.split(None, 1)[1].lstrip("\\"), [], set(), None
            continue
        m = re.match(r"memory width (\d+) size (\d+) \\(\S+)$", s)
        if m:
            mems.append((m.group(3), int(m.group(2)), int(m.group(1))))
        elif s.startswith("cell "):
            cell = s.split()[1]
        elif cell and cell.startswith("$memwr"):
            m = re.match(r'parameter \\MEMID "\\\\(\S+)"$', s)
            if m:
                wr.add(m.group(1))
    return out


def plan_block_ram(mems, block_rams: int, small_depth: int, small_bits: int, movable=None,
                   min_gain: int = MIN_GAIN, spare: int = 2) -> list:
    """The small memories to move to block RAM: those the LUT-RAM rule takes (writable, at most
    ``small_depth`` words, at most ``small_bits`` bits) and named in ``movable`` (None: any),
    best :func:`lutram_cost` per :func:`ebr_cost` first, gain at least ``min_gain``, while the
    design's EBRs (the memories already bound for block RAM, ROMs counted as one EBR each, plus
    the moved ones) stay within ``block_rams - spare``."""
    used, small = 0, []
    for mem in mems:
        if not mem.writable:
            used += 1
        elif mem.depth <= small_depth and mem.depth * mem.width <= small_bits:
            if movable is None or mem.name in movable:
                small.append(mem)
        else:
            used += ebr_cost(mem.depth, mem.width)
    picked = []
    cost = {m: ebr_cost(m.depth, m.width) for m in small}
    gain = {m: lutram_cost(m.depth, m.width) / cost[m] for m in small}
    for mem in sorted(small, key=lambda m: (-gain[m], m.path)):
        if gain[mem] >= min_gain and used + cost[mem] <= block_rams - spare:
            picked.append(mem)
            used += cost[mem]
    return picked


def yosys_rules(picked) -> list:
    """Yosys commands that give each picked memory (a ``$mem_v2`` cell, after ``memory_collect``)
    ``ram_style "block"``."""
    return [f"setattr -set ram_style \"block\" {mem.module}/{mem.name}" for mem in picked]
