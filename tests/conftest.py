"""Shared pytest options and the test tiers.

Every test belongs to one tier, cheapest first (README, "Two commands"):

``model``  golden-model unit and property tests, data, training loops, docs (numpy only);
``cli``    the command line end to end on small data;
``rtl``    RTL against the golden model in Amaranth's simulator;
``cosim``  generated Verilog in Verilator / Icarus through cocotb;
``synth``  FPGA flow (Yosys / nextpnr) and the board tools.

A test module's tier comes from its name (``TIERS`` below) unless it sets ``pytestmark``
itself. ``pytest -m model`` is the inner loop; ``make test`` runs every tier in this order.
"""

import warnings

import pytest
from amaranth.hdl import UnusedElaboratable

# Tests build components on purpose without elaborating them (signatures, memory lists, cycle
# formulas); Amaranth reports each one when it is garbage-collected, many after pytest's summary.
warnings.filterwarnings("ignore", category=UnusedElaboratable)

#: Tier order, cheapest first.
TIER_ORDER = ("model", "cli", "rtl", "cosim", "synth")

#: Module-name prefixes per tier (the first match wins; anything else is ``model``).
TIERS = (
    ("test_cli_", "cli"), ("test_compare", "cli"), ("test_converge", "cli"),
    ("test_fuzz_inputs", "cli"), ("test_executor", "cli"), ("test_run_fpga", "cli"),
    ("test_rtl_", "rtl"), ("test_hostlink", "rtl"),
    ("test_sim", "rtl"),
    ("test_hostlink_fuzz", "cosim"), ("test_cosim_", "cosim"), ("test_verify", "cosim"),
    ("test_synth", "synth"),
)


def pytest_addoption(parser):
    parser.addoption("--seed", type=int, default=None,
                     help="seed of the randomized co-simulation tests (default: each test's fixed seed; "
                          "the seed used is printed, so a failure can be replayed with --seed N)")


def _tier_of_module(name: str) -> str:
    best = ""
    tier = "model"
    for prefix, t in TIERS:      # longest matching prefix wins (test_hostlink_fuzz over test_hostlink)
        if name.startswith(prefix) and len(prefix) > len(best):
            best, tier = prefix, t
    return tier


def pytest_collection_modifyitems(config, items):
    def tier(item):
        own = [m.name for m in item.iter_markers() if m.name in TIER_ORDER]
        if own:
            return own[0]
        t = _tier_of_module(item.module.__name__.rsplit(".", 1)[-1])
        if item.get_closest_marker("slow") is None:    # `pytest -m model` never picks a slow run
            item.add_marker(getattr(pytest.mark, t))
        return t
    order = {t: i for i, t in enumerate(TIER_ORDER)}
    items.sort(key=lambda item: order[tier(item)])     # stable: file order kept within a tier


@pytest.fixture(scope="session")
def cli_run(tmp_path_factory):
    """Run ``eqspike`` with ``argv`` and ``--out DIR/run --json DIR/train.json`` in a fresh
    folder named after ``name``; asserts exit status 0 and returns ``(out, json_path)``."""
    from eqspike.cli import main

    def run(name: str, argv: list) -> tuple:
        out = tmp_path_factory.mktemp(name) / "run"
        js = out.parent / "train.json"
        assert main(argv + ["--out", str(out), "--json", str(js)]) == 0
        return out, js
    return run


@pytest.fixture
def cli_error(capsys):
    """Run ``eqspike`` with ``argv``; asserts exit status 2 and exactly one line on stderr, and
    returns that line (the CLI's rule for bad input)."""
    from eqspike.cli import main

    def run(argv: list) -> str:
        rc = main(argv)
        err = capsys.readouterr().err.strip()
        assert rc == 2, err
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        return err
    return run
