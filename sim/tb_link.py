"""cocotb testbench of the host-link fuzz top (:class:`sim.linkfuzz.LinkFuzzTop`), launched by
:func:`sim.linkfuzz.run_fuzz` through :func:`sim.runner.run_job`.

Job keys: ``config``, ``frames``, ``seed``, ``timeout``. For every frame of
:class:`sim.linkfuzz.FrameGenerator`: send it byte by byte (garbage first, idle gaps where the
frame says), collect exactly one response, then read everything back through the probe and
compare (see :mod:`sim.linkfuzz` for the checks). Wrong responses and state errors are
counted (the first few described) and the run goes on from the state read back; a hang ends
the run. Any error fails the test after the result is written.
"""

from __future__ import annotations

import struct

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from golden_model.config import EqSpikeConfig
from rtl.network import Op, Reg, Space, Status
from sim.driver import CLOCK_NS, CommandPacker, HostDriver
from sim.linkfuzz import FrameGenerator, ParamShadow, expected
from sim.tb_network import run_job
from synth.protocol import (REG, SPACE, STATUS_REG, SYNC_RSP, HostOp, HostStatus, info_bytes,
                            read_bytes)

#: Errors described in the result (the counts cover all).
MAX_DETAILS = 10
#: Counters per layer (the others are one for the network).
_PER_LAYER = ("issues", "events", "spikes", "overflows")


class Hang(AssertionError):
    """The link stopped taking bytes or answering."""


class LinkPort:
    """Drives the link's ``rx`` stream and collects its ``tx`` stream, one cycle at a time."""

    def __init__(self, dut, limit: int):
        self.dut, self.clk, self.limit = dut, dut.clk, limit
        self.sent = self.received = 0
        dut.rx__valid.value = 0
        dut.tx__ready.value = 0

    async def send(self, data: bytes, gaps):
        dut = self.dut
        for byte, gap in zip(data, gaps):
            if gap:
                dut.rx__valid.value = 0
                await ClockCycles(self.clk, gap)
            dut.rx__payload.value = byte
            dut.rx__valid.value = 1
            for _ in range(self.limit):
                await ReadOnly()
                taken = dut.rx__ready.value == 1
                early = dut.tx__valid.value == 1
                await RisingEdge(self.clk)
                if taken or early:
                    break
            else:
                raise Hang(f"the link took no byte for {self.limit} cycles")
            if early and not taken:
                dut.rx__valid.value = 0
                return False           # answered before the frame ended
            self.sent += 1
        dut.rx__valid.value = 0
        return True

    async def response(self) -> bytes:
        """One response frame (sync, status, length, payload, checksum), as it came."""
        dut = self.dut
        dut.tx__ready.value = 1
        got = bytearray()
        while len(got) < 4 or len(got) < 5 + (got[2] | got[3] << 8):
            if dut.tx__valid.value != 1:
                t = await First(RisingEdge(dut.tx__valid), ClockCycles(self.clk, self.limit))
                if isinstance(t, ClockCycles):
                    dut.tx__ready.value = 0
                    raise Hang(f"no response byte for {self.limit} cycles (got {bytes(got).hex()})")
            await ReadOnly()
            if dut.tx__valid.value == 1:
                got.append(int(dut.tx__payload.value))
            await RisingEdge(self.clk)
            if got and got[0] != SYNC_RSP:
                break
        dut.tx__ready.value = 0
        self.received += len(got)
        return bytes(got)


