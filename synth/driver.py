"""Host driver for a board running :class:`synth.top.SerialTop`: frames over any byte transport.

A transport is anything with ``write(bytes)`` and ``read(n) -> bytes`` (fewer bytes on its
timeout): a ``serial.Serial`` (:func:`open_serial`), or :class:`sim.simuart.SimTransport`,
which runs the same top in Amaranth's simulator. The driver mirrors
:class:`golden_model.fixed_model.FixedModel`'s transaction API (load weights, reset with a
sample, run ticks, read registers) so tests compare board and model with ``==``.
"""

from __future__ import annotations

import struct

import numpy as np

from .protocol import (PHASE, PROTOCOL_VERSION, REG, SPACE, STATUS_REG, SYNC_RSP, HostOp, HostStatus,
                       config_crc, encode_request, pack_values, parse_info, read_bytes, value_bits,
                       value_signed)

__all__ = ["HostLinkError", "LinkTimeout", "Board", "open_serial"]

#: Values per WRITE frame (frames of weights run on across matrix rows).
CHUNK = 4096


class HostLinkError(RuntimeError):
    """The board answered an error status."""

    def __init__(self, status: int, op: int):
        self.status = HostStatus(status) if status in HostStatus._value2member_map_ else status
        self.op = op
        name = self.status.name if isinstance(self.status, HostStatus) else f"status {status}"
        super().__init__(f"board answered {name} to {HostOp(op).name if op in HostOp._value2member_map_ else op}")


class LinkTimeout(TimeoutError):
    """No (complete) response arrived."""


def open_serial(port: str, baud: int = 115200, timeout: float = 2.0):
    """A pyserial port (8N1) for :class:`Board`."""
    try:
        import serial
    except ImportError:
        raise ValueError("pyserial is not installed (pip install pyserial)") from None
    try:
        return serial.Serial(port, baudrate=baud, bytesize=8, parity="N", stopbits=1, timeout=timeout)
    except serial.SerialException as e:
        raise ValueError(f"cannot open {port}: {e}") from None


