"""The fan-out options every fanning-out command shares (``--jobs``, ``--address``)."""

from __future__ import annotations

__all__ = ["add_executor_arguments", "executor_from"]


def add_executor_arguments(p, what: str = "tasks", default_jobs: str = "the CPU count",
                           quiet: bool = True) -> None:
    """``--jobs N`` (local Ray CPUs; 1 runs in this process, the sequential path),
    ``--address HOST:PORT`` (a Ray cluster; default ``RAY_ADDRESS``, else a local Ray) and,
    with ``quiet``, ``--quiet`` (no progress bar)."""
    p.add_argument("--jobs", "--processes", dest="jobs", type=int, default=None,
                   help=f"{what} at once on the embedded local Ray (default: {default_jobs}); 1 runs them "
                        "one after another in this process (no Ray); results do not depend on it")
    p.add_argument("--address", default=None, metavar="HOST:PORT",
                   help="run on the Ray cluster at this address (default: $RAY_ADDRESS, else a local Ray "
                        "started for this command); the nodes need this project installed")
    if quiet:
        p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_resume_argument(p, where: str, inputs: str = "the same inputs") -> None:
    """``--no-resume``: redo the tasks whose results are kept in ``where`` (default: a rerun with
    ``inputs`` and the same code reuses them)."""
    p.add_argument("--no-resume", action="store_true",
                   help=f"redo tasks already saved in {where} (default: a rerun with {inputs} and the same "
                        "code reuses them)")


def executor_from(args, jobs: int | None = None):
    """The :class:`runtime.executor.Executor` the options ask for; ``jobs`` overrides ``--jobs``."""
    from runtime.executor import Executor

    from ..cli import CLIError

    jobs = getattr(args, "jobs", None) if jobs is None else jobs
    address = getattr(args, "address", None)
    if jobs is not None and jobs < 1:
        raise CLIError(f"--jobs must be >= 1, not {jobs}")
    if address is not None and not _looks_like_address(address):
        raise CLIError(f"--address must be HOST:PORT (or ray://HOST:PORT), not {address!r}")
    quiet = getattr(args, "quiet", False) or getattr(args, "no_progress", False)
    return Executor(address=address, jobs=jobs, quiet=quiet)


def _looks_like_address(text: str) -> bool:
    host, _, port = str(text).removeprefix("ray://").rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536
