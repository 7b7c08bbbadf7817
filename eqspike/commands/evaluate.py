"""``eqspike evaluate``: accuracy of trained weights in float and fixed point (no plots)."""

from __future__ import annotations

from . import compare as _compare

NAME = "evaluate"
HELP = ("evaluate trained weights: float continuous, float binary (training and config dynamics) "
        "and fixed-point test accuracy, agreement, spikes per inference")


def add_arguments(p) -> None:
    _compare.add_arguments(p, plots=False)


def run(args) -> int:
    return _compare.run(args, plots=False)
