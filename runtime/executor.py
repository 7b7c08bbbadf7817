"""One executor for every fan-out: independent tasks on Ray, locally by default or on a cluster.

:class:`Executor` runs ``fn(item)`` (or ``fn(item, shared)``) for every item of a list and
returns one :class:`Outcome` per item, in item order. Where it runs:

* ``jobs=1`` (and no address): in this process, one item after another. This is the
  sequential reference path (no Ray start, easy to debug); every other path returns the same
  results.
* default: an embedded local Ray started once per executor with
  ``ray.init(address="local", num_cpus=jobs or the CPU count, include_dashboard=False)``.
  A plain ``ray.init()`` would silently join any cluster running on the machine (and then
  refuse ``num_cpus``), so the local start is explicit.
* ``address="HOST:PORT"`` (or ``RAY_ADDRESS``): an existing Ray cluster. Its nodes need the
  same Python environment with this project installed (``pip install -e .``).

Equal results on every path: each task limits BLAS to ``cpus`` threads (a multi-threaded BLAS
sums in another order, and on a busy machine spinning BLAS threads cost far more than they
gain: one convergence run took 488 s with default OpenBLAS threads next to other jobs, 28 s
with one), and every seed an item needs is part of the item, never derived from the worker or
the order of completion.

Failures: an exception in a task (or a lost worker) is recorded in that item's outcome with a
one-line error; the other items go on. Restarts: with ``results_dir`` every finished item is
written atomically to ``results_dir/KEY.json`` as it finishes, tagged with a fingerprint of the
item and the run's inputs; a rerun with the same inputs reuses finished items and runs only the
missing (or failed) ones.

Progress: one bar over the tasks (``runtime.progress``) with running, done and failed counts,
or over events that tasks send with :func:`emit` (``progress_total``, e.g. one per sample).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import re
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

__all__ = ["Outcome", "Executor", "map_rows", "emit", "source_digest", "one_line", "parse_seeds"]

_NO_SHARED = "__no_shared__"
#: Where :func:`emit` sends events inside the running task (set per task by the wrapper).
_EMITTER: list = []


@dataclass
class Outcome:
    """What one item gave.

    Members
    -------
    key : str
        The item's name (file name of its result in ``results_dir``).
    ok : bool
        False when the task raised or its worker was lost.
    value : object
        The task's return value (JSON round-tripped when results are saved).
    error : str or None
        One line naming the failure (``ExceptionType: message``).
    seconds : float
        Wall time of the task in its worker.
    reused : bool
        True when the result was read back from ``results_dir`` instead of run.
    """

    key: str
    ok: bool
    value: Any = None
    error: str | None = None
    seconds: float = 0.0
    reused: bool = False


def emit(event) -> None:
    """Send ``event`` (a small picklable value, e.g. a line of text) from inside a task to the
    executor's ``on_event`` callback; does nothing outside a task."""
    if _EMITTER:
        _EMITTER[-1](event)


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` of an exception."""
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0]}" if msg else type(exc).__name__


def source_digest(*paths) -> str:
    """SHA-256 (first 12 hex digits) of the ``*.py`` files under ``paths`` (files or folders):
    part of a result fingerprint, so a code change does not reuse results computed by old code."""
    h = hashlib.sha256()
    for root in paths:
        root = Path(root)
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for f in files:
            h.update(str(f.name).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


def parse_seeds(text: str) -> list:
    """Seeds from ``"0-3"``, ``"0,2,5"`` or ``"4"`` (a count is not accepted: ``"4"`` is seed 4)."""
    out = []
    try:
        for part in str(text).replace(" ", "").split(","):
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                if int(b) < int(a):
                    raise ValueError
                out += range(int(a), int(b) + 1)
            elif part:
                out.append(int(part))
    except ValueError:
        raise ValueError(f"seeds must be non-negative integers like 0-3 or 0,2,5, not {text!r}") from None
    if not out or min(out) < 0 or len(set(out)) != len(out):
        raise ValueError(f"seeds must be distinct non-negative integers like 0-3 or 0,2,5, not {text!r}")
    return out


def _blas_limit(threads: int):
    from threadpoolctl import threadpool_limits
    return threadpool_limits(max(1, int(threads)))


def _call(fn, item, shared, threads: int, emitter=None):
    """Run one task; ``("ok", value, seconds)`` or ``("error", one line, seconds, traceback)``.

    Exceptions are caught here (not left to Ray) so the error line does not depend on whether
    the exception type can be unpickled in the driver."""
    t0 = time.perf_counter()
    if emitter is not None:
        _EMITTER.append(emitter)
    try:
        with _blas_limit(threads):
            value = fn(item) if _absent(shared) else fn(item, shared)
        return ("ok", value, time.perf_counter() - t0)
    except Exception as e:       # noqa: BLE001 - recorded as the item's failure
        return ("error", one_line(e), time.perf_counter() - t0, traceback.format_exc())
    finally:
        if emitter is not None:
            _EMITTER.pop()


def _remote_call(fn, item, shared, threads: int, queue=None):
    """The Ray task body: :func:`_call` with :func:`emit` forwarded to the driver's queue."""
    emitter = (lambda ev: queue.put_nowait(ev)) if queue is not None else None
    return _call(fn, item, shared, threads, emitter)


def _jsonable(o):
    import numpy as np
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot write {type(o).__name__} as JSON")


def _safe_key(key: str) -> str:
    return re.sub(r"[^\w.+-]", "_", str(key))


class _Store:
    """Per-item result files ``DIR/KEY.json``, written atomically (temp file + rename)."""

    def __init__(self, directory, fingerprint: str):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fingerprint = fingerprint

    def item_print(self, item) -> str:
        try:
            blob = pickle.dumps(item, protocol=4)
        except Exception:        # noqa: BLE001 - an unpicklable item falls back to its repr
            blob = repr(item).encode()
        return hashlib.sha256(self.fingerprint.encode() + b"\0" + blob).hexdigest()[:16]

    def path(self, key: str) -> Path:
        return self.dir / f"{_safe_key(key)}.json"

    def load(self, key: str, item) -> Outcome | None:
        """The saved successful outcome of ``key`` made from the same inputs, else None."""
        try:
            rec = json.loads(self.path(key).read_text())
        except (OSError, ValueError):
            return None
        if rec.get("fingerprint") != self.item_print(item) or not rec.get("ok"):
            return None
        return Outcome(key, True, rec.get("value"), None, rec.get("seconds", 0.0), reused=True)

    def save(self, out: Outcome, item) -> Outcome:
        rec = {"key": out.key, "fingerprint": self.item_print(item), "ok": out.ok, "value": out.value,
               "error": out.error, "seconds": round(out.seconds, 3)}
        text = json.dumps(rec, default=_jsonable)
        path = self.path(out.key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        out.value = json.loads(text)["value"]      # the same values a resumed run reads back
        return out


class Executor:
    """Runs independent tasks through Ray (see the module docstring); a context manager.

    Parameters
    ----------
    address : str or None
        ``HOST:PORT`` of a Ray cluster; None: ``RAY_ADDRESS`` if set, else an embedded local Ray.
    jobs : int or None
        CPUs of the embedded local Ray (default: the CPU count); 1 runs in this process.
        With an address: ignored (the cluster's CPUs decide).
    quiet : bool
        No progress bar.
    """

    def __init__(self, address: str | None = None, jobs: int | None = None, quiet: bool = False):
        if jobs is not None and int(jobs) < 1:
            raise ValueError(f"jobs must be >= 1, not {jobs}")
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.jobs = int(jobs) if jobs is not None else None
        self.quiet = quiet
        self._started = False

    @property
    def serial(self) -> bool:
        """True when tasks run in this process, one after another (``jobs=1``, no address)."""
        return self.address is None and self.jobs == 1

    def describe(self) -> str:
        if self.serial:
            return "in this process (sequential)"
        if self.address:
            return f"Ray cluster at {self.address}"
        return f"local Ray, {self.jobs or os.cpu_count()} CPUs"

    # -- lifetime ----------------------------------------------------------------------------------
    def start(self, force: bool = False) -> "Executor":
        """Start (or connect to) Ray; ``force``: even for ``jobs=1`` (a 1-CPU local Ray, for
        callers that need Ray itself, such as Ray Tune)."""
        if (self.serial and not force) or self._started:
            return self
        import ray
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")     # never reaches out to the network
        if ray.is_initialized():
            return self             # a caller's Ray session: used as it is, left running
        opts = dict(include_dashboard=False, log_to_driver=False, configure_logging=True,
                    logging_level="ERROR")
        if self.address:
            _token_auth_like_auto_discovery()
            ray.init(address=self.address, **opts)
        else:
            ray.init(address="local", num_cpus=self.jobs or os.cpu_count() or 1, **opts)
        self._started = True
        return self

    def close(self) -> None:
        if self._started:
            import ray
            ray.shutdown()
            self._started = False

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
        return False

    # -- running -----------------------------------------------------------------------------------
    def map(self, fn: Callable, items, *, keys=None, shared=_NO_SHARED, results_dir=None,
            fingerprint: str = "", resume: bool = True, cpus: float = 1, memory: int | None = None,
            desc: str = "tasks", unit: str = "task", on_result: Callable | None = None,
            on_event: Callable | None = None, progress_total: int | None = None,
            max_retries: int = 1) -> list:
        """Run ``fn`` on every item; one :class:`Outcome` per item, in item order.

        ``fn`` must be a module-level function (Ray sends it by reference). ``shared`` (if
        given) is put in Ray's object store once and passed as ``fn(item, shared)``.
        ``keys``: one name per item (default ``"0"``, ``"1"``, ...), the file names in
        ``results_dir``. ``fingerprint`` names the run's other inputs (data, code digest): a
        saved result is reused only when it and the pickled item match. ``cpus``/``memory``
        (bytes) are what each task reserves. ``on_result(index, outcome)`` is called as items
        finish (completion order, reused ones first); ``on_event(event)`` for every
        :func:`emit`. ``progress_total``: the bar counts events (``on_event`` items) up to this
        total instead of tasks. ``max_retries``: reruns of a task whose worker died.
        """
        items = list(items)
        keys = [str(k) for k in (keys if keys is not None else range(len(items)))]
        if len(keys) != len(items) or len(set(keys)) != len(keys):
            raise ValueError("keys must be one distinct name per item")
        store = None
        if results_dir is not None:
            if not _absent(shared):    # the shared inputs (weights, data) are part of every result
                fingerprint += hashlib.sha256(pickle.dumps(shared, protocol=4)).hexdigest()[:16]
            store = _Store(results_dir, fingerprint)
        outcomes: list = [None] * len(items)
        if store is not None and resume:
            for i, (k, item) in enumerate(zip(keys, items)):
                outcomes[i] = store.load(k, item)
        todo = [i for i, o in enumerate(outcomes) if o is None]
        bar = _Bar(self.quiet, desc, unit, len(items), progress_total, len(items) - len(todo))
        try:
            for i, o in enumerate(outcomes):
                if o is not None and on_result:
                    on_result(i, o)

            def finish(i, out):
                if store is not None:
                    out = store.save(out, items[i])
                outcomes[i] = out
                bar.task_done(out.ok)
                if on_result:
                    on_result(i, out)

            def event(ev):
                bar.event()
                if on_event:
                    on_event(ev)

            if self.serial or not todo:
                for i in todo:
                    bar.running(1)
                    finish(i, _outcome(keys[i], _call(fn, items[i], shared, cpus, event)))
                bar.running(0)
            else:
                self.start()
                self._run_ray(fn, items, keys, todo, shared, cpus, memory, max_retries, bar, finish, event,
                              on_event)
        finally:
            bar.close()
        return outcomes

    def _run_ray(self, fn, items, keys, todo, shared, cpus, memory, max_retries, bar, finish, event, on_event):
        import ray
        from ray.util.queue import Queue

        shared_ref = shared if _absent(shared) else ray.put(shared)
        # events travel through a queue actor (also from other nodes); only when someone listens
        queue = Queue(actor_options={"num_cpus": 0}) if bar.by_events or on_event else None
        opts = {"num_cpus": cpus, "max_retries": max_retries}
        if memory:
            opts["memory"] = int(memory)
        task = ray.remote(_remote_call).options(**opts)
        # at most as many in flight as the cluster can run at once: in flight = running
        slots = max(1, int(ray.cluster_resources().get("CPU", 1) // max(cpus, 1e-9)))
        waiting = list(todo)
        pending = {}
        try:
            while waiting or pending:
                while waiting and len(pending) < slots:
                    i = waiting.pop(0)
                    pending[task.remote(fn, items[i], shared_ref, cpus, queue)] = i
                bar.running(len(pending))
                done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                _drain(queue, event)
                for ref in done:
                    i = pending.pop(ref)
                    try:
                        res = ray.get(ref)
                    except Exception as e:   # noqa: BLE001 - worker lost, task cancelled, ...
                        res = ("error", f"worker lost: {one_line(e)}", 0.0, "")
                    finish(i, _outcome(keys[i], res))
            bar.running(0)
            _drain(queue, event)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if queue is not None:
                with contextlib.suppress(Exception):
                    ray.kill(queue.actor)


def map_rows(executor: "Executor | None", fn: Callable, items, *, error_row: Callable, progress=None,
             **map_kwargs) -> list:
    """:meth:`Executor.map` collected as rows in item order: a task's value, or
    ``{**error_row(item), "error": message}`` where it failed; ``progress(row)`` is called as
    rows finish. ``executor`` None: a local Ray on every CPU (closed afterwards)."""
    items = list(items)
    rows = [None] * len(items)

    def done(i, out):
        rows[i] = out.value if out.ok else {**error_row(items[i]), "error": out.error}
        if progress:
            progress(rows[i])

    with (executor or Executor()) as ex:
        ex.map(fn, items, on_result=done, **map_kwargs)
    return rows


def _token_auth_like_auto_discovery() -> None:
    """Use Ray's token (``~/.ray/auth_token``, ``RAY_AUTH_TOKEN[_PATH]``) for an explicit address too.

    Ray 2.60 turns token authentication on for a cluster it finds by itself when a token is
    available, but never for an explicit address, and a cluster started by ``ray start`` on a
    machine with a token requires it: the connection then fails with InvalidAuthToken. Doing the
    same here (unless ``RAY_AUTH_MODE`` is set) makes ``--address`` work like a plain
    ``ray.init()`` would.
    """
    if "RAY_AUTH_MODE" in os.environ:
        return
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:          # another Ray version: its own defaults apply
        return
    import logging
    log = logging.getLogger(maybe_enable_token_auth_if_token_available.__module__)
    level = log.level
    log.setLevel(logging.ERROR)      # its "token authentication is enabled" warning says nothing new here
    try:
        maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    finally:
        log.setLevel(level)


def _absent(shared) -> bool:
    return isinstance(shared, str) and shared == _NO_SHARED


def _drain(queue, event) -> None:
    if queue is None:
        return
    n = queue.qsize()
    if n:
        for ev in queue.get_nowait_batch(n):
            event(ev)


def _outcome(key: str, res: tuple) -> Outcome:
    if res[0] == "ok":
        return Outcome(key, True, res[1], None, res[2])
    return Outcome(key, False, None, res[1], res[2])


class _Bar:
    """The executor's progress bar: tasks (or events) done, with running/done/failed counts."""

    def __init__(self, quiet: bool, desc: str, unit: str, tasks: int, events: int | None, reused: int):
        from .progress import progress
        self.by_events = events is not None
        self.done, self.failed, self.reused, self.run = reused, 0, reused, 0
        self.bar = progress(total=events if self.by_events else tasks, desc=desc, unit=unit, disable=quiet)
        if not self.by_events and reused:
            self.bar.update(reused)
        self._postfix()

    def _postfix(self):
        post = {"running": self.run, "done": self.done, "failed": self.failed}
        if self.reused:
            post["reused"] = self.reused
        self.bar.set_postfix(post, refresh=False)

    def running(self, n: int):
        if n != self.run:
            self.run = n
            self._postfix()

    def task_done(self, ok: bool):
        self.done += ok
        self.failed += not ok
        self._postfix()
        if not self.by_events:
            self.bar.update(1)

    def event(self):
        if self.by_events:
            self.bar.update(1)

    def close(self):
        self.bar.close()
