"""Temporary environment variables for external tools (simulators, YoWASP)."""

from __future__ import annotations

import os

__all__ = ["save_environ", "restore_environ"]


def save_environ(keys) -> dict:
    """The current values of ``keys`` (None where unset), for :func:`restore_environ`."""
    return {k: os.environ.get(k) for k in keys}


def restore_environ(saved: dict) -> None:
    """Put back the variables saved by :func:`save_environ`, unsetting those that were unset."""
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
