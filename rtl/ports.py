"""Interfaces between the network top, its layer cores and the learning engine, as
``amaranth.lib.wiring`` signatures, and the sizes they are built from.

Every signature is declared from the side that drives its requests (the network's controller,
its host decoder, the learning engine) and flipped by the cores that serve them:

:func:`tick_signature`
    The tick controller's broadcast to every core: start the update pass or the clear sweep,
    this tick's schedule ROM words. One ``wiring.connect`` fans it out to all cores.
:func:`accumulate_signature`
    Accumulate phase of a non-input core: enable, and what the core reports back (idle, a
    chunk issued, an event finished) for the controller and the performance counters.
:func:`host_signature`
    Host access to one core's parameter memories and per-neuron registers (writes, state and
    parameter read-back), driven from the command register.
:func:`learning_signature`
    The learning engine's port into a core (:mod:`rtl.learning`), only with ``cfg.learning``.

Sizes shared by these and the cores (:func:`mem_depth`, :func:`index_shape`,
:func:`host_data_width`) live here too, so that :mod:`rtl.layer` and :mod:`rtl.learning` both
import from this module and not from each other.
"""

from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from golden_model.config import EqSpikeConfig

from .arith import reg_shape
from .bus import address_shape

__all__ = ["HostSel", "mem_depth", "queue_depth", "clear_words", "index_shape", "host_data_width", "state_layout",
           "tick_signature", "accumulate_signature", "host_signature", "learning_signature"]


class HostSel(enum.Enum, shape=3):
    """Which parameter memory of a core a host write goes to."""

    NONE, W_BELOW, W_ABOVE, BIAS, TARGET, INPUT = range(6)


def mem_depth(words: int) -> int:
    """Depth of a memory holding ``words`` words: at least 2, so its address has a bit
    (a 1-word memory would get a zero-width address port, which Verilog cannot declare)."""
    return max(words, 2)


def queue_depth(sources: int) -> int:
    """Depth of the spike queue from a layer of ``sources`` neurons: all of them fit (at most one
    spike each per tick); at least 3 because ``SyncFIFOBuffered`` of depth 2 holds a 1-word
    memory (zero-width address) and of depth 1 runs at half rate."""
    return max(sources, 3)


def index_shape(cfg: EqSpikeConfig):
    """Shape of a neuron index in the largest layer."""
    return address_shape(max(cfg.layers))


def host_data_width(cfg: EqSpikeConfig) -> int:
    """Width of the host data word: every register, weight (learning format when learning),
    bias and the 32-bit counters fit."""
    widths = [32, cfg.v.width, cfg.x.width, cfg.s.width + 1, cfg.a.width, cfg.phi.width]
    widths += [cfg.learn_format(l).width for l in range(len(cfg.weights))] + [f.width for f in cfg.biases]
    widths += [cfg.acc_format(l).width for l in range(1, cfg.n_layers)]
    return max(widths)


def clear_words(cfg: EqSpikeConfig, l: int) -> int:
    """Cycles core ``l``'s clear sweep counts: its state words (update groups), and with
    parallel update in some core (``U_l > 1`` for some ``l``) at least the depth of its spike
    queues, which it drains one spike per cycle meanwhile (with one neuron per word in every
    core the largest layer's sweep already outlasts every queue), so that a RESET takes the same
    time whatever spikes were left queued."""
    G = cfg.groups(l)
    if not cfg.parallel_update or l == 0:
        return G
    return max([G] + [cfg.layers[k] for k in (l - 1, l + 1) if k < cfg.n_layers])


def state_layout(cfg: EqSpikeConfig, l: int) -> data.StructLayout:
    """Per-neuron register word of layer ``l`` (the model's register names; input: encoder only)."""
    fields = {}
    if l > 0:
        fields["acc"] = reg_shape(cfg.acc_format(l))
        fields["v"] = reg_shape(cfg.v)
        fields["x"] = reg_shape(cfg.x)
    fields["s"] = reg_shape(cfg.s)
    fields["a"] = reg_shape(cfg.a)
    fields["rho_last"] = reg_shape(cfg.s)
    fields["phi"] = reg_shape(cfg.phi)
    fields["q"] = unsigned(1)
    return data.StructLayout(fields)


def tick_signature(cfg: EqSpikeConfig) -> wiring.Signature:
    """The controller's broadcast to every core (the input core ignores ``eps`` and ``lam``).

    ``upd_start``: pulse, run the update pass over every neuron; ``clr_start``: pulse, zero
    every register and drop queued spikes (new sample); ``eps``, ``lam``, ``inv_lam``: this
    tick's schedule ROM words.
    """
    return wiring.Signature({
        "upd_start": Out(1),
        "clr_start": Out(1),
        "eps": Out(unsigned(cfg.rom_width("eps"))),
        "lam": Out(unsigned(cfg.rom_width("lam"))),
        "inv_lam": Out(unsigned(cfg.rom_width("inv_lam"))),
    })


