"""Helpers shared by the training-related commands (argument parsing of schedules, layers, data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from golden_model.config import Schedule
from golden_model.float_model import OSA

__all__ = ["DATASET_DEFAULTS", "parse_floats", "parse_layers", "parse_eps", "parse_lam",
           "add_data_arguments", "load_data", "write_json"]

#: Per data set defaults (spec sections 5 and 8): hidden width, epochs, learning rates.
DATASET_DEFAULTS = {
    "digits": {"hidden": (100,), "epochs": 30, "lr": (0.1, 0.05), "lr_decay": 0.9},
    "fashion-mnist": {"hidden": (500,), "epochs": 3, "lr": (0.05, 0.025)},
    "idx": {"hidden": (500,), "epochs": 3, "lr": (0.05, 0.025)},
    "mnist": {"hidden": (500,), "epochs": 25, "lr": (0.1, 0.05)},
}


def parse_floats(text: str, what: str) -> tuple:
    try:
        vals = tuple(float(v) for v in str(text).replace(" ", "").split(",") if v)
    except ValueError:
        raise ValueError(f"{what} must be comma-separated numbers, not {text!r}") from None
    if not vals:
        raise ValueError(f"{what} must not be empty")
    return vals


def parse_layers(text: str) -> tuple:
    try:
        vals = tuple(int(v) for v in str(text).replace("-", ",").split(",") if v)
    except ValueError:
        raise ValueError(f"layers must be sizes like 64,100,10, not {text!r}") from None
    if len(vals) < 2 or min(vals) < 1:
        raise ValueError(f"layers must be at least two positive sizes, not {text!r}")
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
    p.add_argument("--n-train", type=int, default=None, help="use only the first N training samples")
    p.add_argument("--n-test", type=int, default=None, help="use only the first N test samples")


def load_data(args):
    from experiments.data import load_dataset
    if args.dataset is None:
        args.dataset = "idx" if args.data_dir else "digits"
    data = load_dataset(args.dataset, args.data_dir)
    if getattr(args, "n_train", None) is not None or getattr(args, "n_test", None) is not None:
        data = data.subset(getattr(args, "n_train", None), getattr(args, "n_test", None))
    return data


def write_json(path, obj) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(obj, indent=2, default=_default) + "\n")


def _default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot write {type(o).__name__} as JSON")
