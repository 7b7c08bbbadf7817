"""The host-link frame protocol, shared by the gateware (:mod:`synth.hostlink`) and the host
driver (:mod:`synth.driver`). Pure Python: no Amaranth import.

Frames (multi-byte fields little-endian)::

    request   A5 | op | len[2] | payload[len] | chk
    response  5A | status | len[2] | payload[len] | chk

``chk`` makes the 8-bit sum of every byte after the sync byte (op/status, len, payload, chk)
zero. One frame is outstanding at a time: the host sends a request and waits for its response.
Bytes before a sync byte are ignored. A request that stops mid-frame for ``timeout`` clock
cycles is answered with ``TIMEOUT`` and the link hunts for the next sync byte.

Requests (``op``, payload) and their response payloads:

=========  =====================================================  ================================
op         request payload                                        response payload
=========  =====================================================  ================================
INFO  0    (none)                                                 :func:`info_bytes`
WRITE 1    space, layer, row[2], col[2], count[2], values         (none)
READ  2    space, layer, reg, row[2], count[2]                    count values, RBYTES each
RUN   3    phase, ticks[2]                                        tick counter, RBYTES
RESET 4    (none)                                                 (none)
SPIKES 5   layer                                                  q bits of the layer, LSB first
PREDICT 6  (none)                                                 argmax of the output layer's s [2]
=========  =====================================================  ================================

WRITE values are packed at their format's width (:func:`value_bits`: two's complement,
LSB first, across byte boundaries, the last byte padded with zero bits; :func:`pack_values`),
so a 13-bit input takes 13 bits, not 2 bytes, and go to consecutive addresses: row-major through ``W_layer`` from ``[row, col]`` (WEIGHT: after the
last column comes column 0 of the next row), or element ``row + i`` of BIAS (layer >= 1),
INPUT or TARGET. The whole range must lie inside the matrix or vector. Spaces, registers and
phases use :mod:`rtl.network`'s ``Space``, ``Reg``/``Status`` and ``Phase`` numbers. READ of
``STATUS`` needs ``count == 1`` (``row`` ignored). Values read are sign-extended to
:func:`read_bytes` bytes.

A WRITE frame's header is checked before any value is written; its values are written as
they arrive, so a WRITE answered ``CHECKSUM`` may have written some values. Writes are
idempotent: the driver sends the frame again.
"""

from __future__ import annotations

import enum
import struct
import zlib

__all__ = ["FRAME_OVERHEAD", "SYNC_REQ", "SYNC_RSP", "HostOp", "HostStatus", "SPACE", "REG", "STATUS_REG", "PHASE",
           "MAX_ARGS", "INFO_MAGIC", "PROTOCOL_VERSION", "checksum", "encode_request",
           "encode_response", "read_bytes", "config_crc", "info_bytes",
           "parse_info", "host_data_width", "value_bits", "value_signed", "packed_bytes",
           "pack_values", "unpack_values", "inference_link_bytes", "link_inferences_per_s",
           "write_header_status", "request_status"]

SYNC_REQ = 0xA5
SYNC_RSP = 0x5A
#: Bytes of a request payload kept as arguments (the WRITE header is the longest).
MAX_ARGS = 8
INFO_MAGIC = b"EQSP"
#: 1: WRITE values in whole bytes each; 2: WRITE values packed at their format's width.
PROTOCOL_VERSION = 2


class HostOp(enum.IntEnum):
    INFO = 0
    WRITE = 1
    READ = 2
    RUN = 3
    RESET = 4
    SPIKES = 5
    PREDICT = 6


class HostStatus(enum.IntEnum):
    OK = 0
    CHECKSUM = 1     # the frame's bytes do not sum to zero
    OPCODE = 2       # unknown op
    LENGTH = 3       # payload length does not match the op (and count)
    ADDRESS = 4      # layer, row, column or count out of range
    TIMEOUT = 5      # the frame stopped arriving mid-way
    ARGUMENT = 6     # unknown space, register or phase; zero count


# numbers of rtl.network's enums, repeated here so the host needs no Amaranth; a test checks
# that they agree with rtl.network
SPACE = {"weight": 0, "bias": 1, "input": 2, "target": 3, "state": 4, "status": 5}
REG = {"acc": 0, "v": 1, "x": 2, "s": 3, "a": 4, "rho_last": 5, "phi": 6, "q": 7}
STATUS_REG = {"tick": 0, "cycles": 1, "acc_cycles": 2, "upd_cycles": 3, "issues": 4, "events": 5,
              "spikes": 6, "overflows": 7}
PHASE = {0: 0, 1: 1, -1: 2}     # nudge sign -> Phase number


def checksum(body: bytes) -> int:
    """The byte that makes ``sum(body) + chk`` a multiple of 256."""
    return (-sum(body)) & 0xFF