def accumulate_signature() -> wiring.Signature:
    """Accumulate phase of a non-input core, from the controller's side.

    ``en``: consume queued spikes; ``idle``: queues empty, every event issued (the last sum is
    written this cycle, before any update-pass read); ``issue``: a chunk operation (``lanes``
    synaptic operations) issued this cycle; ``pop``: an event finished issuing this cycle.
    """
    return wiring.Signature({"en": Out(1), "idle": In(1), "issue": In(1), "pop": In(1)})


def host_signature(cfg: EqSpikeConfig, l: int) -> wiring.Signature:
    """Host access to core ``l``, from the command register's side.

    ``we`` writes ``data`` into the parameter memory ``sel`` at neuron ``row`` (weights: row
    ``row``, column ``col`` of the matrix as the core stores it). ``rd_addr`` selects the
    neuron whose registers ``rd_state`` (and ``rd_bias``, ``rd_target``) show the next cycle;
    ``rd_weight`` is the stored ``W_{l-1}[row, col]`` four cycles after ``row``/``col``.
    """
    members = {
        "sel": Out(HostSel),
        "we": Out(1),
        "row": Out(index_shape(cfg)),
        "col": Out(index_shape(cfg)),
        "data": Out(signed(host_data_width(cfg))),
        "rd_addr": Out(index_shape(cfg)),
        "rd_state": In(state_layout(cfg, l)),
    }
    if l > 0:
        members["rd_weight"] = In(reg_shape(cfg.learn_format(l - 1)))
        members["rd_bias"] = In(reg_shape(cfg.biases[l - 1]))
    if l == cfg.n_layers - 1:
        members["rd_target"] = In(reg_shape(cfg.s))
    return wiring.Signature(members)


def learning_signature(cfg: EqSpikeConfig, l: int) -> wiring.Signature:
    """The learning engine's port into core ``l`` (``cfg.learning`` must be set).

    Every core: ``own`` (the engine drives the port this cycle), ``s_addr`` and the held states
    read from it the next cycle (``s_free``, ``s_nudged``; input core: the ``inputs`` word at
    address ``s_addr``, both the same). Non-input cores also take the hold select ``nudged``
    (the update pass writes ``s_nudged`` instead of ``s_free``) and have read/write ports of
    ``w_below`` (``wb_*``) and ``bias`` (``b_*``) and a write port of ``w_above`` (``wa_*``).
    Weight and held-state words are lane-packed like the accumulator; input and bias words
    hold one update group (``U`` values; one ``U`` for every layer in learning builds).
    """
    if cfg.learning is None:
        raise ValueError("the learning port needs a config with a 'learning' section")
    L, U, sw, n = cfg.lanes, cfg.update_lanes_of(l), cfg.s.width, cfg.layers
    if l == 0:    # the inputs, one update group (U inputs) per word
        return wiring.Signature({"own": Out(1), "s_addr": Out(range(mem_depth(cfg.groups(0)))),
                                 "s_free": In(unsigned(U * sw)), "s_nudged": In(unsigned(U * sw))})

    def addr(words):
        return unsigned(ceil_log2(mem_depth(words)))

    C = cfg.chunks(l)
    wbw, bw = cfg.learn_format(l - 1).width, cfg.biases[l - 1].width
    members = {
        "own": Out(1), "nudged": Out(1),
        "s_addr": Out(addr(C)), "s_free": In(unsigned(L * sw)), "s_nudged": In(unsigned(L * sw)),
        "wb_raddr": Out(addr(n[l - 1] * C)), "wb_rdata": In(unsigned(L * wbw)),
        "wb_waddr": Out(addr(n[l - 1] * C)), "wb_wdata": Out(unsigned(L * wbw)), "wb_wen": Out(L),
        # biases: one update group (U biases) per word, lane-writable
        "b_raddr": Out(addr(cfg.groups(l))), "b_rdata": In(signed(bw) if U == 1 else unsigned(U * bw)),
        "b_waddr": Out(addr(cfg.groups(l))), "b_wdata": Out(signed(bw) if U == 1 else unsigned(U * bw)),
        "b_wen": Out(U),
    }
    if l + 1 < len(n):
        waw = cfg.learn_format(l).width
        members.update({"wa_waddr": Out(addr(n[l + 1] * C)), "wa_wdata": Out(unsigned(L * waw)),
                        "wa_wen": Out(L)})
    return wiring.Signature(members)

