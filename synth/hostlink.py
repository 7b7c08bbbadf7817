"""Gateware side of the host link: frames of bytes (:mod:`synth.protocol`) to and from the
network's command/response streams (:class:`rtl.network.Network`).

The link receives a request byte by byte, checking it as it goes: the WRITE header is
checked when its 8 bytes are in (and its values are written to the network one by one as
they arrive); every other request is kept whole (at most ``MAX_ARGS`` payload bytes) and
checked after its checksum byte. Then it answers: the response header, the payload (network
READs interleaved with the bytes they produce) and the checksum. Every error answers a
response with an empty payload and the link goes back to hunting for a sync byte, so the
next valid frame works. Precedence: CHECKSUM, then OPCODE, then the op's own checks: WRITE
ARGUMENT, ADDRESS, LENGTH (the value width depends on the address); the others LENGTH,
ARGUMENT, ADDRESS.

Structure: :class:`RequestCheck` is the combinational check of a request's fields (one
status per op); :class:`HostLink` holds the frame registers and its state machine, whose
states are added by :class:`_LinkStates` in groups (receive a request, stream WRITE values,
evaluate, run network operations, send the response header, send the payload).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden_model.config import EqSpikeConfig
from rtl.arith import const_mul
from rtl.network import Op, Phase, Reg, Space, command_layout, response_layout

from .protocol import (MAX_ARGS, SYNC_REQ, SYNC_RSP, HostOp, HostStatus, info_bytes, read_bytes,
                       value_bits, value_signed)

__all__ = ["HostLink", "RequestCheck", "STATUS_WIDTH", "FAULTS", "link_byte_cycles"]

#: Deliberate faults the link can be built with (tests of the fuzz checker only): ``"range"``
#: makes the ``row + count <= n`` range check ``<`` (an off-by-one that refuses the last neuron).
FAULTS = (None, "range")

#: Bits of a response status (:class:`synth.protocol.HostStatus`).
STATUS_WIDTH = max(HostStatus).bit_length()


#: :func:`rtl.arith.const_mul` maps a constant multiply to shifts and adds whenever a DSP width is
#: given; the link passes one on every board: its few address multiplies are not worth a DSP block.
_SHIFT_ADD = 18


def _shift_add_mul(x, c: int):
    """``x * c`` for a constant ``c >= 0`` as shifts and adds."""
    return const_mul(x, c, dsp=_SHIFT_ADD)


def _below(x, bits: int):
    """``x < 2**bits`` (the bits above ``bits`` are zero)."""
    return Const(1) if bits >= len(x) else (x[bits:] == 0)


def _lookup(index, values, width=None):
    """``values[index]`` for a signal ``index`` (0 beyond the end), as a Mux chain of constants."""
    width = width or max(1, max(int(v) for v in values).bit_length())
    out = Const(0, width)
    for i, v in enumerate(values):
        out = Mux(index == i, Const(int(v), width), out)
    return out


def _write_formats(cfg: EqSpikeConfig) -> list:
    """The distinct ``(bits, signed)`` formats of WRITE values in this config."""
    k = cfg.n_layers - 1
    spaces = ([("weight", i) for i in range(k)] + [("bias", i) for i in range(1, k + 1)]
              + [("input", 0), ("target", 0)])
    return sorted({(value_bits(cfg, sp, i), value_signed(cfg, sp, i)) for sp, i in spaces})


#: Cycles from a value's last bit to the link back for the next bit (with margin).
VALUE_WRITE_CYCLES = 8


def link_byte_cycles(cfg: EqSpikeConfig) -> int:
    """Most cycles the link spends on one WRITE value byte before it takes the next: 8 cycles to
    shift its bits into values, then up to ``ceil(8 / bits)`` network writes of the narrowest
    values, ``VALUE_WRITE_CYCLES`` each (the network answers a WRITE in 3)."""
    min_bits = min(bits for bits, _ in _write_formats(cfg))
    return 8 + -(-8 // min_bits) * VALUE_WRITE_CYCLES


def _u16(args, lo: int):
    """The little-endian 16-bit field at byte ``lo`` of the argument bytes."""
    return Cat(args[lo], args[lo + 1])


class _Fields:
    """The request fields at their payload offsets (per op) in the argument bytes ``args``.

    WRITE: space, layer, row[2], col[2], count[2]; READ: space, layer, reg, row[2], count[2];
    RUN: phase, ticks[2]; SPIKES: layer.
    """

    def __init__(self, args):
        self.space, self.layer = args[0], args[1]
        self.write_row, self.write_col, self.write_count = _u16(args, 2), _u16(args, 4), _u16(args, 6)
        self.read_reg, self.read_row, self.read_count = args[2], _u16(args, 3), _u16(args, 5)
        self.run_phase, self.run_ticks = args[0], _u16(args, 1)
        self.spikes_layer = args[0]


class _Widths:
    """Widths the checks compute at: a neuron index or count has ``neuron`` bits, a flat weight
    index ``weight`` bits; a field with bits above those is out of range anyway."""

    def __init__(self, cfg: EqSpikeConfig, fault=None):
        L, k = cfg.layers, cfg.n_layers - 1
        self.layers, self.k, self.fault = L, k, fault
        self.neuron = max(L).bit_length()                                   # n_l < 2**neuron
        self.weight = max(L[mat] * L[mat + 1] for mat in range(k)).bit_length()   # count < 2**weight

    def n_of(self, layer):
        """Neurons of ``layer`` (a signal; 0 beyond the last layer)."""
        return _lookup(layer, self.layers, self.neuron)

    def fits(self, row0, count, n):
        """``row0 + count <= n`` for 16-bit fields and a ``neuron``-bit ``n``."""
        nb = self.neuron
        end = row0[:nb] + count[:nb + 1]
        return _below(row0, nb) & _below(count, nb + 1) & ((end < n) if self.fault == "range" else (end <= n))


class RequestCheck(wiring.Component):
    """The checks of a request's fields: combinational, one status per op.

    Parameters
    ----------
    cfg : EqSpikeConfig
    fault : one of FAULTS
        A deliberate bug (fuzz-checker tests only).

    Members
    -------
    op : In(8)
    length : In(16)
        Payload length of the request.
    args : In(ArrayLayout(8, MAX_ARGS))
        The first ``MAX_ARGS`` payload bytes (zero beyond the payload).
    write_status : In(STATUS_WIDTH)
        The WRITE header's status as latched when its 8 bytes were in (``LENGTH`` when the
        payload is shorter than a header).
    header_status : Out(STATUS_WIDTH)
        Check of a WRITE header: ARGUMENT (space, zero count), ADDRESS, LENGTH, else OK.
    value_bits : Out(range(max_bits + 1))
        Bits per WRITE value for the header's space and layer (the values are packed).
    value_signed : Out(1)
        The header's values are two's complement.
    status : Out(STATUS_WIDTH)
        The op's status after a good checksum: ``write_status`` for WRITE, OPCODE for an
        unknown op, else the op's LENGTH, ARGUMENT and ADDRESS checks in that order.
    """

    def __init__(self, cfg: EqSpikeConfig, fault=None):
        if not isinstance(cfg, EqSpikeConfig):
            raise TypeError(f"cfg must be an EqSpikeConfig, not {cfg!r}")
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, not {fault!r}")
        self.cfg, self.fault = cfg, fault
        self.formats = _write_formats(cfg)
        self.max_bits = max(bits for bits, _ in self.formats)
        super().__init__({
            "op": In(8),
            "length": In(16),
            "args": In(data.ArrayLayout(8, MAX_ARGS)),
            "write_status": In(STATUS_WIDTH),
            "header_status": Out(STATUS_WIDTH),
            "value_bits": Out(range(self.max_bits + 1)),
            "value_signed": Out(1),
            "status": Out(STATUS_WIDTH),
        })

    def elaborate(self, platform):
        m = Module()
        f, w = _Fields(self.args), _Widths(self.cfg, self.fault)
        self._write_header(m, f, w)
        self._op_status(m, f, w)
        return m

    def _write_header(self, m, f, w):
        cfg, L, k = self.cfg, w.layers, w.k
        space, layer, row0, col0, count = f.space, f.layer, f.write_row, f.write_col, f.write_count
        bits_width = len(self.value_bits)
        weight_bits = _lookup(layer, [value_bits(cfg, "weight", i) for i in range(k)], bits_width)
        weight_signed = _lookup(layer, [value_signed(cfg, "weight", i) for i in range(k)], 1)
        bias_bits = _lookup(layer, [0] + [value_bits(cfg, "bias", i) for i in range(1, k + 1)], bits_width)
        bias_signed = _lookup(layer, [0] + [value_signed(cfg, "bias", i) for i in range(1, k + 1)], 1)
        state_bits, state_signed = value_bits(cfg, "input"), value_signed(cfg, "input")
        space_ok, addr_ok = Signal(), Signal()
        with m.Switch(space):
            with m.Case(Space.WEIGHT):
                # flat index row * cols + col: a constant multiply per matrix
                fw = max((2 ** w.neuron - 1) * L[mat + 1] for mat in range(k)) + 2 ** w.neuron + 2 ** w.weight
                flat0 = Const(0, fw.bit_length())
                for mat in range(k):
                    flat0 = Mux(layer == mat, _shift_add_mul(row0[:w.neuron], L[mat + 1]), flat0)
                size = _lookup(layer, [L[mat] * L[mat + 1] for mat in range(k)], w.weight)
                m.d.comb += [self.value_bits.eq(weight_bits), self.value_signed.eq(weight_signed), space_ok.eq(1),
                             addr_ok.eq((layer < k) & _below(row0, w.neuron) & _below(count, w.weight)
                                        & (col0 < w.n_of(layer + 1))
                                        & (flat0 + col0[:w.neuron] + count[:w.weight] <= size))]
            with m.Case(Space.BIAS):
                m.d.comb += [self.value_bits.eq(bias_bits), self.value_signed.eq(bias_signed), space_ok.eq(1),
                             addr_ok.eq((layer >= 1) & (layer <= k) & w.fits(row0, count, w.n_of(layer)))]
            with m.Case(Space.INPUT):
                m.d.comb += [self.value_bits.eq(state_bits), self.value_signed.eq(state_signed), space_ok.eq(1),
                             addr_ok.eq(w.fits(row0, count, L[0]))]
            with m.Case(Space.TARGET):
                m.d.comb += [self.value_bits.eq(state_bits), self.value_signed.eq(state_signed), space_ok.eq(1),
                             addr_ok.eq(w.fits(row0, count, L[k]))]
        # payload bytes of the packed values: ceil(count * value_bits / 8) over the few widths this
        # config has (the count has `weight` bits when the address is good, and LENGTH is checked
        # only then)
        values = Const(0, w.weight + 7)
        for nb in sorted({bits for bits, _ in self.formats}):
            values = Mux(self.value_bits == nb, (_shift_add_mul(count[:w.weight], nb) + 7) >> 3, values)
        # the value width depends on space and layer: check the address before the length
        m.d.comb += self.header_status.eq(
            Mux(~space_ok | (count == 0), HostStatus.ARGUMENT,
                Mux(~addr_ok, HostStatus.ADDRESS,
                    Mux(self.length != MAX_ARGS + values, HostStatus.LENGTH, HostStatus.OK))))

    def _op_status(self, m, f, w):
        k, length = w.k, self.length
        space, layer = f.space, f.layer
        reg_ok = Mux(space == Space.STATE, (f.read_reg < 8) & ((layer != 0) | (f.read_reg >= Reg.S.value)),
                     f.read_reg < 8)
        read = Mux(length != 7, HostStatus.LENGTH,
                   Mux(((space != Space.STATE) & (space != Space.STATUS)) | ~reg_ok | (f.read_count == 0),
                       HostStatus.ARGUMENT,
                       Mux((layer > k) | Mux(space == Space.STATUS, f.read_count != 1,
                                             ~w.fits(f.read_row, f.read_count, w.n_of(layer))),
                           HostStatus.ADDRESS, HostStatus.OK)))
        run = Mux(length != 3, HostStatus.LENGTH,
                  Mux(f.run_phase > Phase.NUDGE_NEG.value, HostStatus.ARGUMENT, HostStatus.OK))
        spikes = Mux(length != 1, HostStatus.LENGTH,
                     Mux(f.spikes_layer > k, HostStatus.ADDRESS, HostStatus.OK))
        empty = Mux(length != 0, HostStatus.LENGTH, HostStatus.OK)
        with m.Switch(self.op):
            with m.Case(HostOp.WRITE):
                m.d.comb += self.status.eq(self.write_status)
            with m.Case(HostOp.READ):
                m.d.comb += self.status.eq(read)
            with m.Case(HostOp.RUN):
                m.d.comb += self.status.eq(run)
            with m.Case(HostOp.SPIKES):
                m.d.comb += self.status.eq(spikes)
            with m.Case(HostOp.INFO, HostOp.RESET, HostOp.PREDICT):
                m.d.comb += self.status.eq(empty)
            with m.Default():
                m.d.comb += self.status.eq(HostStatus.OPCODE)


class HostLink(wiring.Component):
    """Frame decoder/encoder between a byte stream pair and the network's host streams.

    Parameters
    ----------
    cfg : EqSpikeConfig
    clk_hz, baud : int
        Reported by INFO (the link itself does not use them).
    timeout : int
        Clock cycles without a byte, mid-frame, before the frame is answered ``TIMEOUT``.
    fault : one of FAULTS
        A deliberate bug (fuzz-checker tests only).

    Members
    -------
    rx : In(stream of 8 bits)
        Request bytes (from the UART receiver).
    tx : Out(stream of 8 bits)
        Response bytes (to the UART transmitter).
    cmd : Out(stream of command_layout(cfg))
    rsp : In(stream of response_layout(cfg))
        Connect to the network's ``cmd`` and ``rsp``.
    error : Out(1)
        Pulses when an error response starts.
    busy : Out(1)
        A frame is being received or answered.
    byte_cycles : int
        Most cycles the link spends on one WRITE value byte before it takes the next: a byte
        source must not deliver bytes faster (a UART delivers one per 10 bit periods).
    """

    def __init__(self, cfg: EqSpikeConfig, clk_hz: int, baud: int, timeout: int, fault=None):
        if not isinstance(cfg, EqSpikeConfig):
            raise TypeError(f"cfg must be an EqSpikeConfig, not {cfg!r}")
        if max(cfg.layers) * read_bytes(cfg) > 0xFFFF:
            raise ValueError(f"layers must have at most {0xFFFF // read_bytes(cfg)} neurons for the host link "
                             f"(a READ response of a whole layer must fit in 65535 bytes), not {max(cfg.layers)}")
        if not isinstance(timeout, int) or timeout < 1:
            raise ValueError(f"timeout must be a positive integer, not {timeout!r}")
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, not {fault!r}")
        self.cfg, self.timeout, self.fault = cfg, timeout, fault
        self.info = info_bytes(cfg, clk_hz, baud)
        self.byte_cycles = link_byte_cycles(cfg)
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "cmd": Out(stream.Signature(command_layout(cfg))),
            "rsp": In(stream.Signature(response_layout(cfg))),
            "error": Out(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.check = check = RequestCheck(self.cfg, self.fault)
        s = _LinkStates(self, m, check)
        with m.FSM():
            s.receive_request()
            s.receive_write_values()
            s.evaluate_request()
            s.network_operations()
            s.send_response_header()
            s.send_payload()
        return m


class _LinkStates:
    """The registers of :class:`HostLink` and the groups of states of its state machine.

    Receive registers: ``op``, ``length``, ``received`` (payload bytes so far), ``rx_sum``
    (running sum after the sync byte), ``args`` (first ``MAX_ARGS`` payload bytes),
    ``timer`` (idle cycles mid-frame). WRITE streaming: the next value's address
    (``w_row``, ``w_col``, ``w_space``, ``w_layer``), the values still to write (``w_left``),
    the last byte's bits not yet used (``w_byte``, ``w_byte_bits`` of them) and the value
    being assembled (``w_value``, ``w_value_bits`` in). Response: ``status``, ``tx_len``, ``tx_sum``, the value
    being sent (``value``, ``value_bytes``, ``value_byte``), a loop index ``i`` up to
    ``n_loop`` (values, neurons, INFO bytes), ``spike_byte``, and PREDICT's ``best``/``best_i``.
    """

    def __init__(self, link: HostLink, m: Module, check: RequestCheck):
        self.link, self.m, self.check = link, m, check
        cfg = link.cfg
        w = self.w = _Widths(cfg)
        k = w.k
        self.rbytes = read_bytes(cfg)
        # -- receive ------------------------------------------------------------------------------
        self.op, self.length, self.received = Signal(8), Signal(16), Signal(16)
        self.rx_sum = Signal(8)
        self.args = Signal(data.ArrayLayout(8, MAX_ARGS))
        self.timer = Signal(range(link.timeout + 1))
        self.write_status = Signal(STATUS_WIDTH)
        self.status = Signal(STATUS_WIDTH)
        self.f = _Fields(self.args)
        m.d.comb += [check.op.eq(self.op), check.length.eq(self.length), check.args.eq(self.args),
                     check.write_status.eq(self.write_status)]
        # -- WRITE streaming: at most n_l (the header check passed) ---------------------------------
        self.w_row, self.w_col = Signal(w.neuron), Signal(w.neuron)
        # values are assembled a bit a cycle (a byte takes 10 bit times on the line, at least
        # 40 cycles: time enough, and no barrel shifter)
        self.w_byte, self.w_byte_bits = Signal(8), Signal(range(9))
        self.w_value, self.w_value_bits = Signal(check.max_bits), Signal(range(check.max_bits + 1))
        self.w_left = Signal(w.weight)
        self.w_space, self.w_layer = Signal(3), Signal(range(k + 1))
        # -- response -------------------------------------------------------------------------------
        self.tx_sum, self.tx_len = Signal(8), Signal(16)
        self.value = Signal(signed(8 * self.rbytes))
        self.value_bytes = Signal(range(self.rbytes + 1))
        self.value_byte = Signal(range(self.rbytes + 1))
        self.i = Signal(range(max(max(w.layers), len(link.info)) + 1))
        self.n_loop = Signal.like(self.i)
        self.spike_byte = Signal(8)
        self.best, self.best_i = Signal(cfg.s.width), Signal(w.neuron)   # PREDICT: unsigned states

    # -- helpers used inside states ----------------------------------------------------------------
    def busy(self):
        self.m.d.comb += self.link.busy.eq(1)

    def take_byte(self):
        """In a state waiting for a request byte: returns the 'got a byte' condition (a byte
        resets the idle timer; ``timeout`` idle cycles answer TIMEOUT)."""
        m, link = self.m, self.link
        m.d.comb += [link.busy.eq(1), link.rx.ready.eq(1)]
        with m.If(link.rx.valid):
            m.d.sync += [self.rx_sum.eq(self.rx_sum + link.rx.payload), self.timer.eq(0)]
        with m.Elif(self.timer == link.timeout):
            m.d.sync += [self.status.eq(HostStatus.TIMEOUT), self.tx_len.eq(0), self.timer.eq(0)]
            m.next = "SEND_SYNC"
        with m.Else():
            m.d.sync += self.timer.eq(self.timer + 1)
        return link.rx.valid

    def send(self, byte):
        """In a state sending a response byte: returns the 'byte taken' condition."""
        m, link = self.m, self.link
        m.d.comb += [link.busy.eq(1), link.tx.valid.eq(1), link.tx.payload.eq(byte)]
        with m.If(link.tx.ready):
            m.d.sync += self.tx_sum.eq(self.tx_sum + byte)
        return link.tx.ready

    def reply(self, status, n_payload):
        """Answer ``status`` with ``n_payload`` payload bytes."""
        self.m.d.sync += [self.status.eq(status), self.tx_len.eq(n_payload)]
        self.m.next = "SEND_SYNC"

    def net_command(self, op, space=Space.WEIGHT, layer=0, reg=0, phase=0, row=0, col=0, data=0):
        """Offer one network command; returns the 'command taken' condition."""
        m, link = self.m, self.link
        net = link.cmd.payload
        m.d.comb += [link.busy.eq(1), link.cmd.valid.eq(1), net.op.eq(op), net.space.eq(space),
                     net.layer.eq(layer), net.reg.eq(reg), net.phase.eq(phase), net.row.eq(row),
                     net.col.eq(col), net.data.eq(data)]
        return link.cmd.ready

    def net_response(self):
        """Take the network's response; returns the 'response here' condition."""
        self.m.d.comb += [self.link.busy.eq(1), self.link.rsp.ready.eq(1)]
        return self.link.rsp.valid

    # -- request ----------------------------------------------------------------------------------
    def receive_request(self):
        """Sync byte, op, length, then the argument bytes (a WRITE's first ``MAX_ARGS``) and,
        for all but a WRITE with a full header, the checksum byte."""
        m, link, b = self.m, self.link, self.link.rx.payload
        with m.State("WAIT_SYNC"):
            m.d.comb += link.rx.ready.eq(1)
            m.d.sync += [self.rx_sum.eq(0), self.timer.eq(0), self.write_status.eq(HostStatus.LENGTH)]
            with m.If(link.rx.valid & (b == SYNC_REQ)):
                m.next = "RECEIVE_OP"
        with m.State("RECEIVE_OP"):
            with m.If(self.take_byte()):
                m.d.sync += self.op.eq(b)
                m.next = "RECEIVE_LENGTH_LOW"
        with m.State("RECEIVE_LENGTH_LOW"):
            with m.If(self.take_byte()):
                m.d.sync += self.length[:8].eq(b)
                m.next = "RECEIVE_LENGTH_HIGH"
        with m.State("RECEIVE_LENGTH_HIGH"):
            with m.If(self.take_byte()):
                m.d.sync += [self.length[8:].eq(b), self.received.eq(0), self.args.eq(0)]
                m.next = "RECEIVE_ARGUMENTS"
                with m.If(Cat(self.length[:8], b) == 0):
                    m.next = "RECEIVE_CHECKSUM"
        with m.State("RECEIVE_ARGUMENTS"):
            with m.If(self.take_byte()):
                with m.If(self.received < MAX_ARGS):
                    m.d.sync += self.args[self.received[:3]].eq(b)
                m.d.sync += self.received.eq(self.received + 1)
                with m.If((self.op == HostOp.WRITE) & (self.received + 1 == MAX_ARGS)):
                    m.next = "CHECK_WRITE_HEADER"
                with m.Elif(self.received + 1 == self.length):
                    m.next = "RECEIVE_CHECKSUM"
        with m.State("RECEIVE_CHECKSUM"):
            with m.If(self.take_byte()):
                m.next = "EVALUATE_REQUEST"

    def _format_selects(self):
        """One select per ``(bits, signed)`` format of the config: the WRITE header's format."""
        if not hasattr(self, "_formats"):
            check = self.check
            self._formats = [((check.value_bits == bits) & (check.value_signed == sgn), bits, sgn)
                             for bits, sgn in check.formats]
        return self._formats

    def _value_complete(self):
        """All ``value_bits`` bits of the value are in."""
        return Cat(sel & (self.w_value_bits == bits) for sel, bits, _ in self._format_selects()).any()

    def _next_value(self):
        """``w_value`` with the next bit of ``w_byte`` put in: a right shift that enters the bit
        at position ``value_bits - 1``, so after ``value_bits`` bits the first one (the LSB,
        values go LSB first) is bit 0."""
        bit, top = self.w_byte[0], len(self.w_value)
        out = []
        for j in range(top):
            here = Cat(sel for sel, bits, _ in self._format_selects() if bits - 1 == j).any()
            out.append(Mux(here, bit, self.w_value[j + 1] if j + 1 < top else 0))
        return Cat(out)

    def _value_data(self):
        """The assembled value, sign-extended when its format is signed."""
        out = self.w_value
        for sel, bits, sgn in self._format_selects():
            if sgn:
                out = Mux(sel, self.w_value[:bits].as_signed(), out)
        return out

    def receive_write_values(self):
        """A WRITE's packed values: each byte's bits go into the value a bit a cycle, and each
        value goes to the network when its last bit is in (only when the header checked OK;
        otherwise the bytes are counted and dropped, and so are a last byte's padding bits)."""
        m, b, f = self.m, self.link.rx.payload, self.f
        check = self.check
        writing = (self.write_status == HostStatus.OK) & (self.w_left != 0)
        with m.State("CHECK_WRITE_HEADER"):
            self.busy()
            m.d.sync += [self.write_status.eq(check.header_status), self.w_row.eq(f.write_row),
                         self.w_col.eq(f.write_col), self.w_space.eq(f.space), self.w_layer.eq(f.layer),
                         self.w_left.eq(f.write_count), self.w_byte_bits.eq(0), self.w_value_bits.eq(0)]
            m.next = "RECEIVE_WRITE_VALUE"
        with m.State("RECEIVE_WRITE_VALUE"):
            with m.If(writing & self._value_complete()):
                self.busy()
                m.next = "WRITE_VALUE_COMMAND"
            with m.Elif(writing & (self.w_byte_bits != 0)):
                self.busy()
                m.d.sync += [self.w_value.eq(self._next_value()), self.w_value_bits.eq(self.w_value_bits + 1),
                             self.w_byte.eq(self.w_byte >> 1), self.w_byte_bits.eq(self.w_byte_bits - 1)]
            with m.Elif(self.received == self.length):
                self.busy()
                m.next = "RECEIVE_CHECKSUM"
            with m.Else():
                with m.If(self.take_byte()):
                    m.d.sync += [self.received.eq(self.received + 1), self.w_byte.eq(b), self.w_byte_bits.eq(8)]
        with m.State("WRITE_VALUE_COMMAND"):
            with m.If(self.net_command(Op.WRITE, space=self.w_space, layer=self.w_layer, row=self.w_row,
                                       col=self.w_col, data=self._value_data())):
                m.next = "WRITE_VALUE_RESPONSE"
        with m.State("WRITE_VALUE_RESPONSE"):
            with m.If(self.net_response()):
                m.d.sync += [self.w_value_bits.eq(0), self.w_left.eq(self.w_left - 1)]
                with m.If(self.w_space == Space.WEIGHT):
                    with m.If(self.w_col + 1 == self.w.n_of(self.w_layer + 1)):     # next row of W
                        m.d.sync += [self.w_col.eq(0), self.w_row.eq(self.w_row + 1)]
                    with m.Else():
                        m.d.sync += self.w_col.eq(self.w_col + 1)
                with m.Else():
                    m.d.sync += self.w_row.eq(self.w_row + 1)
                m.next = "RECEIVE_WRITE_VALUE"

    def evaluate_request(self):
        """After the checksum byte: an error reply, an immediate reply, or a network operation."""
        m, f, w = self.m, self.f, self.w
        with m.State("EVALUATE_REQUEST"):
            self.busy()
            m.d.sync += [self.i.eq(0), self.value_byte.eq(0), self.spike_byte.eq(0), self.value.eq(0)]
            with m.If(self.rx_sum != 0):
                self.reply(HostStatus.CHECKSUM, 0)
            with m.Elif(self.check.status != HostStatus.OK):
                self.reply(self.check.status, 0)
            with m.Else():
                with m.Switch(self.op):
                    with m.Case(HostOp.INFO):
                        self.reply(HostStatus.OK, len(self.link.info))
                    with m.Case(HostOp.WRITE):
                        self.reply(HostStatus.OK, 0)
                    with m.Case(HostOp.READ):
                        count = f.read_count[:w.neuron + 1]
                        m.d.sync += [self.n_loop.eq(count), self.value_bytes.eq(self.rbytes)]
                        self.reply(HostStatus.OK, _shift_add_mul(count, self.rbytes))
                    with m.Case(HostOp.RUN):
                        m.next = "RUN_COMMAND"
                    with m.Case(HostOp.RESET):
                        m.next = "RESET_COMMAND"
                    with m.Case(HostOp.SPIKES):
                        n = w.n_of(f.spikes_layer)
                        m.d.sync += self.n_loop.eq(n)
                        self.reply(HostStatus.OK, (n + 7) >> 3)
                    with m.Case(HostOp.PREDICT):
                        m.next = "PREDICT_READ_COMMAND"

    # -- operations that run before their response -----------------------------------------------
    def network_operations(self):
        """RUN and RESET (one network command each), PREDICT (a READ of every output state)."""
        m, f, w = self.m, self.f, self.w
        k = w.k
        with m.State("RUN_COMMAND"):
            with m.If(self.net_command(Op.RUN, phase=f.run_phase, data=f.run_ticks)):
                m.next = "RUN_RESPONSE"
        with m.State("RUN_RESPONSE"):
            with m.If(self.net_response()):
                m.d.sync += [self.value.eq(self.link.rsp.payload.data), self.value_bytes.eq(self.rbytes)]
                self.reply(HostStatus.OK, self.rbytes)
        with m.State("RESET_COMMAND"):
            with m.If(self.net_command(Op.RESET)):
                m.next = "RESET_RESPONSE"
        with m.State("RESET_RESPONSE"):
            with m.If(self.net_response()):
                self.reply(HostStatus.OK, 0)
        with m.State("PREDICT_READ_COMMAND"):
            with m.If(self.net_command(Op.READ, space=Space.STATE, layer=k, reg=Reg.S, row=self.i)):
                m.next = "PREDICT_READ_RESPONSE"
        with m.State("PREDICT_READ_RESPONSE"):
            with m.If(self.net_response()):
                s_val = self.link.rsp.payload.data[:len(self.best)]
                with m.If((self.i == 0) | (s_val > self.best)):   # first maximum wins
                    m.d.sync += [self.best.eq(s_val), self.best_i.eq(self.i)]
                m.d.sync += self.i.eq(self.i + 1)
                m.next = "PREDICT_READ_COMMAND"
                with m.If(self.i == w.layers[k] - 1):
                    m.next = "PREDICT_DONE"
        with m.State("PREDICT_DONE"):
            self.busy()
            m.d.sync += [self.value.eq(self.best_i), self.value_bytes.eq(2)]
            self.reply(HostStatus.OK, 2)

    # -- response ---------------------------------------------------------------------------------
    def send_response_header(self):
        """Sync byte, status, length; then the op's payload, or the checksum when it is empty."""
        m, link = self.m, self.link
        with m.State("SEND_SYNC"):
            self.busy()
            m.d.comb += [link.error.eq(self.status != HostStatus.OK),
                         link.tx.valid.eq(1), link.tx.payload.eq(SYNC_RSP)]
            m.d.sync += self.tx_sum.eq(0)
            with m.If(link.tx.ready):
                m.next = "SEND_STATUS"
        with m.State("SEND_STATUS"):
            with m.If(self.send(self.status)):
                m.next = "SEND_LENGTH_LOW"
        with m.State("SEND_LENGTH_LOW"):
            with m.If(self.send(self.tx_len[:8])):
                m.next = "SEND_LENGTH_HIGH"
        with m.State("SEND_LENGTH_HIGH"):
            with m.If(self.send(self.tx_len[8:])):
                with m.If(self.tx_len == 0):
                    m.next = "SEND_CHECKSUM"
                with m.Else():
                    with m.Switch(self.op):
                        with m.Case(HostOp.INFO):
                            m.next = "SEND_INFO_BYTE"
                        with m.Case(HostOp.READ):
                            m.next = "READ_COMMAND"
                        with m.Case(HostOp.SPIKES):
                            m.next = "SPIKES_READ_COMMAND"
                        with m.Default():      # RUN, PREDICT: one value
                            m.next = "SEND_VALUE_BYTE"

    def send_payload(self):
        """INFO bytes; READ values (a network READ, then its bytes); RUN's and PREDICT's value;
        SPIKES (8 network READs of q per byte); then the checksum byte."""
        m, link, f, w = self.m, self.link, self.f, self.w
        info = _lookup(self.i, link.info, 8)
        with m.State("SEND_INFO_BYTE"):
            with m.If(self.send(info)):
                m.d.sync += self.i.eq(self.i + 1)
                with m.If(self.i == len(link.info) - 1):
                    m.next = "SEND_CHECKSUM"
        with m.State("READ_COMMAND"):
            with m.If(self.net_command(Op.READ, space=f.space, layer=f.layer, reg=f.read_reg,
                                       row=f.read_row[:w.neuron] + self.i)):
                m.next = "READ_RESPONSE"
        with m.State("READ_RESPONSE"):
            with m.If(self.net_response()):
                m.d.sync += [self.value.eq(link.rsp.payload.data), self.value_byte.eq(0), self.i.eq(self.i + 1)]
                m.next = "SEND_VALUE_BYTE"
        with m.State("SEND_VALUE_BYTE"):
            with m.If(self.send(self.value.as_unsigned().word_select(self.value_byte, 8))):
                m.d.sync += self.value_byte.eq(self.value_byte + 1)
                with m.If(self.value_byte == self.value_bytes - 1):
                    m.d.sync += self.value_byte.eq(0)
                    with m.If((self.op == HostOp.READ) & (self.i != self.n_loop)):
                        m.next = "READ_COMMAND"
                    with m.Else():
                        m.next = "SEND_CHECKSUM"
        with m.State("SPIKES_READ_COMMAND"):
            with m.If(self.net_command(Op.READ, space=Space.STATE, layer=f.spikes_layer, reg=Reg.Q, row=self.i)):
                m.next = "SPIKES_READ_RESPONSE"
        with m.State("SPIKES_READ_RESPONSE"):
            with m.If(self.net_response()):
                m.d.sync += [self.spike_byte.eq(self.spike_byte | (link.rsp.payload.data[0] << self.i[:3])),
                             self.i.eq(self.i + 1)]
                with m.If((self.i[:3] == 7) | (self.i + 1 == self.n_loop)):
                    m.next = "SEND_SPIKE_BYTE"
                with m.Else():
                    m.next = "SPIKES_READ_COMMAND"
        with m.State("SEND_SPIKE_BYTE"):
            with m.If(self.send(self.spike_byte)):
                m.d.sync += self.spike_byte.eq(0)
                with m.If(self.i == self.n_loop):
                    m.next = "SEND_CHECKSUM"
                with m.Else():
                    m.next = "SPIKES_READ_COMMAND"
        with m.State("SEND_CHECKSUM"):
            self.busy()
            m.d.comb += [link.tx.valid.eq(1), link.tx.payload.eq(-self.tx_sum)]
            with m.If(link.tx.ready):
                m.next = "WAIT_SYNC"
