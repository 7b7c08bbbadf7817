"""``eqspike demo``: the main job on built-in data, short enough for a first look."""

from __future__ import annotations

NAME = "demo"
HELP = "Short demonstration: a reduced convergence study, printed as a table and plotted."


def add_arguments(p):
    p.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    p.add_argument("--runs", type=int, default=3, help="convergence runs (default 3)")


def run(args) -> int:
    from pathlib import Path

    from . import converge

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    conv_args = converge_args(runs=args.runs, plot=str(out / "convergence.png"),
                              json=str(out / "convergence.json"))
    return converge.run(conv_args)


def converge_args(**overrides):
    """Default ``eqspike converge`` arguments, with overrides (for reuse by other commands)."""
    import argparse

    from . import converge

    p = argparse.ArgumentParser()
    converge.add_arguments(p)
    args = p.parse_args([])
    for k, v in overrides.items():
        setattr(args, k, v)
    return args