class Probe:
    """Everything the host can change, read back through the network's READ command.

    The reads are the network's host handshake with as few simulator round trips as possible
    (the response is taken the cycle it comes): over a hundred per frame, they are most of the
    run's time."""

    def __init__(self, dut, cfg: EqSpikeConfig):
        self.dut, self.cfg = dut, cfg
        self.drv = HostDriver(dut, cfg)         # reset and the hang limits
        self.packer = CommandPacker(cfg)
        self.limit = self.drv.response_limit(Op.READ)
        self.reads = 0
        self.regs = [[r for r in REG if l > 0 or REG[r] >= REG["s"]] for l in range(cfg.n_layers)]

    async def _read(self, space, layer=0, reg=0, row=0, col=0) -> int:
        dut, clk = self.dut, self.dut.clk
        self.reads += 1
        dut.cmd__payload.value = self.packer.pack(op=Op.READ, space=space, layer=layer, reg=reg, row=row, col=col)
        dut.cmd__valid.value = 1
        for _ in range(self.limit):
            await ReadOnly()
            taken = dut.cmd__ready.value == 1
            await RisingEdge(clk)
            if taken:
                break
        else:
            raise Hang(f"the network took no probe command for {self.limit} cycles")
        dut.cmd__valid.value = 0
        if dut.rsp__valid.value != 1:
            t = await First(RisingEdge(dut.rsp__valid), ClockCycles(clk, self.limit))
            if isinstance(t, ClockCycles):
                raise Hang(f"no answer to a probe READ for {self.limit} cycles")
        value = dut.rsp__payload.value.to_signed()
        await RisingEdge(clk)        # rsp.ready is held high: taken at this edge
        return value

    async def snapshot(self, shadow: ParamShadow) -> dict:
        """``{"params": {key: value}, "state": {(layer, reg): [values]}, "status": {name: v or [v per layer]}}``."""
        dut = self.dut
        dut.probe.value = 1
        dut.rsp__ready.value = 1
        await RisingEdge(dut.clk)
        params = {}
        for key, space, layer, row, col, _ in shadow.items():
            params[key] = await self._read(Space[space.upper()], layer, row=row, col=col)
        state = {}
        for l, n in enumerate(self.cfg.layers):
            for name in self.regs[l]:
                state[(l, name)] = [await self._read(Space.STATE, l, Reg[name.upper()], row=i) for i in range(n)]
        status = {}
        for name in STATUS_REG:
            layers = range(self.cfg.n_layers) if name in _PER_LAYER else [0]
            status[name] = [await self._read(Space.STATUS, l, Status[name.upper()]) for l in layers]
        dut.probe.value = 0
        dut.rsp__ready.value = 0
        await RisingEdge(dut.clk)
        return {"params": params, "state": state, "status": status}


def _expected_payload(cfg, op, payload: bytes, before: dict, tick_after: int, info: bytes):
    """The response payload of an accepted request, from the state read before it (RUN: the
    tick counter after it)."""
    rb = read_bytes(cfg)

    def values(vs):
        return b"".join((v & ((1 << (8 * rb)) - 1)).to_bytes(rb, "little") for v in vs)

    if op == HostOp.INFO:
        return info
    if op in (HostOp.WRITE, HostOp.RESET):
        return b""
    if op == HostOp.RUN:
        return values([tick_after])
    if op == HostOp.SPIKES:
        q = before["state"][(payload[0], "q")]
        return np.packbits(np.array(q, dtype=np.uint8), bitorder="little").tobytes()
    if op == HostOp.PREDICT:
        s = before["state"][(cfg.n_layers - 1, "s")]
        return struct.pack("<H", int(np.argmax(s)))
    space, layer, reg, row, count = struct.unpack("<BBBHH", payload)
    if space == SPACE["status"]:
        name = [n for n, v in STATUS_REG.items() if v == reg][0]
        vals = before["status"][name]
        return values([vals[layer] if name in _PER_LAYER else vals[0]])
    name = [n for n, v in REG.items() if v == reg][0]
    return values(before["state"][(layer, name)][row:row + count])


class Campaign:
    """Counts and the first few error descriptions."""

    def __init__(self, result: dict):
        self.r = result
        result.update(frames=0, kinds={}, statuses={}, hangs=0, wrong_responses=0, state_errors=0,
                      payloads_checked=0, errors=[])

    def count(self, kind, status):
        self.r["frames"] += 1
        self.r["kinds"][kind] = self.r["kinds"].get(kind, 0) + 1
        self.r["statuses"][status] = self.r["statuses"].get(status, 0) + 1

    def error(self, what: str, i: int, frame, detail: str):
        self.r[what] += 1
        if len(self.r["errors"]) < MAX_DETAILS:
            self.r["errors"].append(f"frame {i} ({frame.kind}, {frame.data.hex()}): {detail}")


def _check_state(cfg, camp, i, frame, exp, before, after):
    """Registers and counters after the frame against before it."""
    accepted = exp.status == HostStatus.OK
    if accepted and exp.op == HostOp.RUN:
        n = struct.unpack("<H", exp.payload[1:3])[0]
        want = min(before["status"]["tick"][0] + n, cfg.n_steps)
        if after["status"]["tick"][0] != want:
            camp.error("state_errors", i, frame, f"tick {after['status']['tick'][0]} after RUN, expected {want}")
        return
    if accepted and exp.op == HostOp.RESET:
        if any(after["status"]["tick"]):
            camp.error("state_errors", i, frame, "tick counter not 0 after RESET")
        return
    wrote_input = any(w[0] == "input" for w in exp.writes)
    for key, vals in before["state"].items():
        if wrote_input and key in ((0, "s"), (0, "rho_last")):
            continue            # the input memory is layer 0's s (checked as a parameter)
        if after["state"][key] != vals:
            camp.error("state_errors", i, frame, f"register {key} changed: {vals} -> {after['state'][key]}")
    if after["status"] != before["status"]:
        camp.error("state_errors", i, frame, f"counters changed: {before['status']} -> {after['status']}")


