"""Host-link fuzzing (issue 13.4): the frame generator and the protocol reference in Python,
then random and mutated frames against the link and the real network in Verilator
(:mod:`sim.linkfuzz`, testbench ``sim/tb_link.py``): a few hundred in the default run, 10,000
as a ``slow`` test (``python -m sim.linkfuzz --frames 10000`` prints the same counts)."""

from __future__ import annotations

import struct
from collections import Counter

import pytest

from golden_model.config import default_config
from sim.linkfuzz import FrameGenerator, FuzzFrame, ParamShadow, expected, fuzz_config, run_fuzz
from sim.runner import CosimError
from synth.protocol import (MAX_ARGS, SPACE, HostOp, HostStatus, encode_request, pack_values,
                            request_status)


def _write(space, layer, row, col, values, bits, signed=True):
    body = pack_values(values, bits, signed)
    return encode_request(HostOp.WRITE, struct.pack("<BBHHH", SPACE[space], layer, row, col, len(values)) + body)


@pytest.mark.model
def test_reference_statuses_follow_the_documented_precedence():
    cfg = default_config((8, 6, 3))
    assert request_status(cfg, 0x77, b"", checksum_ok=False) == HostStatus.CHECKSUM
    assert request_status(cfg, 0x77, b"") == HostStatus.OPCODE
    # WRITE: ARGUMENT before ADDRESS before LENGTH
    assert request_status(cfg, HostOp.WRITE, struct.pack("<BBHHH", SPACE["state"], 9, 99, 0, 1)) \
        == HostStatus.ARGUMENT
    assert request_status(cfg, HostOp.WRITE, struct.pack("<BBHHH", SPACE["bias"], 0, 0, 0, 1)) == HostStatus.ADDRESS
    assert request_status(cfg, HostOp.WRITE, struct.pack("<BBHHH", SPACE["bias"], 1, 0, 0, 1)) == HostStatus.LENGTH
    # READ: LENGTH before ARGUMENT before ADDRESS
    assert request_status(cfg, HostOp.READ, bytes(6)) == HostStatus.LENGTH
    assert request_status(cfg, HostOp.READ, struct.pack("<BBBHH", SPACE["state"], 9, 0, 0, 1)) == HostStatus.ADDRESS
    assert request_status(cfg, HostOp.READ, struct.pack("<BBBHH", SPACE["state"], 0, 1, 0, 1)) == HostStatus.ARGUMENT
    assert request_status(cfg, HostOp.RUN, b"\x02\x05\x00") == HostStatus.OK


@pytest.mark.model
def test_reference_writes_of_cut_and_bad_checksum_frames():
    """A WRITE with a good header writes each value as it arrives: a bad checksum writes all of
    them, a frame cut mid-way the values that came in whole, a bad header none."""
    cfg = default_config((8, 6, 3))            # 13-bit inputs
    frame = _write("input", 0, 2, 0, [1, 2, 3, 4], 13, signed=False)
    assert len(frame) == 5 + MAX_ARGS + 7        # 52 bits in 7 bytes
    ok = expected(cfg, FuzzFrame("valid", frame))
    assert ok.status == HostStatus.OK and ok.writes == [("input", 0, 2, 0, [1, 2, 3, 4])]
    bad = expected(cfg, FuzzFrame("bad_checksum", frame[:-1] + bytes([frame[-1] ^ 1])))
    assert bad.status == HostStatus.CHECKSUM and bad.writes == ok.writes
    cut = expected(cfg, FuzzFrame("truncated", frame[:4 + MAX_ARGS + 4], cut=True))   # 32 bits: 2 values
    assert cut.status == HostStatus.TIMEOUT and cut.writes == [("input", 0, 2, 0, [1, 2])]
    past = _write("input", 0, 6, 0, [1, 2, 3, 4], 13, signed=False)       # rows 6..9 of 8
    refused = expected(cfg, FuzzFrame("out_of_range", past))
    assert refused.status == HostStatus.ADDRESS and refused.writes == []


@pytest.mark.model
def test_shadow_writes_weights_across_rows():
    cfg = default_config((4, 3, 2))
    sh = ParamShadow(cfg)
    sh.apply("weight", 0, 1, 2, [5, 6, 7])
    assert sh.weight[0][1, 2] == 5 and list(sh.weight[0][2, :2]) == [6, 7]


@pytest.mark.model
def test_generator_draws_every_mutation_and_status():
    cfg = fuzz_config()
    gen = FrameGenerator(cfg, 7)
    kinds, statuses = Counter(), Counter()
    for _ in range(2000):
        f = gen.frame()
        kinds[f.kind] += 1
        statuses[expected(cfg, f).status] += 1
        assert 0xA5 not in f.garbage
    assert set(kinds) == set(FrameGenerator.MUTATIONS)
    assert set(statuses) == set(HostStatus)
    assert FrameGenerator(cfg, 7).frame().to_json() == FrameGenerator(cfg, 7).frame().to_json()


def _check(r, frames):
    assert r["frames"] == frames
    assert (r["hangs"], r["wrong_responses"], r["state_errors"]) == (0, 0, 0), r["errors"]
    assert r["payloads_checked"] == r["statuses"]["OK"] > 0
    assert set(r["statuses"]) == {s.name for s in HostStatus}


@pytest.mark.cosim
def test_fuzz_frames_in_verilator():
    """300 fuzzed frames: one right response each, no hang, parameters, registers and counters
    as the reference says after every frame."""
    r = run_fuzz(300, seed=3, name="pytest-300")
    _check(r, 300)


@pytest.mark.cosim
@pytest.mark.slow
def test_fuzz_10000_frames_in_verilator():
    r = run_fuzz(10000, seed=1, name="pytest-10000")
    _check(r, 10000)


@pytest.mark.cosim
@pytest.mark.slow
def test_fuzz_catches_a_planted_range_bug():
    """The link built with an off-by-one in its range check (``row + count < n``): the run fails,
    with wrong responses (valid frames refused) and state errors (their writes missing)."""
    with pytest.raises(CosimError) as e:
        run_fuzz(200, seed=3, name="pytest-fault-range", fault="range")
    r = e.value.result
    assert r["wrong_responses"] > 0 and r["state_errors"] > 0 and r["hangs"] == 0
