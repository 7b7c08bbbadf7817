"""Progress output shared by long-running commands (tqdm on a terminal, plain lines otherwise)."""

from __future__ import annotations

import sys

from tqdm import tqdm

__all__ = ["progress", "write"]


def progress(iterable=None, total=None, desc=None, unit="it", disable=False, **options):
    """A tqdm progress bar on stderr; a few plain lines when stderr is not a terminal.
    ``options`` go to tqdm (``bar_format``, ``leave``, ...)."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, file=sys.stderr,
                dynamic_ncols=True, mininterval=0.5 if sys.stderr.isatty() else 10.0, **options)


def write(line: str, file=None) -> None:
    """Print ``line`` (stdout by default) above any progress bar, which is redrawn below it."""
    tqdm.write(line, file=file or sys.stdout)
