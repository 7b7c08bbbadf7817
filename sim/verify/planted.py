"""Planted RTL bugs: the campaign must catch each (docs/cosim.md, "Planted bugs").

Each bug is injected without editing ``rtl/``: :func:`planted` replaces one RTL helper, in
every ``rtl`` module that holds it, while the Verilog is generated, and points the build cache
at a separate root (the cache key knows nothing of the patch, so a planted build must never
share a directory with a clean one).

=============  ==================================================================================
``v_wrap``     ``rtl.neuron.decode_finish`` (the decoder's last step, in the update pipeline
               and in ``decode_v``) narrows ``v`` by wrap-around where its rule is saturate
``s_floor``    ``rtl.neuron.state_finish`` (the state step's last step, also in ``state_step``)
               rounds ``s`` by floor where its rule is half_up (nearest)
``queue_full`` the spike queues (``rtl.layer``'s ``SyncFIFOBuffered``) raise their full flag one
               entry early (``w_rdy`` low at ``level == depth - 1``): the last spike of a tick in
               which every neuron of the layer spiked never enters, and the bus stalls for good
``lfsr_draw``  ``rtl.learning.LFSR`` drops its single-draw advance (``step_one``: the sign draw of
               every TRAIN sample and the bias pass's draws)
=============  ==================================================================================
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import sys
from pathlib import Path

from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import FIFOInterface, SyncFIFOBuffered

from runtime.environ import restore_environ, save_environ

__all__ = ["PLANTS", "planted", "planted_root"]

PLANTS = ("v_wrap", "s_floor", "queue_full", "lfsr_draw")
_RTL_MODULES = ("rtl.arith", "rtl.neuron", "rtl.layer", "rtl.learning", "rtl.network", "rtl.verilog")


def _v_wrap(orig):
    def decode_finish(cfg, *args, **kwargs):
        return orig(cfg.replace(v=dataclasses.replace(cfg.v, overflow="wrap")), *args, **kwargs)
    return decode_finish


def _s_floor(orig):
    def state_finish(cfg, *args, **kwargs):
        return orig(cfg.replace(s=dataclasses.replace(cfg.s, rounding="floor")), *args, **kwargs)
    return state_finish


def _early_full(orig):
    class EarlyFullFIFO(Elaboratable, FIFOInterface):
        """``orig`` whose ``w_rdy`` drops one entry early (the planted off-by-one)."""

        def __init__(self, *, width, depth):
            super().__init__(width=width, depth=depth)
            self.level = Signal(range(depth + 1))

        def elaborate(self, platform):
            m = Module()
            inner = m.submodules.inner = orig(width=self.width, depth=self.depth)
            ready = inner.w_rdy & (inner.level < self.depth - 1)
            m.d.comb += [inner.w_data.eq(self.w_data), inner.w_en.eq(self.w_en & ready), self.w_rdy.eq(ready),
                         self.r_data.eq(inner.r_data), self.r_rdy.eq(inner.r_rdy), inner.r_en.eq(self.r_en),
                         self.level.eq(inner.level), self.w_level.eq(inner.level), self.r_level.eq(inner.level)]
            return m
    return EarlyFullFIFO


def _dropped_draw(orig):
    class DroppedDrawLFSR(wiring.Component):
        """``orig`` whose ``step_one`` does nothing (the planted dropped draw)."""

        def __init__(self, seed, bits, lanes):
            self._inner = orig(seed, bits, lanes)
            super().__init__(dict(self._inner.signature.members.items()))

        def elaborate(self, platform):
            m = Module()
            inner = m.submodules.inner = self._inner
            m.d.comb += [self.draws.eq(inner.draws), self.state.eq(inner.state),
                         inner.step_many.eq(self.step_many)]
            return m
    return DroppedDrawLFSR


#: plant -> (name of the RTL helper, factory of its replacement from the original)
_PATCHES = {"v_wrap": ("decode_finish", _v_wrap), "s_floor": ("state_finish", _s_floor),
            "queue_full": ("SyncFIFOBuffered", _early_full), "lfsr_draw": ("LFSR", _dropped_draw)}


def planted_root(plant: str) -> Path:
    """Build cache of the ``plant`` variant: beside the normal one, sharing its Verilator runtime."""
    from sim.runner import build_root
    root = build_root()
    out = root.parent / f"{root.name}-planted-{plant}"
    out.mkdir(parents=True, exist_ok=True)
    rt = out / "_verilator_runtime"
    if not rt.exists():
        (root / "_verilator_runtime").mkdir(parents=True, exist_ok=True)
        try:
            rt.symlink_to(root / "_verilator_runtime", target_is_directory=True)
        except FileExistsError:
            pass
    return out


@contextlib.contextmanager
def planted(plant: str | None):
    """Within the block, generated Verilog carries ``plant`` and builds go to :func:`planted_root`.
    ``None``: does nothing."""
    if plant is None:
        yield
        return
    if plant not in PLANTS:
        raise ValueError(f"planted bug must be one of {', '.join(PLANTS)}, not {plant!r}")
    name, factory = _PATCHES[plant]
    mods = [importlib.import_module(m) for m in _RTL_MODULES]
    original = next((getattr(m, name) for m in mods if hasattr(m, name)), None)
    if original is None:
        raise RuntimeError(f"planted bug {plant}: no rtl module defines {name} any more; update sim/verify/planted.py")
    if name == "SyncFIFOBuffered":
        original = SyncFIFOBuffered
    replacement = factory(original)
    patched = [m for m in list(sys.modules.values())
               if getattr(m, "__name__", "").startswith("rtl.") and getattr(m, name, None) is original]
    saved = save_environ(("EQSPIKE_COSIM_BUILD",))
    os.environ["EQSPIKE_COSIM_BUILD"] = str(planted_root(plant))
    for m in patched:
        setattr(m, name, replacement)
    try:
        yield
    finally:
        for m in patched:
            setattr(m, name, original)
        restore_environ(saved)
