"""The config object: JSON round-trip, validation errors, derived widths and ROM tables."""

import itertools
import json

import numpy as np
import pytest

from golden_model.config import (ConfigError, EqSpikeConfig, RegFormat, Schedule, TableFormats,
                                 default_config, narrow_config, wide_config)


@pytest.mark.parametrize("cfg", [
    default_config(), default_config((784, 500, 10)), narrow_config(), wide_config(),
    narrow_config((20, 8, 8, 3)).replace(lanes=4),
    EqSpikeConfig(n_free=3, n_nudged=2, eps=Schedule(kind="table", values=(1.0, 0.5, 0.5, 0.25, 0.25))),
], ids=["default", "paper", "narrow", "wide", "deep-lanes", "table"])
def test_json_round_trip(cfg, tmp_path):
    assert EqSpikeConfig.from_json(cfg.to_json()) == cfg
    cfg.save(tmp_path / "c.json")
    assert EqSpikeConfig.load(tmp_path / "c.json") == cfg


def _mutated(**changes):
    d = default_config().to_dict()
    for path, value in changes.items():
        node = d
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        last = keys[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return json.dumps(d)


@pytest.mark.parametrize("changes,message", [
    ({"v.width": -3}, r"v.width must be >= 1, not -3"),
    ({"x.frac": 30}, r"x.frac must be <= x.width \(18\), not 30"),
    ({"weights.0.width": 0}, r"weights\[0\].width must be >= 1"),
    ({"weights.1.frac": 40}, r"weights\[1\].frac must be <= weights\[1\].width \+ 16"),
    ({"layers": [64]}, r"layers must be a list of at least 2 sizes"),
    ({"layers": [64, -1, 10]}, r"layers\[1\] must be >= 1"),
    ({"n_free": 0}, r"n_free must be >= 1"),
    ({"eps": {"kind": "table", "values": [0.5] * 7}}, r"eps.values must have one entry per step .*150.*not 7"),
    ({"lam": {"kind": "power", "a0": 1.5, "eta": 0.2}}, r"lam.a0 must be in \(0.0, 1.0\]"),
    ({"eps": {"kind": "cosine"}}, r"eps.kind must be one of"),
    ({"s": {"width": 13, "frac": 12, "signed": True, "rounding": "half_up", "overflow": "clip"}},
     r"s must be unsigned with width = frac \+ 1"),
    ({"a.rounding": "nearest"}, r"a.rounding must be one of"),
    ({"phi.overflow": "explode"}, r"phi.overflow must be one of"),
    ({"v.width": "wide"}, r"v.width must be an integer, not 'wide'"),
    ({"lanes": 0}, r"lanes must be >= 1"),
])
def test_invalid_configs_give_one_line_errors(changes, message):
    with pytest.raises(ConfigError, match=message) as e:
        EqSpikeConfig.from_json(_mutated(**changes))
    assert "\n" not in str(e.value)


def test_unknown_fields_are_rejected():
    d = default_config().to_dict()
    d["colour"] = "blue"
    with pytest.raises(ConfigError, match=r"config has unknown field 'colour'"):
        EqSpikeConfig.from_dict(d)
    d = default_config().to_dict()
    d["v"]["sign"] = True
    with pytest.raises(ConfigError, match=r"v has unknown field 'sign'"):
        EqSpikeConfig.from_dict(d)
    d = default_config().to_dict()
    d["tables"]["gamma_frac"] = 3
    with pytest.raises(ConfigError, match=r"tables has unknown field 'gamma_frac'"):
        EqSpikeConfig.from_dict(d)


def test_bad_json_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid JSON"):
        EqSpikeConfig.from_json("{layers: ")
    with pytest.raises(ConfigError, match="does not exist"):
        EqSpikeConfig.load(tmp_path / "nope.json")


def test_schedule_that_rounds_to_zero_is_rejected():
    with pytest.raises(ConfigError, match=r"eps rounds to 0 at step \d+; raise tables.eps_frac"):
        default_config().replace(eps=Schedule.power(0.01, 2.0), tables=TableFormats(eps_frac=6))


def test_int64_guard():
    with pytest.raises(ConfigError, match="more than int64 holds"):
        wide_config().replace(x=RegFormat(48, 40), tables=TableFormats(24, 24, 24))


def test_config_is_frozen():
    with pytest.raises(Exception):
        default_config().lanes = 3


@pytest.mark.parametrize("cfg", [default_config((7, 5, 3)), narrow_config((5, 6, 2)),
                                 default_config((3, 4, 4, 2)).replace(
                                     weights=(RegFormat(6, 7), RegFormat(9, 3), RegFormat(4, 1)))])
def test_accumulator_width_holds_every_sum(cfg):
    """Brute force: the extreme sums of shifted weight codes fit the derived accumulator."""
    for l in range(1, cfg.n_layers):
        acc = cfg.acc_format(l)
        below, above = cfg.fan_in(l)
        wb = cfg.weights[l - 1]
        terms = [(wb.min_code << (acc.frac - wb.frac), wb.max_code << (acc.frac - wb.frac))] * below
        if above:
            wa = cfg.weights[l]
            terms += [(wa.min_code << (acc.frac - wa.frac), wa.max_code << (acc.frac - wa.frac))] * above
        lo = sum(t[0] for t in terms)
        hi = sum(t[1] for t in terms)
        assert acc.min_code <= lo and hi <= acc.max_code
        # and not wastefully wide: one bit less would not hold the most negative sum
        assert lo < -(1 << (acc.width - 3))


def test_rom_tables_follow_the_schedules():
    cfg = default_config()
    t = np.arange(1, cfg.n_steps + 1)
    assert cfg.eps_rom.shape == (cfg.n_steps,)
    assert np.all(cfg.eps_rom == np.floor(0.354 * 2**12 + 0.5))
    lam = 0.503 / t ** 0.292
    assert np.all(np.abs(cfg.lam_rom / 2**12 - lam) <= 2**-13)
    assert np.all(np.abs(cfg.inv_lam_rom / 2**10 - 1 / lam) <= 2**-11)
    assert cfg.rom_width("inv_lam") == int(cfg.inv_lam_rom.max()).bit_length()
    assert cfg.beta2_code == 256 and cfg.predictive
    assert not cfg.replace(lam=Schedule.constant(1.0)).predictive


def test_with_helpers():
    cfg = default_config((784, 500, 10))
    assert cfg.with_weight_fracs([9, 7]).weights[0].frac == 9
    with pytest.raises(ConfigError, match="one fraction-bit count per matrix"):
        cfg.with_weight_fracs([9])
    deep = cfg.with_layers((10, 20, 30, 5))
    assert len(deep.weights) == 3 and len(deep.biases) == 3
