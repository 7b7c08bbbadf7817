"""Host link: UART, frame protocol, error replies and recovery, and the host driver end to end
against the simulated board top (the serial wire driven bit by bit in Amaranth's simulator),
compared with the golden model."""

from __future__ import annotations

import random
import struct
from fractions import Fraction

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from golden_model.config import RegFormat, default_config
from golden_model.fixed_model import FixedModel, quantise_params
from golden_model.float_model import glorot_params
from rtl.network import Phase, Reg, Space, Status
from synth.driver import Board, HostLinkError
from synth.protocol import (PHASE, PROTOCOL_VERSION, REG, SPACE, STATUS_REG, HostOp, HostStatus, checksum,
                            config_crc, encode_request, inference_link_bytes, info_bytes, link_inferences_per_s,
                            pack_values, parse_info, unpack_values)
from sim.simuart import SimTransport
from synth.uart import UARTRx, UARTTx, baud_period

TIMEOUT = 300     # host-link mid-frame timeout of the simulated boards (cycles)


# -- protocol (pure Python) -----------------------------------------------------------------------
def test_protocol_numbers_match_rtl_enums():
    assert SPACE == {s.name.lower(): s.value for s in Space}
    assert REG == {r.name.lower(): r.value for r in Reg}
    assert STATUS_REG == {s.name.lower(): s.value for s in Status}
    assert PHASE == {0: Phase.FREE.value, 1: Phase.NUDGE_POS.value, -1: Phase.NUDGE_NEG.value}


def test_request_checksum_sums_to_zero():
    frame = encode_request(HostOp.WRITE, bytes(range(200)))
    assert frame[0] == 0xA5 and struct.unpack("<H", frame[2:4])[0] == 200
    assert sum(frame[1:]) % 256 == 0
    assert checksum(b"") == 0 and checksum(b"\x01") == 0xFF


def test_info_round_trip():
    cfg = default_config((64, 100, 10)).replace(lanes=10)
    info = parse_info(info_bytes(cfg, 12_000_000, 115200))
    assert info["layers"] == (64, 100, 10) and info["lanes"] == 10 and info["clk_hz"] == 12_000_000
    assert info["config_crc"] == config_crc(cfg) != config_crc(cfg.replace(lanes=4))
    with pytest.raises(ValueError, match="not an eqspike board"):
        parse_info(b"XXXX\x01\x02\x04")


