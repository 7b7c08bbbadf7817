"""Copies of a control flip-flop, one per bank of the flip-flops it drives.

A control signal that enables or selects thousands of flip-flops spread over the die (the
one-word accumulator of a 500-lane core has 8,000) is one net with thousands of sinks: the
router cannot fit it, and its delay sets the clock. :func:`register_copies` gives each bank of
loads its own register, loaded with the same next value every cycle, so each net stays local.
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Instance, Mux, ResetSignal, Signal

__all__ = ["register_copies", "keeps_copies"]


def keeps_copies(platform) -> bool:
    """True where the copies are flip-flop primitives that synthesis cannot merge (ECP5)."""
    return getattr(platform, "family", None) == "ecp5"


def register_copies(m, platform, d, n: int, name: str) -> list:
    """``n`` one-bit registers ``q_i`` with ``q_i(t+1) = d(t)`` and reset value 0: ``n``
    copies of the register ``m.d.sync += q.eq(d)``.

    Yosys merges flip-flops with the same inputs (``opt_merge``, whatever ``keep`` attribute
    the signals carry), which would undo the copies. So on an ECP5 platform
    (:func:`keeps_copies`) each copy is a ``TRELLIS_FF`` primitive, the domain's reset folded
    into its data, ``DI = rst ? 0 : d`` (what ``m.d.sync`` builds); anywhere else (simulation,
    ``eqspike verilog``) they are plain ``sync`` registers with the same value every cycle."""
    if n < 1:
        raise ValueError(f"register_copies: n must be at least 1, got {n}")
    copies = [Signal(name=f"{name}_copy{i}") for i in range(n)]
    if keeps_copies(platform):
        di = Signal(name=f"{name}_next")
        m.d.comb += di.eq(Mux(ResetSignal("sync", allow_reset_less=True), 0, d))
        for i, q in enumerate(copies):
            m.submodules[f"{name}_ff{i}"] = Instance(
                "TRELLIS_FF", p_GSR="DISABLED", p_CEMUX="1", p_CLKMUX="CLK", p_LSRMUX="LSR",
                p_REGSET="RESET", p_SRMODE="LSR_OVER_CE",
                i_CLK=ClockSignal("sync"), i_DI=di, i_CE=1, i_LSR=0, o_Q=q)
    else:
        m.d.sync += [q.eq(d) for q in copies]
    return copies