def encode_request(op: int, payload: bytes = b"") -> bytes:
    body = bytes([int(op)]) + struct.pack("<H", len(payload)) + bytes(payload)
    return bytes([SYNC_REQ]) + body + bytes([checksum(body)])


def encode_response(status: int, payload: bytes = b"") -> bytes:
    body = bytes([int(status)]) + struct.pack("<H", len(payload)) + bytes(payload)
    return bytes([SYNC_RSP]) + body + bytes([checksum(body)])


def host_data_width(cfg) -> int:
    """Width of the network's host data word (rtl.layer.host_data_width, repeated without Amaranth)."""
    widths = [32, cfg.v.width, cfg.x.width, cfg.s.width + 1, cfg.a.width, cfg.phi.width]
    widths += [f.width for f in cfg.weights] + [f.width for f in cfg.biases]
    widths += [cfg.acc_format(l).width for l in range(1, cfg.n_layers)]
    return max(widths)


def read_bytes(cfg) -> int:
    """Bytes per value in READ and RUN responses."""
    return -(-host_data_width(cfg) // 8)


def _value_format(cfg, space: str, layer: int = 0):
    if space == "weight":
        return cfg.weights[layer]
    if space == "bias":
        return cfg.biases[layer - 1]
    if space in ("input", "target"):
        return cfg.s
    raise ValueError(f"space must be weight, bias, input or target, not {space!r}")


def value_bits(cfg, space: str, layer: int = 0) -> int:
    """Bits per value in a WRITE frame to ``space`` ("weight" of matrix ``layer``, "bias" of
    layer ``layer``, "input", "target"): the width of the value's format."""
    return _value_format(cfg, space, layer).width


def value_signed(cfg, space: str, layer: int = 0) -> bool:
    """Whether WRITE values to ``space`` are two's complement (else unsigned)."""
    return _value_format(cfg, space, layer).signed


def packed_bytes(count: int, bits: int) -> int:
    """Bytes of ``count`` values packed at ``bits`` bits each: ``ceil(count * bits / 8)``."""
    return -(-count * bits // 8)


def pack_values(values, bits: int, signed: bool) -> bytes:
    """``values`` packed LSB first at ``bits`` bits each (the last byte padded with zeros).

    Raises ValueError for a value outside the ``bits``-bit range (nothing is wrapped)."""
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    acc = 0
    for i, v in enumerate(values):
        v = int(v)
        if not lo <= v <= hi:
            raise ValueError(f"value {i} must be in {lo}..{hi} ({bits}-bit "
                             f"{'signed' if signed else 'unsigned'}), not {v}")
        acc |= (v & ((1 << bits) - 1)) << (i * bits)
    return acc.to_bytes(packed_bytes(len(values), bits), "little")


def unpack_values(data: bytes, bits: int, count: int, signed: bool) -> list:
    """Inverse of :func:`pack_values`: the first ``count`` values of ``data``."""
    acc = int.from_bytes(bytes(data), "little")
    out = []
    for i in range(count):
        v = (acc >> (i * bits)) & ((1 << bits) - 1)
        out.append(v - (1 << bits) if signed and v >> (bits - 1) else v)
    return out


def config_crc(cfg) -> int:
    """CRC-32 of the config's compact JSON: the board reports it, the driver checks it."""
    return zlib.crc32(cfg.to_json(indent=None).encode())


def info_bytes(cfg, clk_hz: int, baud: int) -> bytes:
    """INFO response payload: magic, version, layer count, RBYTES, sizes[2 each], lanes[2],
    n_free[2], n_nudged[2], config CRC[4], clock Hz[4], baud[4]."""
    out = INFO_MAGIC + bytes([PROTOCOL_VERSION, cfg.n_layers, read_bytes(cfg)])
    out += b"".join(struct.pack("<H", n) for n in cfg.layers)
    out += struct.pack("<HHHIII", cfg.lanes, cfg.n_free, cfg.n_nudged, config_crc(cfg),
                       int(clk_hz), int(baud))
    return out


def parse_info(payload: bytes) -> dict:
    """Inverse of :func:`info_bytes`."""
    if len(payload) < 7 or payload[:4] != INFO_MAGIC:
        raise ValueError(f"not an eqspike board (INFO payload {payload[:8].hex()})")
    version, n_layers, rbytes = payload[4:7]
    need = 7 + 2 * n_layers + 18
    if len(payload) != need:
        raise ValueError(f"INFO payload has {len(payload)} bytes, expected {need}")
    layers = struct.unpack(f"<{n_layers}H", payload[7:7 + 2 * n_layers])
    lanes, n_free, n_nudged, crc, clk_hz, baud = struct.unpack("<HHHIII", payload[7 + 2 * n_layers:])
    return {"version": version, "layers": tuple(layers), "read_bytes": rbytes, "lanes": lanes,
            "n_free": n_free, "n_nudged": n_nudged, "config_crc": crc, "clk_hz": clk_hz, "baud": baud}


#: Bytes of a frame around its payload: sync, op/status, length[2], checksum.
FRAME_OVERHEAD = 5


def inference_link_bytes(cfg) -> dict:
    """Bytes on the serial line (both directions, framing included) of one inference as
    :meth:`synth.driver.Board.infer` runs it: RESET, one WRITE of the packed inputs, RUN, PREDICT.

    Returns ``{"request": n, "response": n, "total": n}``."""
    n_in = cfg.layers[0]
    request = (FRAME_OVERHEAD                                                   # RESET
               + FRAME_OVERHEAD + MAX_ARGS + packed_bytes(n_in, value_bits(cfg, "input"))   # WRITE input
               + FRAME_OVERHEAD + 3                                            # RUN phase, ticks[2]
               + FRAME_OVERHEAD)                                               # PREDICT
    response = (FRAME_OVERHEAD + FRAME_OVERHEAD + (FRAME_OVERHEAD + read_bytes(cfg))
                + (FRAME_OVERHEAD + 2))
    return {"request": request, "response": response, "total": request + response}


def link_inferences_per_s(cfg, baud: int) -> float:
    """The serial link's own limit on inferences per second at ``baud`` (8N1: 10 bit times a
    byte, request and response one after the other): ``baud / 10 / total bytes``. The core's
    time and the USB adapter's turnaround latency come on top."""
    return baud / 10 / inference_link_bytes(cfg)["total"]


def _fits(row: int, count: int, n: int) -> bool:
    return row + count <= n


def write_header_status(cfg, payload: bytes) -> HostStatus:
    """Status of a WRITE whose first ``MAX_ARGS`` payload bytes are a header and whose payload
    has ``len(payload)`` bytes: ARGUMENT (space, zero count), then ADDRESS, then LENGTH (the
    value width depends on the address). The reference of :class:`synth.hostlink.RequestCheck`."""
    if len(payload) < MAX_ARGS:
        return HostStatus.LENGTH
    space, layer, row, col, count = struct.unpack("<BBHHH", payload[:MAX_ARGS])
    L, k = cfg.layers, cfg.n_layers - 1
    names = {v: name for name, v in SPACE.items()}
    name = names.get(space)
    if name not in ("weight", "bias", "input", "target") or count == 0:
        return HostStatus.ARGUMENT
    if name == "weight":
        ok = layer < k and col < L[layer + 1] and row * L[layer + 1] + col + count <= L[layer] * L[layer + 1]
    elif name == "bias":
        ok = 1 <= layer <= k and _fits(row, count, L[layer])
    else:
        ok = _fits(row, count, L[0] if name == "input" else L[k])
    if not ok:
        return HostStatus.ADDRESS
    bits = value_bits(cfg, name, layer)
    return HostStatus.OK if len(payload) == MAX_ARGS + packed_bytes(count, bits) else HostStatus.LENGTH


def request_status(cfg, op: int, payload: bytes, checksum_ok: bool = True) -> HostStatus:
    """The status a complete request frame gets: CHECKSUM, then OPCODE, then the op's checks
    (WRITE: :func:`write_header_status`; others LENGTH, ARGUMENT, ADDRESS). The reference of
    the link's checks, field by field."""
    if not checksum_ok:
        return HostStatus.CHECKSUM
    if op not in HostOp._value2member_map_:
        return HostStatus.OPCODE
    op, n, k = HostOp(op), len(payload), cfg.n_layers - 1
    if op == HostOp.WRITE:
        return write_header_status(cfg, payload)
    if op in (HostOp.INFO, HostOp.RESET, HostOp.PREDICT):
        return HostStatus.OK if n == 0 else HostStatus.LENGTH
    if op == HostOp.RUN:
        if n != 3:
            return HostStatus.LENGTH
        return HostStatus.ARGUMENT if payload[0] > max(PHASE.values()) else HostStatus.OK
    if op == HostOp.SPIKES:
        if n != 1:
            return HostStatus.LENGTH
        return HostStatus.ADDRESS if payload[0] > k else HostStatus.OK
    # READ
    if n != 7:
        return HostStatus.LENGTH
    space, layer, reg, row, count = struct.unpack("<BBBHH", payload)
    if space == SPACE["state"]:
        reg_ok = reg < 8 and (layer != 0 or reg >= REG["s"])
    else:
        reg_ok = reg < 8
    if space not in (SPACE["state"], SPACE["status"]) or not reg_ok or count == 0:
        return HostStatus.ARGUMENT
    if layer > k:
        return HostStatus.ADDRESS
    if space == SPACE["status"]:
        return HostStatus.OK if count == 1 else HostStatus.ADDRESS
    return HostStatus.OK if _fits(row, count, cfg.layers[layer]) else HostStatus.ADDRESS
