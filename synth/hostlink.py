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
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden_model.config import EqSpikeConfig
from rtl.network import Op, Phase, Reg, Space, command_layout, response_layout

from .protocol import (MAX_ARGS, SYNC_REQ, SYNC_RSP, HostOp, HostStatus, info_bytes, read_bytes,
                       value_bytes)

__all__ = ["HostLink"]


def _const_mul(x, c: int):
    """``x * c`` for a constant ``c`` as shifts and adds (Yosys would spend a DSP block on ``*``)."""
    terms = [x << i for i in range(c.bit_length()) if (c >> i) & 1]
    out = terms[0] if terms else Const(0)
    for t in terms[1:]:
        out = out + t
    return out


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


class HostLink(wiring.Component):
    """Frame decoder/encoder between a byte stream pair and the network's host streams.

    Parameters
    ----------
    cfg : EqSpikeConfig
    clk_hz, baud : int
        Reported by INFO (the link itself does not use them).
    timeout : int
        Clock cycles without a byte, mid-frame, before the frame is answered ``TIMEOUT``.

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
    """

    def __init__(self, cfg: EqSpikeConfig, clk_hz: int, baud: int, timeout: int):
        if not isinstance(cfg, EqSpikeConfig):
            raise TypeError(f"cfg must be an EqSpikeConfig, not {cfg!r}")
        if max(cfg.layers) * read_bytes(cfg) > 0xFFFF:
            raise ValueError(f"layers must have at most {0xFFFF // read_bytes(cfg)} neurons for the host link "
                             f"(a READ response of a whole layer must fit in 65535 bytes), not {max(cfg.layers)}")
        if not isinstance(timeout, int) or timeout < 1:
            raise ValueError(f"timeout must be a positive integer, not {timeout!r}")
        self.cfg, self.timeout = cfg, timeout
        self.info = info_bytes(cfg, clk_hz, baud)
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
        cfg = self.cfg
        L = cfg.layers
        k = cfg.n_layers - 1
        rbytes = read_bytes(cfg)

        # -- receive registers -------------------------------------------------------------------
        op = Signal(8)
        length = Signal(16)
        cnt = Signal(16)                 # payload bytes received
        rsum = Signal(8)                 # running sum of the request (after the sync byte)
        args = Array(Signal(8, name=f"arg{i}") for i in range(MAX_ARGS))
        timer = Signal(range(self.timeout + 1))
        hdr_err = Signal(HostStatus.__len__().bit_length())
        status = Signal.like(hdr_err)

        def u16(lo):
            return Cat(args[lo], args[lo + 1])

        # -- argument fields (request payload offsets per op) --------------------------------------
        a_space, a_layer = args[0], args[1]
        # WRITE: space, layer, row[2], col[2], count[2]
        w_row0, w_col0, w_count = u16(2), u16(4), u16(6)
        # READ: space, layer, reg, row[2], count[2]
        r_reg, r_row0, r_count = args[2], u16(3), u16(5)
        # RUN: phase, ticks[2];  SPIKES: layer
        run_phase, run_ticks = args[0], u16(1)
        # The checks compute at the config's widths: a neuron index or count has NB bits and a
        # flat weight index SB bits; a field with bits above those is out of range anyway.
        NB = max(L).bit_length()                                  # n_l < 2**NB
        SB = max(L[mat] * L[mat + 1] for mat in range(k)).bit_length()   # weight count < 2**SB
        n_of = lambda layer: _lookup(layer, L, NB)

        def fits(row0, count, n):
            """``row0 + count <= n`` for 16-bit fields and an NB-bit ``n``."""
            return _below(row0, NB) & _below(count, NB + 1) & (row0[:NB] + count[:NB + 1] <= n)

        # -- WRITE header check -----------------------------------------------------------------
        wbytes = _lookup(a_layer, [value_bytes(cfg, "weight", i) for i in range(k)], 4)
        bbytes = _lookup(a_layer, [0] + [value_bytes(cfg, "bias", i) for i in range(1, k + 1)], 4)
        sbytes = value_bytes(cfg, "input")
        vbytes = Signal(4)
        w_ok_space, w_ok_addr = Signal(), Signal()
        with m.Switch(a_space):
            with m.Case(Space.WEIGHT):
                # flat index row * cols + col: a constant multiply per matrix (shifts and adds)
                fw = max((2 ** NB - 1) * L[mat + 1] for mat in range(k)) + 2 ** NB + 2 ** SB
                flat0 = Const(0, fw.bit_length())
                for mat in range(k):
                    flat0 = Mux(a_layer == mat, _const_mul(w_row0[:NB], L[mat + 1]), flat0)
                size = _lookup(a_layer, [L[mat] * L[mat + 1] for mat in range(k)], SB)
                m.d.comb += [vbytes.eq(wbytes), w_ok_space.eq(1),
                             w_ok_addr.eq((a_layer < k) & _below(w_row0, NB) & _below(w_count, SB)
                                          & (w_col0 < n_of(a_layer + 1))
                                          & (flat0 + w_col0[:NB] + w_count[:SB] <= size))]
            with m.Case(Space.BIAS):
                m.d.comb += [vbytes.eq(bbytes), w_ok_space.eq(1),
                             w_ok_addr.eq((a_layer >= 1) & (a_layer <= k) & fits(w_row0, w_count, n_of(a_layer)))]
            with m.Case(Space.INPUT):
                m.d.comb += [vbytes.eq(sbytes), w_ok_space.eq(1), w_ok_addr.eq(fits(w_row0, w_count, L[0]))]
            with m.Case(Space.TARGET):
                m.d.comb += [vbytes.eq(sbytes), w_ok_space.eq(1), w_ok_addr.eq(fits(w_row0, w_count, L[k]))]
        # payload bytes of the values: count * vbytes over the few widths this config has (the
        # count has SB bits when the address is good, and LENGTH is checked only then)
        widths = sorted({value_bytes(cfg, "weight", i) for i in range(k)}
                        | {value_bytes(cfg, "bias", i) for i in range(1, k + 1)} | {sbytes})
        w_bytes = Const(0, SB + 4)
        for nb in widths:
            w_bytes = Mux(vbytes == nb, _const_mul(w_count[:SB], nb), w_bytes)
        # the value width depends on space and layer: check the address before the length
        w_check = Mux(~w_ok_space | (w_count == 0), HostStatus.ARGUMENT,
                      Mux(~w_ok_addr, HostStatus.ADDRESS,
                          Mux(length != MAX_ARGS + w_bytes, HostStatus.LENGTH, HostStatus.OK)))

        # -- checks of the other requests (after the checksum byte) -------------------------------
        r_reg_ok = Mux(a_space == Space.STATE,
                       (r_reg < 8) & ((a_layer != 0) | (r_reg >= Reg.S.value)),
                       r_reg < 8)
        r_check = Mux(length != 7, HostStatus.LENGTH,
                      Mux(((a_space != Space.STATE) & (a_space != Space.STATUS)) | ~r_reg_ok | (r_count == 0),
                          HostStatus.ARGUMENT,
                          Mux((a_layer > k) | Mux(a_space == Space.STATUS, r_count != 1,
                                                  ~fits(r_row0, r_count, n_of(a_layer))),
                              HostStatus.ADDRESS, HostStatus.OK)))
        run_check = Mux(length != 3, HostStatus.LENGTH,
                        Mux(run_phase > Phase.NUDGE_NEG.value, HostStatus.ARGUMENT, HostStatus.OK))
        sp_check = Mux(length != 1, HostStatus.LENGTH, Mux(args[0] > k, HostStatus.ADDRESS, HostStatus.OK))
        empty_check = Mux(length != 0, HostStatus.LENGTH, HostStatus.OK)
        op_check = Signal.like(status)
        with m.Switch(op):
            with m.Case(HostOp.WRITE):
                m.d.comb += op_check.eq(hdr_err)
            with m.Case(HostOp.READ):
                m.d.comb += op_check.eq(r_check)
            with m.Case(HostOp.RUN):
                m.d.comb += op_check.eq(run_check)
            with m.Case(HostOp.SPIKES):
                m.d.comb += op_check.eq(sp_check)
            with m.Case(HostOp.INFO, HostOp.RESET, HostOp.PREDICT):
                m.d.comb += op_check.eq(empty_check)
            with m.Default():
                m.d.comb += op_check.eq(HostStatus.OPCODE)

        # -- WRITE streaming registers ----------------------------------------------------------------
        hdw = self.cmd.payload.data.shape().width
        w_row, w_col = Signal(NB), Signal(NB)     # at most n_l (the header check passed)
        w_val = Signal(8 * max(value_bytes(cfg, s, i) for s, i in
                               [("weight", i) for i in range(k)] + [("bias", i) for i in range(1, k + 1)]
                               + [("input", 0)]))
        w_vb = Signal(4)                  # byte index inside the value
        w_space, w_layer = Signal(3), Signal(range(k + 1))

        # -- response registers ---------------------------------------------------------------------
        tsum = Signal(8)
        tlen = Signal(16)
        value = Signal(signed(8 * rbytes))
        nbytes = Signal(range(rbytes + 1))     # bytes of ``value`` to send
        vb = Signal(range(rbytes + 1))
        i = Signal(range(max(max(L), len(self.info)) + 1))   # loop index (values, neurons, INFO bytes)
        n_loop = Signal.like(i)
        spbyte = Signal(8)
        sw = cfg.s.width                       # PREDICT compares states (unsigned, sw bits)
        best = Signal(sw)
        best_i = Signal(NB)
        info = Array(Const(b, 8) for b in self.info)

        net = self.cmd.payload

        def net_cmd(op_, space=Space.WEIGHT, layer=0, reg=0, phase=0, row=0, col=0, data=0):
            m.d.comb += [self.cmd.valid.eq(1), net.op.eq(op_), net.space.eq(space), net.layer.eq(layer),
                         net.reg.eq(reg), net.phase.eq(phase), net.row.eq(row), net.col.eq(col),
                         net.data.eq(data)]

        def take_byte():
            """In a state waiting for a request byte: returns the 'got a byte' condition."""
            m.d.comb += self.rx.ready.eq(1)
            with m.If(self.rx.valid):
                m.d.sync += [rsum.eq(rsum + self.rx.payload), timer.eq(0)]
            with m.Elif(timer == self.timeout):
                m.d.sync += [status.eq(HostStatus.TIMEOUT), tlen.eq(0), timer.eq(0)]
                m.next = "H_SYNC"
            with m.Else():
                m.d.sync += timer.eq(timer + 1)
            return self.rx.valid

        def send(byte):
            """In a state sending a response byte: returns the 'byte taken' condition."""
            m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(byte)]
            with m.If(self.tx.ready):
                m.d.sync += tsum.eq(tsum + byte)
            return self.tx.ready

        def reply(st, n_payload):
            m.d.sync += [status.eq(st), tlen.eq(n_payload)]
            m.next = "H_SYNC"

        b = self.rx.payload
        with m.FSM():
            with m.State("SYNC"):
                m.d.comb += self.rx.ready.eq(1)
                m.d.sync += [rsum.eq(0), timer.eq(0), hdr_err.eq(HostStatus.LENGTH)]
                with m.If(self.rx.valid & (b == SYNC_REQ)):
                    m.next = "OP"
            with m.State("OP"):
                m.d.comb += self.busy.eq(1)
                with m.If(take_byte()):
                    m.d.sync += op.eq(b)
                    m.next = "LEN0"
            with m.State("LEN0"):
                m.d.comb += self.busy.eq(1)
                with m.If(take_byte()):
                    m.d.sync += length[:8].eq(b)
                    m.next = "LEN1"
            with m.State("LEN1"):
                m.d.comb += self.busy.eq(1)
                with m.If(take_byte()):
                    m.d.sync += [length[8:].eq(b), cnt.eq(0)]
                    m.d.sync += [a.eq(0) for a in args]
                    m.next = "ARGS"
                    with m.If(Cat(length[:8], b) == 0):
                        m.next = "CHK"
            with m.State("ARGS"):
                m.d.comb += self.busy.eq(1)
                with m.If(take_byte()):
                    with m.If(cnt < MAX_ARGS):
                        m.d.sync += args[cnt[:3]].eq(b)
                    m.d.sync += cnt.eq(cnt + 1)
                    with m.If((op == HostOp.WRITE) & (cnt + 1 == MAX_ARGS)):
                        m.next = "WHDR"
                    with m.Elif(cnt + 1 == length):
                        m.next = "CHK"
            with m.State("WHDR"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [hdr_err.eq(w_check), w_row.eq(w_row0), w_col.eq(w_col0), w_vb.eq(0),
                             w_val.eq(0), w_space.eq(a_space), w_layer.eq(a_layer)]
                m.next = "WDATA"
                with m.If(cnt == length):       # a header and no values
                    m.next = "CHK"
            with m.State("WDATA"):
                m.d.comb += self.busy.eq(1)
                with m.If(take_byte()):
                    m.d.sync += cnt.eq(cnt + 1)
                    # place the byte at position w_vb of the value
                    m.d.sync += w_val.eq(w_val | (b << (w_vb * 8)))
                    with m.If((w_vb == vbytes - 1) & (hdr_err == HostStatus.OK)):
                        m.d.sync += w_vb.eq(0)
                        m.next = "WCMD"
                    with m.Else():
                        m.d.sync += w_vb.eq(Mux(w_vb == vbytes - 1, 0, w_vb + 1))
                        with m.If(cnt + 1 == length):
                            m.next = "CHK"
            with m.State("WCMD"):
                m.d.comb += self.busy.eq(1)
                net_cmd(Op.WRITE, space=w_space, layer=w_layer, row=w_row, col=w_col, data=w_val)
                with m.If(self.cmd.ready):
                    m.next = "WRSP"
            with m.State("WRSP"):
                m.d.comb += [self.busy.eq(1), self.rsp.ready.eq(1)]
                with m.If(self.rsp.valid):
                    m.d.sync += w_val.eq(0)
                    with m.If(w_space == Space.WEIGHT):
                        with m.If(w_col + 1 == n_of(w_layer + 1)):     # next row of W
                            m.d.sync += [w_col.eq(0), w_row.eq(w_row + 1)]
                        with m.Else():
                            m.d.sync += w_col.eq(w_col + 1)
                    with m.Else():
                        m.d.sync += w_row.eq(w_row + 1)
                    m.next = "WDATA"
                    with m.If(cnt == length):
                        m.next = "CHK"
            with m.State("CHK"):
                m.d.comb += self.busy.eq(1)
                with m.If(take_byte()):
                    m.next = "EVAL"
            with m.State("EVAL"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [i.eq(0), vb.eq(0), spbyte.eq(0), value.eq(0)]
                with m.If(rsum != 0):
                    reply(HostStatus.CHECKSUM, 0)
                with m.Elif(op_check != HostStatus.OK):
                    reply(op_check, 0)
                with m.Else():
                    with m.Switch(op):
                        with m.Case(HostOp.INFO):
                            reply(HostStatus.OK, len(self.info))
                        with m.Case(HostOp.WRITE):
                            reply(HostStatus.OK, 0)
                        with m.Case(HostOp.READ):
                            m.d.sync += [n_loop.eq(r_count[:NB + 1]), nbytes.eq(rbytes)]
                            reply(HostStatus.OK, _const_mul(r_count[:NB + 1], rbytes))
                        with m.Case(HostOp.RUN):
                            m.next = "RUN_CMD"
                        with m.Case(HostOp.RESET):
                            m.next = "RST_CMD"
                        with m.Case(HostOp.SPIKES):
                            n = n_of(args[0])
                            m.d.sync += n_loop.eq(n)
                            reply(HostStatus.OK, (n + 7) >> 3)
                        with m.Case(HostOp.PREDICT):
                            m.next = "PR_CMD"
            # -- ops that run before their response ---------------------------------------------------
            with m.State("RUN_CMD"):
                m.d.comb += self.busy.eq(1)
                net_cmd(Op.RUN, phase=run_phase, data=run_ticks)
                with m.If(self.cmd.ready):
                    m.next = "RUN_RSP"
            with m.State("RUN_RSP"):
                m.d.comb += [self.busy.eq(1), self.rsp.ready.eq(1)]
                with m.If(self.rsp.valid):
                    m.d.sync += [value.eq(self.rsp.payload.data), nbytes.eq(rbytes)]
                    reply(HostStatus.OK, rbytes)
            with m.State("RST_CMD"):
                m.d.comb += self.busy.eq(1)
                net_cmd(Op.RESET)
                with m.If(self.cmd.ready):
                    m.next = "RST_RSP"
            with m.State("RST_RSP"):
                m.d.comb += [self.busy.eq(1), self.rsp.ready.eq(1)]
                with m.If(self.rsp.valid):
                    reply(HostStatus.OK, 0)
            with m.State("PR_CMD"):
                m.d.comb += self.busy.eq(1)
                net_cmd(Op.READ, space=Space.STATE, layer=k, reg=Reg.S, row=i)
                with m.If(self.cmd.ready):
                    m.next = "PR_RSP"
            with m.State("PR_RSP"):
                m.d.comb += [self.busy.eq(1), self.rsp.ready.eq(1)]
                with m.If(self.rsp.valid):
                    s_val = self.rsp.payload.data[:sw]
                    with m.If((i == 0) | (s_val > best)):   # first maximum wins
                        m.d.sync += [best.eq(s_val), best_i.eq(i)]
                    m.d.sync += i.eq(i + 1)
                    m.next = "PR_CMD"
                    with m.If(i == L[k] - 1):
                        m.next = "PR_DONE"
            with m.State("PR_DONE"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [value.eq(best_i), nbytes.eq(2)]
                reply(HostStatus.OK, 2)
            # -- response ------------------------------------------------------------------------------
            with m.State("H_SYNC"):
                m.d.comb += [self.busy.eq(1), self.error.eq(status != HostStatus.OK)]
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(SYNC_RSP)]
                m.d.sync += tsum.eq(0)
                with m.If(self.tx.ready):
                    m.next = "H_STATUS"
            with m.State("H_STATUS"):
                m.d.comb += self.busy.eq(1)
                with m.If(send(status)):
                    m.next = "H_LEN0"
            with m.State("H_LEN0"):
                m.d.comb += self.busy.eq(1)
                with m.If(send(tlen[:8])):
                    m.next = "H_LEN1"
            with m.State("H_LEN1"):
                m.d.comb += self.busy.eq(1)
                with m.If(send(tlen[8:])):
                    with m.If(tlen == 0):
                        m.next = "T_CHK"
                    with m.Else():
                        with m.Switch(op):
                            with m.Case(HostOp.INFO):
                                m.next = "P_INFO"
                            with m.Case(HostOp.READ):
                                m.next = "P_RD_CMD"
                            with m.Case(HostOp.SPIKES):
                                m.next = "P_SP_CMD"
                            with m.Default():      # RUN, PREDICT: one value
                                m.next = "P_VAL"
            with m.State("P_INFO"):
                m.d.comb += self.busy.eq(1)
                with m.If(send(info[i])):
                    m.d.sync += i.eq(i + 1)
                    with m.If(i == len(self.info) - 1):
                        m.next = "T_CHK"
            with m.State("P_RD_CMD"):
                m.d.comb += self.busy.eq(1)
                net_cmd(Op.READ, space=a_space, layer=a_layer, reg=r_reg, row=r_row0[:NB] + i)
                with m.If(self.cmd.ready):
                    m.next = "P_RD_RSP"
            with m.State("P_RD_RSP"):
                m.d.comb += [self.busy.eq(1), self.rsp.ready.eq(1)]
                with m.If(self.rsp.valid):
                    m.d.sync += [value.eq(self.rsp.payload.data), vb.eq(0), i.eq(i + 1)]
                    m.next = "P_VAL"
            with m.State("P_VAL"):
                m.d.comb += self.busy.eq(1)
                with m.If(send(value.as_unsigned().word_select(vb, 8))):
                    m.d.sync += vb.eq(vb + 1)
                    with m.If(vb == nbytes - 1):
                        m.d.sync += vb.eq(0)
                        with m.If((op == HostOp.READ) & (i != n_loop)):
                            m.next = "P_RD_CMD"
                        with m.Else():
                            m.next = "T_CHK"
            with m.State("P_SP_CMD"):
                m.d.comb += self.busy.eq(1)
                net_cmd(Op.READ, space=Space.STATE, layer=args[0], reg=Reg.Q, row=i)
                with m.If(self.cmd.ready):
                    m.next = "P_SP_RSP"
            with m.State("P_SP_RSP"):
                m.d.comb += [self.busy.eq(1), self.rsp.ready.eq(1)]
                with m.If(self.rsp.valid):
                    m.d.sync += [spbyte.eq(spbyte | (self.rsp.payload.data[0] << i[:3])), i.eq(i + 1)]
                    with m.If((i[:3] == 7) | (i + 1 == n_loop)):
                        m.next = "P_SP_TX"
                    with m.Else():
                        m.next = "P_SP_CMD"
            with m.State("P_SP_TX"):
                m.d.comb += self.busy.eq(1)
                with m.If(send(spbyte)):
                    m.d.sync += spbyte.eq(0)
                    with m.If(i == n_loop):
                        m.next = "T_CHK"
                    with m.Else():
                        m.next = "P_SP_CMD"
            with m.State("T_CHK"):
                m.d.comb += [self.busy.eq(1), self.tx.valid.eq(1), self.tx.payload.eq(-tsum)]
                with m.If(self.tx.ready):
                    m.next = "SYNC"
        return m
