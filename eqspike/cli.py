"""The ``eqspike`` command line. Each subcommand lives in ``eqspike/commands/<name>.py`` and
exposes ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; modules there
are discovered automatically, so adding a command touches no other file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import commands

__all__ = ["main", "CLIError"]


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``eqspike CMD: error: ...``), exit status 2,
    like every other input error; ``--help`` shows the usage."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message.splitlines()[0] if message else 'bad arguments'}\n")


def _one_line(e: BaseException) -> str:
    """The first line of an input error, naming the file for OS errors that carry one."""
    if isinstance(e, OSError) and e.filename is not None and not isinstance(e, FileNotFoundError):
        return f"{e.filename}: {e.strerror or type(e).__name__}"
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _command_modules():
    mods = []
    for info in pkgutil.iter_modules(commands.__path__):
        if not info.name.startswith("_"):
            mods.append(importlib.import_module(f"{commands.__name__}.{info.name}"))
    return sorted(mods, key=lambda m: m.NAME)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="eqspike",
        description="Spiking equilibrium propagation: golden models, RTL, co-simulation, FPGA builds.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a bad argument (2, one line already printed)
        return e.code if isinstance(e.code, int) else 2
    from golden_model.config import ConfigError
    try:
        return int(args._run(args) or 0)
    # input errors: the data, config and checkpoint loaders and the output checks raise these
    # with one-line messages; OSError covers a path that turns out unreadable or unwritable late;
    # FloatingPointError is training's "diverged, lower the learning rates"; ArgumentError comes
    # from a parser built with exit_on_error=False (tune's trials parse train's options)
    except (CLIError, ConfigError, ValueError, OSError, FloatingPointError, argparse.ArgumentError) as e:
        print(f"eqspike {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