async def _run(dut, job: dict, result: dict):
    cfg = EqSpikeConfig.from_dict(job["config"])
    frames, timeout = int(job["frames"]), int(job["timeout"])
    Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start()
    dut.probe.value = 0
    probe = Probe(dut, cfg)
    port = LinkPort(dut, limit=probe.drv.response_limit(Op.RUN, 3) + timeout + 1000)
    await probe.drv.start()
    camp = Campaign(result)
    gen, shadow = FrameGenerator(cfg, int(job["seed"])), ParamShadow(cfg)
    info = info_bytes(cfg, 1_000_000, 100_000)
    before = await probe.snapshot(shadow)
    progress = open(job["progress"], "a") if job.get("progress") else None
    for i in range(frames):
        frame = gen.frame()
        exp = expected(cfg, frame)
        try:
            await port.send(frame.garbage, [0] * len(frame.garbage))
            whole = await port.send(frame.data, frame.gaps)
            rsp = await port.response()
        except Hang as e:
            camp.error("hangs", i, frame, str(e))
            raise AssertionError(f"hang at frame {i}: {e}") from None
        camp.count(frame.kind, exp.status.name)
        await ReadOnly()
        idle = dut.busy.value == 0 and dut.tx__valid.value == 0
        await RisingEdge(dut.clk)
        after = await probe.snapshot(shadow)
        await ReadOnly()
        idle = idle and dut.tx__valid.value == 0 and dut.busy.value == 0   # no second response
        await RisingEdge(dut.clk)
        # -- the response ---------------------------------------------------------------------------
        problem = None
        if not whole:
            problem = "answered before the frame ended"
        elif len(rsp) < 5 or rsp[0] != SYNC_RSP or sum(rsp[1:]) % 256:
            problem = f"malformed response {rsp.hex()}"
        elif rsp[1] != exp.status:
            problem = f"status {HostStatus(rsp[1]).name if rsp[1] < len(HostStatus) else rsp[1]}, " \
                      f"expected {exp.status.name} (response {rsp.hex()})"
        elif not idle:
            problem = "link not idle after its response (busy, or a second response)"
        else:
            want = (_expected_payload(cfg, exp.op, exp.payload, before, after["status"]["tick"][0], info)
                    if exp.status == HostStatus.OK else b"")
            camp.r["payloads_checked"] += exp.status == HostStatus.OK
            if rsp[4:-1] != want:
                problem = f"payload {rsp[4:-1].hex()}, expected {want.hex()}"
        if problem:
            camp.error("wrong_responses", i, frame, problem)
        # -- parameters and state ----------------------------------------------------------------------
        for w in exp.writes:
            shadow.apply(*w)
        for key, _, _, _, _, value in shadow.items():
            if after["params"][key] != value:
                camp.error("state_errors", i, frame, f"parameter {key} = {after['params'][key]}, expected {value}")
                shadow.apply(*_as_write(key, after["params"][key]))
        _check_state(cfg, camp, i, frame, exp, before, after)
        before = after
        if progress and (i + 1) % 50 == 0:
            progress.write(f"{i + 1}\n")
            progress.flush()
    if progress:
        progress.write(f"{frames}\n")
        progress.close()
    result.update(bytes_sent=port.sent, bytes_received=port.received, probe_reads=probe.reads,
                  cycles=round(get_sim_time("ns") / CLOCK_NS))
    bad = result["wrong_responses"] + result["state_errors"]
    if bad:
        raise AssertionError(f"{result['wrong_responses']} wrong responses, {result['state_errors']} state "
                             f"errors; first: {result['errors'][0]}")


def _as_write(key, value):
    """A shadow write that sets parameter ``key`` to ``value`` (to go on from the state read)."""
    if key[0] == "weight":
        return "weight", key[1], key[2], key[3], [value]
    if key[0] == "bias":
        return "bias", key[1], key[2], 0, [value]
    return key[0], 0, key[1], 0, [value]


@cocotb.test()
async def fuzz_link(dut):
    """Every frame of the job, each checked as the module docstring says."""
    await run_job(dut, _run, {})
