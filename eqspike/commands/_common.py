"""Helpers shared by the commands: argument parsing (numbers, schedules, layers, data) and the
checks that run before any work (outputs writable, sizes sensible).

Input rules (README, "The command line"): counts are integers in a stated range, rates and
probabilities finite numbers in a stated range, output paths are checked before the work starts,
and nothing writes NaN or infinity into JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import numpy as np

from golden_model.config import Schedule
from golden_model.float_model import OSA

__all__ = ["DATASET_DEFAULTS", "parse_floats", "parse_rates", "parse_layers", "parse_eps", "parse_lam",
           "add_data_arguments", "load_data", "write_json", "write_rows_csv",
           "int_at_least", "positive_int", "nonneg_int", "update_lanes_arg", "finite_float", "float_in",
           "check_output_file", "check_output_dir", "check_lanes"]

#: Per data set defaults (spec sections 5 and 8): hidden width, epochs, learning rates.
DATASET_DEFAULTS = {
    "digits": {"hidden": (100,), "epochs": 30, "lr": (0.1, 0.05), "lr_decay": 0.9},
    "fashion-mnist": {"hidden": (500,), "epochs": 3, "lr": (0.05, 0.025)},
    "idx": {"hidden": (500,), "epochs": 3, "lr": (0.05, 0.025)},
    "mnist": {"hidden": (500,), "epochs": 25, "lr": (0.1, 0.05)},
}


# -- argparse types: a bad value is reported by the parser as one line, exit status 2 ----------
def int_at_least(lo: int, hi: int | None = None):
    """An argparse ``type`` accepting integers in ``[lo, hi]``."""
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, not {text!r}") from None
        if v < lo or (hi is not None and v > hi):
            bound = f">= {lo}" if hi is None else f"in {lo}..{hi}"
            raise argparse.ArgumentTypeError(f"must be {bound}, not {v}")
        return v
    parse.__name__ = "int"
    return parse


positive_int = int_at_least(1)
nonneg_int = int_at_least(0)


def update_lanes_arg(text):
    """An argparse ``type`` for ``update_lanes``: one positive integer (every core), or one per
    layer, comma-separated, input first (``10,5,1``); the config checks the count and that
    each divides the lanes."""
    parts = str(text).replace(" ", "").split(",")
    try:
        vals = [int(v) for v in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer or comma-separated integers, not {text!r}") from None
    if any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError(f"must be >= 1, not {text!r}")
    return vals[0] if len(vals) == 1 else tuple(vals)


update_lanes_arg.__name__ = "update lanes"


def float_in(lo: float, hi: float, lo_open: bool = False):
    """An argparse ``type`` accepting finite numbers in ``[lo, hi]`` (``(lo, hi]`` if ``lo_open``)."""
    def parse(text):
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
        if not math.isfinite(v) or v > hi or v < lo or (lo_open and v == lo):
            raise argparse.ArgumentTypeError(
                f"must be in {'(' if lo_open else '['}{lo:g}, {hi:g}], not {text!r}")
        return v
    parse.__name__ = "float"
    return parse


finite_float = float_in(-1e300, 1e300)


def parse_floats(text: str, what: str) -> tuple:
    """Comma-separated finite numbers."""
    try:
        vals = tuple(float(v) for v in str(text).replace(" ", "").split(",") if v)
    except ValueError:
        raise ValueError(f"{what} must be comma-separated numbers, not {text!r}") from None
    if not vals:
        raise ValueError(f"{what} must not be empty")
    bad = [v for v in vals if not math.isfinite(v)]
    if bad:
        raise ValueError(f"{what} must be finite numbers, not {bad[0]}")
    return vals


#: Largest learning rate accepted: rates of the order of 1 already diverge (spec section 5 uses 0.1).
MAX_RATE = 100.0


def parse_rates(text: str, what: str = "--lr") -> tuple:
    """Learning rates: comma-separated numbers in (0, MAX_RATE]."""
    vals = parse_floats(text, what)
    for v in vals:
        if not 0.0 < v <= MAX_RATE:
            raise ValueError(f"{what} rates must be in (0, {MAX_RATE:g}], not {v}")
    return vals


#: Limits of --layers: the config's largest layer, and synapses whose float64 weights fit 512 MB.
MAX_LAYERS = 64
MAX_LAYER_SIZE = 1 << 20
MAX_SYNAPSES = 1 << 26


def parse_layers(text: str) -> tuple:
    try:
        vals = tuple(int(v) for v in str(text).replace("-", ",").split(",") if v)
    except ValueError:
        raise ValueError(f"layers must be sizes like 64,100,10, not {text!r}") from None
    if len(vals) < 2 or min(vals) < 1:
        raise ValueError(f"layers must be at least two positive sizes, not {text!r}")
    if len(vals) > MAX_LAYERS or max(vals) > MAX_LAYER_SIZE:
        raise ValueError(f"layers must be at most {MAX_LAYERS} sizes of at most {MAX_LAYER_SIZE}, not {text!r}")
    synapses = sum(a * b for a, b in zip(vals[:-1], vals[1:]))
    if synapses > MAX_SYNAPSES:
        raise ValueError(f"layers {'-'.join(map(str, vals))} have {synapses:,} synapses, more than "
                         f"{MAX_SYNAPSES:,} (memory for the weights alone would be {8 * synapses / 2**30:.0f} GB)")
    return vals


def _schedule(text: str, what: str):
    parts = str(text).split(":")
    try:
        if parts[0] == "power" and len(parts) == 3:
            return Schedule.power(float(parts[1]), float(parts[2]))
        if parts[0] == "constant" and len(parts) == 2:
            return Schedule.constant(float(parts[1]))
        if len(parts) == 1:
            return Schedule.constant(float(parts[0]))
    except ValueError:
        pass
    raise ValueError(f"{what} must be VALUE, constant:VALUE or power:A0:ETA, not {text!r}")


def parse_eps(text: str):
    """``osa[:NU_BAR[:E]]``, ``VALUE``, ``constant:VALUE`` or ``power:A0:ETA``."""
    parts = str(text).split(":")
    if parts[0] == "osa":
        try:
            nu = float(parts[1]) if len(parts) > 1 else OSA().nu_bar
            e = float(parts[2]) if len(parts) > 2 else OSA().e
        except ValueError:
            raise ValueError(f"eps must be osa:NU_BAR[:E], not {text!r}") from None
        if not 0 < nu <= 1:
            raise ValueError(f"OSA nu_bar must be in (0, 1], not {nu}")
        if not 0 < e <= 1e3:
            raise ValueError(f"OSA e must be in (0, 1000], not {e}")
        return OSA(nu, e)
    sched = _schedule(text, "eps")
    sched.validate("eps", 1)
    return sched


def parse_lam(text: str):
    sched = _schedule(text, "lambda")
    sched.validate("lambda", 1)
    return sched


def add_data_arguments(p) -> None:
    p.add_argument("--dataset", default=None,
                   help="digits (default), fashion-mnist, or idx/mnist (the default with --data-dir)")
    p.add_argument("--data-dir", default=None,
                   help="directory of MNIST-format IDX files (train-images-idx3-ubyte[.gz], ...)")
    p.add_argument("--n-train", type=positive_int, default=None, metavar="N",
                   help="use only the first N training samples (at most the data set's)")
    p.add_argument("--n-test", type=positive_int, default=None, metavar="N",
                   help="use only the first N test samples (at most the data set's)")


def load_data(args):
    from experiments.data import DataError, load_dataset
    if args.dataset is None:
        args.dataset = "idx" if args.data_dir else "digits"
    data = load_dataset(args.dataset, args.data_dir)
    n_train, n_test = getattr(args, "n_train", None), getattr(args, "n_test", None)
    for opt, n, have in (("--n-train", n_train, len(data.x_train)), ("--n-test", n_test, len(data.x_test))):
        if n is not None and not 1 <= n <= have:
            # a silent cut to the available samples would misreport what was run
            raise DataError(f"{opt} must be in 1..{have} ({data.name} has {have}), not {n}")
    if n_train is not None or n_test is not None:
        data = data.subset(n_train, n_test)
    return data


def write_json(path, obj) -> None:
    """Write ``obj`` as JSON (via a temporary file, so an existing file is never half-written)."""
    if path:
        from experiments.training import json_safe
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(json_safe(obj), indent=2, default=_default, allow_nan=False) + "\n"
        tmp = path.with_name(f".{path.name}.partial")
        try:
            tmp.write_text(text)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def write_rows_csv(path, rows: list, keys: list) -> list:
    """Write a sweep's ``rows`` (dicts) as CSV: the columns of the first point that ran (``keys``
    when every point failed) and ``error`` (empty where the point ran). Returns the failed rows."""
    import csv
    fields = list(next((r for r in rows if "error" not in r), {}).keys()) or list(keys)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields + ["error"], restval="")
        w.writeheader()
        w.writerows(rows)
    return [r for r in rows if "error" in r]


# -- checks before the work starts ------------------------------------------------------------
def _check_name(path: Path, what: str) -> None:
    """No NUL byte and no name longer than the file system takes (both fail only when written)."""
    if "\0" in str(path):
        raise ValueError(f"{what} {str(path)!r} contains a NUL byte")
    if str(path) == "":
        raise ValueError(f"{what} must not be empty")
    for part in path.parts:
        if len(os.fsencode(part)) > 255:
            raise ValueError(f"{what}: the name {part[:20]!r}... is {len(os.fsencode(part))} bytes long (at most 255)")


def _writable_parent(path: Path, what: str) -> None:
    """The nearest existing ancestor of ``path`` must be a writable directory."""
    _check_name(path, what)
    parent = path.parent
    while not parent.exists():
        if parent.is_symlink():
            raise ValueError(f"{what} {str(path)!r}: {str(parent)!r} is a dangling link")
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{what} {str(path)!r}: {str(parent)!r} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {str(path)!r}: directory {str(parent)!r} is not writable")


def check_output_file(path, what: str = "output") -> None:
    """Refuse, before any work, an output file that could not be written (a directory, a path
    under a regular file, a read-only location). ``None`` passes (no output)."""
    if path is None:
        return
    p = Path(path)
    _check_name(p, what)
    if p.is_dir():
        raise ValueError(f"{what} {str(p)!r} is a directory, not a file")
    if p.exists() and not os.access(p, os.W_OK):
        raise ValueError(f"{what} {str(p)!r} is not writable")
    _writable_parent(p, what)


def check_output_dir(path, what: str = "output folder") -> None:
    """Refuse, before any work, an output folder that could not be created or written."""
    if path is None:
        return
    p = Path(path)
    _check_name(p, what)
    if p.exists():
        if not p.is_dir():
            raise ValueError(f"{what} {str(p)!r} is a file, not a directory")
        if not os.access(p, os.W_OK | os.X_OK):
            raise ValueError(f"{what} {str(p)!r} is not writable")
        return
    _writable_parent(p, what)


def check_lanes(cfg) -> None:
    """Refuse a lane count above every layer size: the extra lanes would never carry a synapse
    and only grow the hardware."""
    if cfg.lanes > max(cfg.layers):
        raise ValueError(f"lanes {cfg.lanes} exceed every layer size (largest {max(cfg.layers)}); "
                         f"use at most {max(cfg.layers)}")


def _default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot write {type(o).__name__} as JSON")