class Board:
    """One board (or simulated board) behind a transport.

    Parameters
    ----------
    transport : object with ``write`` and ``read``
    cfg : EqSpikeConfig
        The config the board was built from; :meth:`check` compares it with the board's INFO.
    """

    def __init__(self, transport, cfg):
        self.t, self.cfg = transport, cfg
        self.rbytes = read_bytes(cfg)

    # -- frames ----------------------------------------------------------------------------------
    def read_response(self) -> tuple[int, bytes]:
        """Next response frame: ``(status, payload)``; bytes before its sync byte are skipped."""
        while True:
            b = self.t.read(1)
            if not b:
                raise LinkTimeout("no response from the board")
            if b[0] == SYNC_RSP:
                break
        head = self._read_exact(3)
        status, n = head[0], struct.unpack("<H", head[1:3])[0]
        rest = self._read_exact(n + 1)
        if (sum(head) + sum(rest)) & 0xFF:
            raise HostLinkError(HostStatus.CHECKSUM, -1)
        return status, rest[:-1]

    def _read_exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.t.read(n - len(out))
            if not chunk:
                raise LinkTimeout(f"response cut short ({len(out)} of {n} bytes)")
            out += chunk
        return out

    def request(self, op: int, payload: bytes = b"") -> bytes:
        """Send one request, return its response payload; raises HostLinkError on an error status."""
        self.t.write(encode_request(op, payload))
        status, data = self.read_response()
        if status != HostStatus.OK:
            raise HostLinkError(status, op)
        return data

    # -- operations ------------------------------------------------------------------------------
    def info(self) -> dict:
        return parse_info(self.request(HostOp.INFO))

    def check(self) -> dict:
        """INFO, and raise ValueError unless the board speaks this driver's protocol version and
        was built from this driver's config."""
        info = self.info()
        if info["version"] != PROTOCOL_VERSION:
            raise ValueError(f"the board speaks host-link protocol version {info['version']}, this driver "
                             f"version {PROTOCOL_VERSION} (rebuild the bitstream with this eqspike)")
        if info["config_crc"] != config_crc(self.cfg) or tuple(info["layers"]) != self.cfg.layers:
            raise ValueError(f"the board runs layers {'-'.join(map(str, info['layers']))} "
                             f"(config CRC {info['config_crc']:08x}), not this config "
                             f"({'-'.join(map(str, self.cfg.layers))}, CRC {config_crc(self.cfg):08x})")
        return info

    def write(self, space: str, values, layer: int = 0, row: int = 0, col: int = 0):
        """One WRITE frame: ``values`` to consecutive addresses from (row, col), packed at their
        format's width (ValueError for a value outside it)."""
        vals = [int(v) for v in np.asarray(values).reshape(-1)]
        body = pack_values(vals, value_bits(self.cfg, space, layer), value_signed(self.cfg, space, layer))
        self.request(HostOp.WRITE, struct.pack("<BBHHH", SPACE[space], layer, row, col, len(vals)) + body)

    def load(self, model):
        """Every weight and bias of a FixedModel."""
        for mat, w in enumerate(model.weights):
            flat = np.asarray(w).reshape(-1)
            cols = w.shape[1]
            for start in range(0, len(flat), CHUNK):
                self.write("weight", flat[start:start + CHUNK], layer=mat, row=start // cols, col=start % cols)
        for l, b in enumerate(model.biases, start=1):
            for start in range(0, len(b), CHUNK):
                self.write("bias", b[start:start + CHUNK], layer=l, row=start)

    def reset(self, x_codes, y_codes=None):
        """New sample: RESET, then the inputs (and targets) of one sample."""
        self.request(HostOp.RESET)
        x = np.asarray(x_codes).reshape(-1)
        for start in range(0, len(x), CHUNK):
            self.write("input", x[start:start + CHUNK], row=start)
        if y_codes is not None:
            y = np.asarray(y_codes).reshape(-1)
            for start in range(0, len(y), CHUNK):
                self.write("target", y[start:start + CHUNK], row=start)

    def run(self, ticks: int, nudge_sign: int = 0) -> int:
        """Run ``ticks`` ticks (free: 0, nudged: +1/-1); returns the board's tick counter."""
        if nudge_sign not in PHASE:
            raise ValueError(f"nudge_sign must be 0, 1 or -1, not {nudge_sign!r}")
        if not 0 <= ticks <= 0xFFFF:
            raise ValueError(f"ticks must be in 0..65535, not {ticks!r}")
        data = self.request(HostOp.RUN, struct.pack("<BH", PHASE[nudge_sign], ticks))
        return self._values(data)[0]

    def _values(self, data: bytes) -> list:
        nb = self.rbytes
        return [int.from_bytes(data[i:i + nb], "little", signed=True) for i in range(0, len(data), nb)]

    def read(self, layer: int, reg: str, row: int = 0, count: int | None = None) -> np.ndarray:
        """Register ``reg`` (a model name: s, a, v, ...) of ``count`` neurons of ``layer``."""
        if reg not in REG:
            raise ValueError(f"reg must be one of {', '.join(REG)}, not {reg!r}")
        count = self.cfg.layers[layer] - row if count is None else count
        data = self.request(HostOp.READ, struct.pack("<BBBHH", SPACE["state"], layer, REG[reg], row, count))
        return np.array(self._values(data), dtype=np.int64)

    def status(self, name: str, layer: int = 0) -> int:
        """A performance counter (rtl.network.Status names: tick, cycles, spikes, ...)."""
        if name not in STATUS_REG:
            raise ValueError(f"status must be one of {', '.join(STATUS_REG)}, not {name!r}")
        data = self.request(HostOp.READ, struct.pack("<BBBHH", SPACE["status"], layer, STATUS_REG[name], 0, 1))
        return self._values(data)[0]

    def spikes(self, layer: int) -> np.ndarray:
        """Spikes (q) of the last tick of ``layer``, one 0/1 per neuron."""
        data = self.request(HostOp.SPIKES, bytes([layer]))
        bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
        return bits[:self.cfg.layers[layer]].astype(np.int64)

    def predict(self) -> int:
        """Index of the largest output state (first one on ties), as FixedModel.predict."""
        return struct.unpack("<H", self.request(HostOp.PREDICT))[0]

    def infer(self, x_codes, ticks: int | None = None) -> int:
        """Free phase on one sample (``ticks`` defaults to the config's n_free); the predicted class."""
        self.reset(x_codes)
        self.run(self.cfg.n_free if ticks is None else ticks)
        return self.predict()
