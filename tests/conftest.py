"""Shared pytest options."""


def pytest_addoption(parser):
    parser.addoption("--seed", type=int, default=None,
                     help="seed of the randomized co-simulation tests (default: each test's fixed seed; "
                          "the seed used is printed, so a failure can be replayed with --seed N)")