@pytest.mark.parametrize("bits,signed", [(1, False), (3, True), (8, True), (13, False), (16, True)])
def test_pack_values_round_trip(bits, signed):
    rng = random.Random(bits)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    values = [lo, hi] + [rng.randint(lo, hi) for _ in range(21)]
    data = pack_values(values, bits, signed)
    assert len(data) == -(-len(values) * bits // 8)             # as few bytes as the format needs
    assert unpack_values(data, bits, len(values), signed) == values
    with pytest.raises(ValueError, match="value 1 must be in"):
        pack_values([0, hi + 1], bits, signed)


def test_link_inferences_per_s_formula():
    cfg = default_config((784, 500, 10))
    n = inference_link_bytes(cfg)
    # RESET 5+5, WRITE 5+8+ceil(784*13/8) and 5, RUN 8 and 5+RBYTES, PREDICT 5 and 7
    assert n["request"] == 5 + 13 + 1274 + 8 + 5
    assert link_inferences_per_s(cfg, 3_000_000) == pytest.approx(300_000 / n["total"])


@pytest.mark.parametrize("clk,baud,period", [(12e6, 115200, Fraction(625, 6)), (50e6, 115200, Fraction(31250, 72)),
                                              (50_000_000, 3_000_000, Fraction(50, 3)), (12_000_000, 3_000_000, 4),
                                              (25e6, 1_000_000, 25)])
def test_baud_period_is_exact(clk, baud, period):
    assert baud_period(clk, baud) == period


def test_baud_period_rejects_bad_rates():
    with pytest.raises(ValueError, match="too fast"):
        baud_period(12e6, 4_000_000)
    with pytest.raises(ValueError, match="whole number of Hz"):
        baud_period(12e6 + 0.5, 115200)
    with pytest.raises(ValueError, match="baud must be a positive integer"):
        baud_period(12e6, 0)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")    # the refused top
def test_serial_top_refuses_a_baud_the_link_cannot_keep_up_with():
    """1-bit weights: a byte holds 8 values, 8 network writes; at 4 cycles per bit a byte comes
    every 40 cycles, too fast. At 50 MHz (167 cycles a byte) it is fine."""
    from synth.hostlink import link_byte_cycles
    from synth.top import SerialTop
    one = RegFormat(width=1, frac=0, signed=True, rounding="half_up", overflow="saturate")
    cfg = default_config((8, 6, 3)).replace(weights=(one, one))
    with pytest.raises(ValueError, match="too fast for the host link"):
        SerialTop(cfg, 12_000_000, 3_000_000)
    assert 40 < link_byte_cycles(cfg) <= 10 * 50 / 3
    assert link_byte_cycles(default_config((8, 6, 3))) <= 40


# -- UART --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("divisor", [4, 7, Fraction(9, 2), Fraction(50, 3)])
def test_uart_loopback_with_idle_gaps_and_backpressure(divisor):
    m = Module()
    m.submodules.tx = tx = UARTTx(divisor)
    m.submodules.rx = rx = UARTRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    rng = random.Random(str(divisor))
    sent = [0x00, 0xFF, 0x55, 0xAA] + [rng.randrange(256) for _ in range(24)]
    got = []

    async def source(ctx):
        for byte in sent:
            ctx.set(tx.data.payload, byte)
            ctx.set(tx.data.valid, 1)
            await ctx.tick().until(tx.data.ready)
            ctx.set(tx.data.valid, 0)
            for _ in range(rng.randrange(3) * round(divisor)):      # idle line between some bytes
                await ctx.tick()

    async def sink(ctx):
        while len(got) < len(sent):
            ready = rng.random() < 0.5                       # consumer slower than a cycle
            ctx.set(rx.data.ready, ready)
            if ready and ctx.get(rx.data.valid):             # transfer at the coming edge
                got.append(ctx.get(rx.data.payload))
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    assert got == sent


@pytest.mark.parametrize("period", [5, Fraction(50, 3)])
def test_uart_tx_bit_edges_within_one_cycle_of_exact_rate(period):
    """Back-to-back bytes: every line transition lies within one cycle of ``k * period`` after
    the first start bit (the rate is exact, not the nearest integer divisor)."""
    dut = UARTTx(period)
    data = [0x55, 0xAA, 0x0F, 0xF0, 0x33] * 4
    edges, expect = [], []

    async def bench(ctx):
        prev, sent = 1, 0
        for cycle in range(1, int((len(data) * 10 + 3) * period)):
            ctx.set(dut.data.valid, int(sent < len(data)))
            ctx.set(dut.data.payload, data[min(sent, len(data) - 1)])
            took = sent < len(data) and ctx.get(dut.data.ready)
            await ctx.tick()
            sent += took
            if ctx.get(dut.tx) != prev:
                edges.append(cycle)
                prev ^= 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    bits = []
    for byte in data:
        bits += [0] + [(byte >> i) & 1 for i in range(8)] + [1]
    expect = [i for i in range(1, len(bits)) if bits[i] != bits[i - 1]]
    t0 = edges[0]
    assert len(edges) == len(expect) + 1
    for k, e in zip(expect, edges[1:]):
        assert abs((e - t0) - k * period) < 1, (k, e - t0, float(k * period))


def test_uart_rx_drops_byte_with_bad_stop_bit():
    div = 4
    dut = UARTRx(div)
    seen = {"bytes": [], "frame_err": 0}

    async def bench(ctx):
        async def send(byte, stop):
            for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [stop]:
                ctx.set(dut.rx, bit)
                for _ in range(div):
                    await ctx.tick()
                    seen["frame_err"] += ctx.get(dut.frame_err)
                    if ctx.get(dut.data.valid):
                        seen["bytes"].append(ctx.get(dut.data.payload))
        ctx.set(dut.data.ready, 1)
        await send(0x3C, stop=0)
        ctx.set(dut.rx, 1)
        for _ in range(4 * div):
            await ctx.tick()
        await send(0xC3, stop=1)
        for _ in range(4 * div):
            await ctx.tick()
            if ctx.get(dut.data.valid):
                seen["bytes"].append(ctx.get(dut.data.payload))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen["frame_err"] == 1
    assert seen["bytes"] == [0xC3]


# -- host link on a tiny network: every error, and recovery ----------------------------------------
@pytest.fixture(scope="module")
def tiny():
    cfg = default_config((8, 6, 3))
    tr = SimTransport(cfg, timeout=TIMEOUT)
    yield cfg, tr, Board(tr, cfg)
    tr.close()


def _raw(tr, board, frame: bytes):
    tr.write(frame)
    return board.read_response()


def _bad_checksum(frame: bytes) -> bytes:
    return frame[:-1] + bytes([frame[-1] ^ 0x10])


READ = lambda space, layer, reg, row, count: encode_request(      # noqa: E731
    HostOp.READ, struct.pack("<BBBHH", SPACE[space], layer, reg, row, count))
WRITE = lambda space, layer, row, col, count, values: encode_request(      # noqa: E731
    HostOp.WRITE, struct.pack("<BBHHH", SPACE[space], layer, row, col, count) + bytes(values))

MALFORMED = {
    "bad_checksum": (_bad_checksum(encode_request(HostOp.INFO)), HostStatus.CHECKSUM),
    "bad_checksum_beats_bad_op": (_bad_checksum(encode_request(0x77)), HostStatus.CHECKSUM),
    "unknown_op": (encode_request(0x77), HostStatus.OPCODE),
    "reset_with_payload": (encode_request(HostOp.RESET, b"\x00"), HostStatus.LENGTH),
    "read_short": (encode_request(HostOp.READ, b"\x04\x01\x03"), HostStatus.LENGTH),
    "read_past_layer": (READ("state", 1, REG["s"], 5, 2), HostStatus.ADDRESS),
    "read_layer_out_of_range": (READ("state", 3, REG["s"], 0, 1), HostStatus.ADDRESS),
    "read_input_has_no_v": (READ("state", 0, REG["v"], 0, 1), HostStatus.ARGUMENT),
    "read_bad_space": (READ("weight", 1, 0, 0, 1), HostStatus.ARGUMENT),
    "status_count_not_1": (READ("status", 0, STATUS_REG["tick"], 0, 2), HostStatus.ADDRESS),
    "write_too_few_values": (WRITE("bias", 1, 0, 0, 3, [1, 0, 2, 0]), HostStatus.LENGTH),
    "write_header_cut": (encode_request(HostOp.WRITE, b"\x01\x01\x00"), HostStatus.LENGTH),
    "write_past_matrix": (WRITE("weight", 1, 5, 0, 4, [1, 2, 3, 4]), HostStatus.ADDRESS),
    "write_column_out_of_range": (WRITE("weight", 0, 0, 6, 1, [1]), HostStatus.ADDRESS),
    "write_bias_of_input_layer": (WRITE("bias", 0, 0, 0, 1, [1, 0]), HostStatus.ADDRESS),
    "write_bad_space": (WRITE("state", 1, 0, 0, 1, [1]), HostStatus.ARGUMENT),
    "write_zero_count": (WRITE("input", 0, 0, 0, 0, []), HostStatus.ARGUMENT),
    "run_bad_phase": (encode_request(HostOp.RUN, b"\x03\x01\x00"), HostStatus.ARGUMENT),
    "spikes_bad_layer": (encode_request(HostOp.SPIKES, b"\x05"), HostStatus.ADDRESS),
    # the checks compute at the config's widths: fields whose low bits look valid but whose
    # high bits are set are still out of range
    "read_row_high_bits": (READ("state", 1, REG["s"], 0x0100, 1), HostStatus.ADDRESS),
    "read_count_high_bits": (READ("state", 1, REG["s"], 0, 0x8001), HostStatus.ADDRESS),
    "write_bias_row_high_bits": (WRITE("bias", 1, 0x8000, 0, 1, [1, 0]), HostStatus.ADDRESS),
    "write_input_count_high_bits": (WRITE("input", 0, 0, 0, 0x0101, [1, 0]), HostStatus.ADDRESS),
    "write_weight_row_high_bits": (WRITE("weight", 0, 0x0400, 0, 1, [1]), HostStatus.ADDRESS),
    "write_weight_col_high_bits": (WRITE("weight", 0, 0, 0x1000, 1, [1]), HostStatus.ADDRESS),
    "write_weight_count_high_bits": (WRITE("weight", 0, 0, 0, 0x4001, [1]), HostStatus.ADDRESS),
    "truncated_frame": (READ("state", 1, REG["s"], 0, 2)[:6], HostStatus.TIMEOUT),
    "length_beyond_data": (bytes([0xA5, HostOp.INFO, 9, 0, 1, 2]), HostStatus.TIMEOUT),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_frame_gets_error_reply_and_next_frame_works(tiny, case):
    cfg, tr, board = tiny
    frame, want = MALFORMED[case]
    status, payload = _raw(tr, board, frame)
    assert (HostStatus(status), payload) == (want, b"")
    assert board.status("tick") == 0                   # the next valid frame is answered normally


def test_noise_before_sync_is_ignored(tiny):
    cfg, tr, board = tiny
    tr.write(b"\x00\x13\x5a\xff")
    assert board.info()["config_crc"] == config_crc(cfg)


def test_rejected_write_writes_nothing(tiny):
    cfg, tr, board = tiny
    board.request(HostOp.RESET)
    board.write("input", [4096, 0, 2048, 1, 2, 3, 4, 4095])
    with pytest.raises(HostLinkError, match="LENGTH"):        # count 3, only 2 values
        board.request(HostOp.WRITE, struct.pack("<BBHHH", SPACE["input"], 0, 0, 0, 3) + b"\x07\x00\x07\x00")
    with pytest.raises(HostLinkError, match="ADDRESS"):       # past the 8 inputs
        board.request(HostOp.WRITE, struct.pack("<BBHHH", SPACE["input"], 0, 6, 0, 3) + b"\x07\x00" * 3)
    assert list(board.read(0, "s")) == [4096, 0, 2048, 1, 2, 3, 4, 4095]


def test_write_crosses_matrix_rows_and_read_back(tiny):
    """Weights of one frame run on across rows: check them through the network's behaviour by
    comparing with the model after a few ticks (every register of every layer)."""
    cfg, tr, board = tiny
    rng = np.random.default_rng(3)
    w, b, _ = quantise_params(cfg, glorot_params(cfg.layers, rng))
    b = [np.asarray(x) + rng.integers(-300, 300, size=x.shape) for x in b]
    model = FixedModel(cfg, w, b)
    board.load(model)
    x = model.encode_inputs(rng.uniform(0, 1, size=cfg.layers[0]))
    y = np.zeros(cfg.layers[-1], dtype=np.int64)
    y[1] = 1 << cfg.s.frac
    board.reset(x, y)
    st = model.reset(x[None], y[None])
    assert board.run(4) == 4
    assert board.run(2, nudge_sign=-1) == 6
    spikes = np.zeros(cfg.n_layers, dtype=np.int64)
    for t in range(6):
        q = model.tick(st, 0 if t < 4 else -1)
        spikes += [int(ql.sum()) for ql in q]
    for l in range(cfg.n_layers):
        regs = st.registers(l)
        for name in ("s", "a", "rho_last", "phi", "q") + (("v", "x", "acc") if l else ()):
            assert list(board.read(l, name)) == list(regs[name][0]), (l, name)
        assert list(board.spikes(l)) == list(st.q[l][0])
    assert board.predict() == int(np.argmax(st.s[-1][0]))
    assert board.status("tick") == 6
    assert [board.status("spikes", l) for l in range(cfg.n_layers)] == list(spikes)


class _CountingTransport:
    """Counts the bytes both ways through a transport."""

    def __init__(self, t):
        self.t, self.sent, self.received = t, 0, 0

    def write(self, data):
        self.sent += len(data)
        return self.t.write(data)

    def read(self, n):
        out = self.t.read(n)
        self.received += len(out)
        return out


def test_3mbaud_at_50mhz_and_inference_bytes_over_the_simulated_line():
    """The ULX3S FT231X's 3 Mbaud at the 50 MHz core clock: 50/3 cycles per bit (bit edges on
    the nearest cycle) both ways; packed inputs land; an inference moves exactly the bytes
    ``inference_link_bytes`` counts (the figure the docs' inferences/s table is computed from)."""
    cfg = default_config((8, 6, 3))
    tr = SimTransport(cfg, divisor=Fraction(50, 3), timeout=TIMEOUT * 5)
    board = Board(tr, cfg)
    try:
        info = board.check()
        assert info["version"] == PROTOCOL_VERSION == 2
        assert Fraction(info["clk_hz"], info["baud"]) == Fraction(50, 3)
        x = np.array([4096, 0, 1, 4095, 2048, 7, 1000, 3])
        count = _CountingTransport(tr)
        counted = Board(count, cfg)
        counted.infer(x, ticks=1)
        assert count.sent + count.received == inference_link_bytes(cfg)["total"]
        assert list(board.read(0, "s")) == list(x)
    finally:
        tr.close()


def test_narrow_formats_pack_several_values_per_byte_over_uart():
    """3-bit weights (8 values in 3 bytes, values across byte boundaries) and 11-bit biases
    written over the wire run the network exactly as the model."""
    w_fmt = RegFormat(width=3, frac=1, signed=True, rounding="half_up", overflow="saturate")
    b_fmt = RegFormat(width=11, frac=7, signed=True, rounding="half_up", overflow="saturate")
    cfg = default_config((8, 6, 3)).replace(weights=(w_fmt, w_fmt), biases=(b_fmt, b_fmt))
    rng = np.random.default_rng(5)
    w = [rng.integers(-4, 4, size=(8, 6)), rng.integers(-4, 4, size=(6, 3))]
    b = [rng.integers(-1024, 1024, size=6), rng.integers(-1024, 1024, size=3)]
    model = FixedModel(cfg, w, b)
    tr = SimTransport(cfg, timeout=TIMEOUT)
    board = Board(tr, cfg)
    try:
        board.load(model)
        x = rng.integers(0, 4097, size=8)
        board.reset(x)
        st = model.reset(x[None])
        board.run(3)
        model.run(st, 3)
        for l in (1, 2):
            for name in ("v", "s", "a"):
                assert list(board.read(l, name)) == list(st.registers(l)[name][0]), (l, name)
    finally:
        tr.close()


# -- real digits through the simulated serial line, against the golden model ----------------------
def _digits_model(cfg, seed=0):
    from experiments.data import load_digits
    data = load_digits()
    w, b, _ = quantise_params(cfg, glorot_params(cfg.layers, np.random.default_rng(seed)))
    return FixedModel(cfg, w, b), data


def test_small_digits_network_loaded_over_uart_matches_model():
    """Everything over the wire: weights, biases, a real digit, free and nudged ticks."""
    cfg = default_config((64, 6, 10))
    model, data = _digits_model(cfg, seed=1)
    tr = SimTransport(cfg, timeout=TIMEOUT)
    board = Board(tr, cfg)
    try:
        board.check()
        board.load(model)
        x = model.encode_inputs(data.x_test[0])
        y = np.zeros(10, dtype=np.int64)
        y[data.y_test[0]] = 1 << cfg.s.frac
        board.reset(x, y)
        st = model.reset(x[None], y[None])
        board.run(5)
        board.run(2, nudge_sign=1)
        model.run(st, 5)
        model.run(st, 2, nudge_sign=1)
        for l in (1, 2):
            assert list(board.read(l, "s")) == list(st.s[l][0])
            assert list(board.read(l, "phi")) == list(st.phi[l][0])
            assert list(board.spikes(l)) == list(st.q[l][0])
        assert board.predict() == int(np.argmax(st.s[-1][0]))
    finally:
        tr.close()


def test_digits_64_100_10_inference_over_uart_matches_model():
    """The real digits network (64-100-10, 10 lanes) on a real test digit: weights in memory
    (backdoor) except row ``j`` of W0, which goes over the wire on top of zeros; input, run,
    predicted class, output states and hidden spikes over the wire; all equal the model's."""
    cfg = default_config((64, 100, 10)).replace(lanes=10)
    model, data = _digits_model(cfg)
    x = model.encode_inputs(data.x_test[0])
    j = int(np.argmax(x))                                  # the brightest pixel spikes first
    w0 = model.weights[0].copy()
    w0[j] = 0
    pre = FixedModel(cfg, [w0] + list(model.weights[1:]), model.biases)
    tr = SimTransport(cfg, timeout=TIMEOUT, preload=pre)
    board = Board(tr, cfg)
    try:
        board.check()
        board.write("weight", model.weights[0][j], layer=0, row=j)
        ticks = 6
        pred = board.infer(x, ticks)
        st = model.reset(x[None])
        model.run(st, ticks)
        assert pred == int(np.argmax(st.s[-1][0]))
        assert list(board.read(2, "s")) == list(st.s[2][0])
        assert list(board.spikes(1)) == list(st.q[1][0])
        # without row j the hidden layer would differ: the wire write mattered
        st0 = pre.reset(x[None])
        pre.run(st0, ticks)
        assert not np.array_equal(st0.v[1], st.v[1])
        assert list(board.read(1, "v")) == list(st.v[1][0])
    finally:
        tr.close()


@pytest.mark.slow
def test_default_digits_network_full_load_and_inference_over_uart():
    """Default config (1 lane), every weight over the wire, a full free phase (minutes)."""
    cfg = default_config((64, 100, 10))
    model, data = _digits_model(cfg)
    tr = SimTransport(cfg, timeout=TIMEOUT, idle_cycles=20000)
    board = Board(tr, cfg)
    try:
        board.check()
        board.load(model)
        for i in range(2):
            x = model.encode_inputs(data.x_test[i])
            assert board.infer(x) == int(model.predict(x[None])[0])
    finally:
        tr.close()
