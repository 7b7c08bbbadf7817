"""Equilibrium propagation training (spec section 4) on top of the float and fixed-point models.

Per minibatch of N samples:

1. free phase: ``n_free`` steps with beta = 0 from the zero state -> ``s^-``;
2. nudged phase: ``n_nudged`` steps continuing from ``s^-`` (nothing resets: OSA registers,
   decoders, encoders and the step counter carry on) with output nudge ``2 beta (y - s_out)``,
   beta = +/-|beta| with a random sign drawn once per minibatch -> ``s^+``;
3. first-order contrastive Hebbian update, divided by the SIGNED beta::

       dW_l = (lr_l / beta) [ s_l^-T (s_{l+1}^+ - s_{l+1}^-) + (s_l^+ - s_l^-)^T s_{l+1}^- ] / N
       db_l = (lr_{l-1} / beta) mean(s_l^+ - s_l^-)     (bias shares the rate of the matrix feeding it)

   For l = 0 the input is clamped (s_0^+ = s_0^- = x), so the second term vanishes and this is
   the spec's ``dW_0 = (lr_0/beta) x^T (s_1^+ - s_1^-) / N``.

Readout: argmax of the output state after the free phase. Modes:

* ``continuous``: :class:`FloatModel` with continuous dynamics (spec section 2);
* ``binary``: :class:`FloatModel` with binary communication (spec section 3);
* ``fixed``: both phases in the bit-accurate :class:`FixedModel` (the config's schedules, steps
  and beta magnitude), float states ``code * 2**-s.frac`` fed to the same float update. The
  weights keep a float master copy; after each update the fixed model is rebuilt from it,
  re-quantised to the config's formats (round half up, saturate; clipping counted).
* ``onchip``: fully integer, minibatch 1: :class:`~golden_model.onchip.OnChipLearner` runs both
  phases and the integer update of docs/learning.md (the RTL's ``TRAIN``); the config's
  ``learning`` section sets gains, learning format, rounding and the LFSR (beta's sign). The
  float view ``params`` holds the inference weights ``(W >> extra_frac) * 2^-F_w``.

Everything random (initial weights, beta signs, stochastic encoders, the optional shuffle)
derives from one seed, so a run is reproducible.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from golden_model.config import ConfigError, EqSpikeConfig, Schedule, default_config, learning_config
from golden_model.fixed_model import FixedModel, fit_weight_formats, quantise_params
from golden_model.float_model import OSA, Dynamics, FloatModel, Params, glorot_params

__all__ = [
    "MODES", "FIXED_MODES", "TrainSettings", "EpochMetrics", "Trainer", "eqprop_update", "predict",
    "accuracy", "dynamics_to_dict", "dynamics_from_dict", "fixed_model_for",
    "save_checkpoint", "load_checkpoint", "read_weights", "json_safe", "Checkpoint",
    "WEIGHTS_FILE", "CONFIG_FILE", "TRAINING_FILE", "METRICS_FILE",
]

MODES = ("continuous", "binary", "fixed", "onchip")
#: Modes whose phases run in the bit-accurate fixed-point model (config dynamics).
FIXED_MODES = ("fixed", "onchip")
WEIGHTS_FILE = "weights.npz"
CONFIG_FILE = "config.json"
TRAINING_FILE = "training.json"
METRICS_FILE = "metrics.json"


# -- dynamics <-> JSON ---------------------------------------------------------------------------
def dynamics_to_dict(dyn: Dynamics) -> dict:
    eps = ({"kind": "osa", "nu_bar": dyn.eps.nu_bar, "e": dyn.eps.e} if isinstance(dyn.eps, OSA)
           else dyn.eps.to_dict())
    return {"mode": dyn.mode, "eps": eps, "lam": dyn.lam.to_dict(), "encoder": dyn.encoder,
            "n_free": dyn.n_free, "n_nudged": dyn.n_nudged, "beta": dyn.beta}


def dynamics_from_dict(d: dict) -> Dynamics:
    try:
        eps = d["eps"]
        eps = (OSA(float(eps["nu_bar"]), float(eps["e"])) if eps.get("kind") == "osa"
               else Schedule.from_dict("eps", eps))
        return Dynamics(mode=d["mode"], eps=eps, lam=Schedule.from_dict("lam", d["lam"]),
                        encoder=d["encoder"], n_free=int(d["n_free"]), n_nudged=int(d["n_nudged"]),
                        beta=float(d["beta"]))
    except (KeyError, TypeError, AttributeError) as e:
        raise ConfigError(f"training dynamics are malformed ({e!r})") from None


# -- settings ------------------------------------------------------------------------------------
@dataclass
class TrainSettings:
    """Everything one training run needs besides the data.

    Members
    -------
    layers : tuple of int
    mode : str
        ``"continuous"``, ``"binary"``, ``"fixed"`` or ``"onchip"``.
    dynamics : Dynamics
        Float dynamics (continuous and binary modes). In fixed mode the config's dynamics are
        used and this field is set to ``Dynamics.from_config(config)`` for the record.
    config : EqSpikeConfig or None
        The fixed-point config (fixed and onchip modes; its weight formats are used as given;
        onchip needs its ``learning`` section, default ``learning_config(layers, lr)``).
    lr : tuple of float
        Learning rate per matrix.
    lr_decay : float
        Per-epoch factor: epoch ``e`` (1-based) uses ``lr * lr_decay**max(0, e - lr_decay_start)``.
        1 = constant, as in the paper; below 1 damps the epoch-to-epoch noise of the final weights.
    lr_decay_start : int
        Last epoch at the full rate (default 1: every later epoch decays once more).
    epochs, batch, seed : int
    shuffle : bool
        Reshuffle the training set every epoch (seeded); off by default, as in the spec.
    dtype : numpy dtype
        Float type of the float models (float32: BLAS single precision, about 2x faster).
    """

    layers: tuple
    mode: str = "binary"
    dynamics: Dynamics = field(default_factory=Dynamics)
    config: EqSpikeConfig | None = None
    lr: tuple = (0.1, 0.05)
    lr_decay: float = 1.0
    lr_decay_start: int = 1
    epochs: int = 1
    batch: int = 20
    seed: int = 0
    shuffle: bool = False
    dtype: type = np.float32

    def __post_init__(self):
        self.layers = tuple(int(n) for n in self.layers)
        if len(self.layers) < 2 or min(self.layers) < 1:
            raise ValueError(f"layers must be at least 2 positive sizes, not {list(self.layers)}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        self.lr = tuple(float(r) for r in self.lr)
        if len(self.lr) != len(self.layers) - 1:
            raise ValueError(f"need one learning rate per matrix ({len(self.layers) - 1}), not {len(self.lr)}")
        if not 0.0 < self.lr_decay <= 1.0:
            raise ValueError(f"lr_decay must be in (0, 1], not {self.lr_decay}")
        if self.lr_decay_start < 1:
            raise ValueError(f"lr_decay_start must be >= 1, not {self.lr_decay_start}")
        if self.epochs < 0 or self.batch < 1:
            raise ValueError(f"need epochs >= 0 and batch >= 1, not {self.epochs}/{self.batch}")
        if self.mode == "onchip":
            if self.config is None:
                self.config = learning_config(self.layers, self.lr)
            if self.config.learning is None:
                raise ConfigError("onchip mode needs a config with a 'learning' section")
            if self.batch != 1:
                raise ValueError(f"onchip mode updates after every sample (minibatch 1), not {self.batch}")
            if self.lr_decay != 1.0:
                raise ValueError("onchip mode has constant gains (the config's learning.rate_*); lr_decay must be 1")
        if self.mode in FIXED_MODES:
            if self.config is None:
                self.config = default_config(self.layers)
            if self.config.layers != self.layers:
                raise ConfigError(f"config is for layers {list(self.config.layers)}, training uses {list(self.layers)}")
            self.dynamics = Dynamics.from_config(self.config)
        elif self.dynamics.mode != self.mode:
            raise ValueError(f"mode {self.mode!r} needs {self.mode} dynamics, not {self.dynamics.mode}")
        if self.dynamics.n_nudged < 1:
            raise ValueError("training needs at least one nudged step")
        if self.dynamics.beta <= 0:
            raise ValueError(f"beta must be > 0, not {self.dynamics.beta}")

    def to_dict(self) -> dict:
        return {"layers": list(self.layers), "mode": self.mode, "dynamics": dynamics_to_dict(self.dynamics),
                "lr": list(self.lr), "lr_decay": self.lr_decay, "lr_decay_start": self.lr_decay_start, "epochs": self.epochs, "batch": self.batch, "seed": self.seed,
                "shuffle": self.shuffle, "dtype": np.dtype(self.dtype).name}


# -- core ------------------------------------------------------------------------------------------
def eqprop_update(params: Params, s_free: list, s_nudged: list, beta: float, lr) -> None:
    """Apply the contrastive Hebbian update (module docstring) to ``params`` in place.

    ``s_free``/``s_nudged``: states per layer, index 0 the clamped input; ``beta`` signed.
    """
    n = s_free[0].shape[0]
    for l, (w, b) in enumerate(zip(params.weights, params.biases)):
        d_hi = s_nudged[l + 1] - s_free[l + 1]
        scale = lr[l] / (beta * n)
        dw = s_free[l].T @ d_hi
        if l > 0:
            dw += (s_nudged[l] - s_free[l]).T @ s_free[l + 1]
        w += (scale * dw).astype(w.dtype, copy=False)
        b += (scale * d_hi.sum(axis=0)).astype(b.dtype, copy=False)


def fixed_model_for(cfg: EqSpikeConfig, params: Params):
    """A :class:`FixedModel` of ``params`` quantised to ``cfg`` and the quantisation report."""
    w, b, report = quantise_params(cfg, params)
    return FixedModel(cfg, w, b), report


def predict(params: Params, dyn: Dynamics | None = None, x=None, cfg: EqSpikeConfig | None = None,
            batch: int = 500, dtype=np.float32, seed: int = 0) -> np.ndarray:
    """Free-phase argmax readout, in float (``dyn``) or fixed point (``cfg``), in batches."""
    x = np.asarray(x)
    out = np.empty(len(x), dtype=np.int64)
    if cfg is not None:
        model, _ = fixed_model_for(cfg, params)
        for i in range(0, len(x), batch):
            out[i:i + batch] = model.predict(model.encode_inputs(x[i:i + batch]))
        return out
    model = FloatModel(params, dyn, rng=np.random.default_rng(seed), dtype=dtype)
    for i in range(0, len(x), batch):
        out[i:i + batch] = model.predict(x[i:i + batch])
    return out


def accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(y))) if len(y) else float("nan")


@dataclass
class EpochMetrics:
    """One epoch: running (free-phase, during training) loss and accuracy, test accuracy, time."""

    epoch: int
    loss: float
    train_running_accuracy: float
    test_accuracy: float
    seconds: float
    clipped: int = 0
    cpu_seconds: float = 0.0


class Trainer:
    """Trains ``settings.layers`` with EqProp; ``params`` holds the float (master) weights."""

    def __init__(self, settings: TrainSettings, params: Params | None = None):
        self.settings = settings
        self.rng = np.random.default_rng(settings.seed)
        self.params = (glorot_params(settings.layers, self.rng) if params is None else params.copy())
        if tuple(self.params.layers) != settings.layers:
            raise ConfigError(f"weights are for layers {list(self.params.layers)}, "
                              f"training uses {list(settings.layers)}")
        self.params = self.params.astype(settings.dtype if settings.mode not in FIXED_MODES else np.float64)
        self.learner = None
        self._float_model = None
        self.clipped = 0
        if settings.mode == "onchip":
            from golden_model.onchip import OnChipLearner, learning_codes
            w, b, clipped = learning_codes(settings.config, self.params)
            self.clipped += clipped
            self.learner = OnChipLearner(settings.config, w, b)
            self.sync_params()
        self.sign_rng = np.random.default_rng([settings.seed, 1])
        self.enc_rng = np.random.default_rng([settings.seed, 2])
        self.shuffle_rng = np.random.default_rng([settings.seed, 3])
        self.epoch = 0

    # one minibatch -------------------------------------------------------------------------------
    def phases(self, x: np.ndarray, y1h: np.ndarray, beta: float) -> tuple[list, list]:
        """Run the free then the nudged phase; return (s^-, s^+) as float arrays per layer."""
        st = self.settings
        dyn = st.dynamics
        if st.mode == "fixed":
            model, report = fixed_model_for(st.config, self.params)
            self.clipped += sum(report.weight_clipped) + sum(report.bias_clipped)
            fs = model.reset(model.encode_inputs(x), model.encode_inputs(y1h))
            model.run(fs, st.config.n_free, 0)
            s_free = model.state_values(fs)
            model.run(fs, st.config.n_nudged, 1 if beta > 0 else -1)
            return s_free, model.state_values(fs)
        model = self._float_model
        if model is None or model.params is not self.params or model.dyn is not dyn:
            # built once: it reads self.params live, which eqprop_update changes in place
            model = self._float_model = FloatModel(self.params, dyn, rng=self.enc_rng, dtype=st.dtype)
        fs = model.reset(x, y1h)
        model.run(fs, dyn.n_free, 0.0)
        s_free = [s.copy() for s in fs.s]
        model.run(fs, dyn.n_nudged, beta)
        return s_free, fs.s

    def sync_params(self) -> None:
        """onchip mode: refresh the float view ``params`` from the learner's integer weights."""
        cfg = self.settings.config
        self.params = Params([w * 2.0 ** -f.frac for w, f in zip(self.learner.inference_weights(), cfg.weights)],
                             [b * 2.0 ** -f.frac for b, f in zip(self.learner.biases, cfg.biases)])

    def step(self, x: np.ndarray, y1h: np.ndarray) -> tuple[float, np.ndarray]:
        """One minibatch: phases and update. Returns (free-phase loss, free-phase predictions)."""
        st = self.settings
        if st.mode == "onchip":
            ln = self.learner
            r = ln.train_sample(ln.encode(x[0]), ln.encode(y1h[0]))
            out = r.s_free[-1] * 2.0 ** -st.config.s.frac
            return float(np.sum((out - y1h[0]) ** 2)), np.array([r.prediction])
        beta = st.dynamics.beta * (1.0 if self.sign_rng.random() < 0.5 else -1.0)
        s_free, s_nudged = self.phases(x, y1h, beta)
        if st.mode == "fixed":
            beta = st.config.beta2_code / 2.0 ** (st.config.beta_frac + 1) * np.sign(beta)
        loss = float(np.mean(np.sum((s_free[-1] - y1h) ** 2, axis=1)))
        pred = np.argmax(s_free[-1], axis=1)
        eqprop_update(self.params, s_free, s_nudged, beta, self.lr)
        return loss, pred

    @property
    def lr(self) -> tuple:
        """Learning rates of the current epoch (``lr * lr_decay**max(0, epoch - lr_decay_start)``)."""
        f = self.settings.lr_decay ** max(self.epoch - self.settings.lr_decay_start, 0)
        return tuple(r * f for r in self.settings.lr)

    # epochs -------------------------------------------------------------------------------------
    def predict(self, x: np.ndarray, batch: int = 500) -> np.ndarray:
        st = self.settings
        if st.mode == "onchip":
            return self.learner.predict(self.learner.encode(x), batch)
        if st.mode == "fixed":
            return predict(self.params, x=x, cfg=st.config, batch=batch)
        return predict(self.params, st.dynamics, x, batch=batch, dtype=st.dtype, seed=st.seed)

    def train_epoch(self, x: np.ndarray, y: np.ndarray, n_classes: int, progress: Callable | None = None):
        """One pass over ``(x, y)`` in minibatches; returns (mean loss, running accuracy)."""
        st = self.settings
        self.epoch += 1
        order = self.shuffle_rng.permutation(len(x)) if st.shuffle else np.arange(len(x))
        eye = np.eye(n_classes, dtype=np.float32)
        loss_sum, correct, seen = 0.0, 0, 0
        for i in range(0, len(x), st.batch):
            idx = order[i:i + st.batch]
            xb = np.asarray(x[idx], dtype=np.float32)
            loss, pred = self.step(xb, eye[y[idx]])
            loss_sum += loss * len(idx)
            correct += int(np.sum(pred == y[idx]))
            seen += len(idx)
            if progress is not None:
                progress(len(idx), loss_sum / seen, correct / seen)
        if self.learner is not None:
            self.sync_params()
        if not np.all(np.isfinite(self.params.weights[0])):
            raise FloatingPointError("training diverged (non-finite weights); lower the learning rates")
        return loss_sum / max(seen, 1), correct / max(seen, 1)


# -- checkpoints -------------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    """What an output folder holds (see docs/training.md for the layout)."""

    params: Params
    config: EqSpikeConfig
    training: dict
    metrics: dict
    path: Path

    @property
    def dynamics(self) -> Dynamics:
        return dynamics_from_dict(self.training["dynamics"])


def hardware_config(params: Params, base: EqSpikeConfig | None = None) -> EqSpikeConfig:
    """``base`` (default: the default config) for these layers, weight fractions fitted to ``params``."""
    base = base or default_config(params.layers)
    if base.layers != tuple(params.layers):
        raise ConfigError(f"weights are for layers {list(params.layers)}, config has {list(base.layers)}")
    return fit_weight_formats(base, params)


#: Limits of what a checkpoint may hold (no network this project builds comes near them).
MAX_LAYER = 1 << 20          # as EqSpikeConfig.layers
MAX_ARRAY_ELEMENTS = 1 << 26  # 512 MB of float64 per matrix
MAX_PARAM = 1e6               # |weight|, |bias|: far beyond any weight format (at most 2^47)
MAX_JSON_BYTES = 1 << 24


def json_safe(obj):
    """``obj`` with numpy values as Python values and non-finite floats as ``None``: JSON has no
    NaN or infinity, and a bare ``NaN`` makes the file unreadable to strict parsers."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


@contextlib.contextmanager
def _sigint_deferred():
    """Hold Ctrl-C back while the block runs (the renames of a checkpoint commit), then raise it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    old = signal.signal(signal.SIGINT, lambda sig, frame: pending.append(sig))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if pending:
        raise KeyboardInterrupt


def save_checkpoint(out_dir, params: Params, config: EqSpikeConfig, training: dict, metrics: dict,
                    extra: dict | None = None) -> Path:
    """Write an output folder (docs/training.md) so that it always holds one complete checkpoint.

    Every file is written to a temporary name first; the renames onto the real names run with
    Ctrl-C held back, so an interrupted run leaves either the previous checkpoint or this one,
    never a mix. ``extra`` maps more file names to ``writer(path)`` functions (e.g. the on-chip
    learner's state) committed with the rest, or to ``None``: that file is removed in the same
    commit (a stale one of an earlier run). Non-finite numbers are written as ``null``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    writers = {
        WEIGHTS_FILE: lambda p: params.astype(np.float64).save(p),
        CONFIG_FILE: config.save,
        TRAINING_FILE: lambda p: p.write_text(json.dumps(json_safe(training), indent=2, allow_nan=False) + "\n"),
        METRICS_FILE: lambda p: p.write_text(json.dumps(json_safe(metrics), indent=2, allow_nan=False) + "\n"),
    }
    writers.update({k: v for k, v in (extra or {}).items() if v is not None})
    stale = [name for name, v in (extra or {}).items() if v is None]
    # the temporary names keep the suffix: np.savez appends ".npz" to a name without it
    tmp = {name: out / f".partial-{name}" for name in writers}
    try:
        for name, write in writers.items():
            write(tmp[name])
        with _sigint_deferred():
            for name in writers:
                os.replace(tmp[name], out / name)
            for name in stale:
                (out / name).unlink(missing_ok=True)
    finally:
        for t in tmp.values():
            t.unlink(missing_ok=True)
    return out


def _array_header(z, key: str, where: str) -> tuple:
    """Shape and dtype of array ``key`` of an open ``.npz``, read before the data (so that a
    huge declared shape is refused without allocating it)."""
    with z.zip.open(key + ".npy") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    return shape, dtype


def read_weights(path) -> Params:
    """Weights and biases from a ``.npz`` (arrays ``W0..W{k-1}``, ``b1..bk``), every problem a
    one-line ``ValueError`` naming the file: not an archive, missing or unexpected arrays, wrong
    dimensions or sizes, non-numeric, NaN, infinite or absurdly large (> MAX_PARAM) values."""
    where = str(path)

    def bad(msg):
        return ValueError(f"{where}: not a weights file ({msg})")

    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as e:
        raise bad((str(e).splitlines() or [type(e).__name__])[0][:80] or type(e).__name__) from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise bad("a single array, not an archive of W0, b1, ...")
    with z:
        try:
            names = list(z.files)
            n = sum(1 for k in names if k.startswith("W"))
            if n == 0:
                raise bad("no weight matrices W0, W1, ...")
            want = [f"W{i}" for i in range(n)] + [f"b{i + 1}" for i in range(n)]
            missing = [k for k in want if k not in names]
            unknown = sorted(set(names) - set(want))
            if missing or unknown:
                raise bad(f"missing array {missing[0]}" if missing else f"unexpected array {unknown[0]!r}")
            arrays = {}
            for k in want:
                shape, dtype = _array_header(z, k, where)
                if dtype.kind not in "fiu" or dtype.hasobject:
                    raise bad(f"{k} holds {dtype}, not numbers")
                if len(shape) != (2 if k[0] == "W" else 1):
                    raise bad(f"{k} is {len(shape)}-D, expected {2 if k[0] == 'W' else 1}-D")
                if min(shape) < 1 or max(shape) > MAX_LAYER or int(np.prod(shape)) > MAX_ARRAY_ELEMENTS:
                    raise bad(f"{k} has shape {shape}")
                arrays[k] = np.asarray(z[k], dtype=np.float64)
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as e:
            if str(e).startswith(where):
                raise
            raise bad((str(e).splitlines() or [""])[0][:80] or type(e).__name__) from None
    for k, a in arrays.items():
        if not np.all(np.isfinite(a)):
            raise bad(f"{k} holds NaN or infinite values")
        if a.size and np.abs(a).max() > MAX_PARAM:
            raise bad(f"{k} holds a value of magnitude {np.abs(a).max():.3g} (at most {MAX_PARAM:g})")
    weights = [arrays[f"W{i}"] for i in range(n)]
    biases = [arrays[f"b{i + 1}"] for i in range(n)]
    for i in range(n):
        if i and weights[i].shape[0] != weights[i - 1].shape[1]:
            raise bad(f"W{i} has {weights[i].shape[0]} rows, W{i - 1} has {weights[i - 1].shape[1]} columns")
        if biases[i].shape[0] != weights[i].shape[1]:
            raise bad(f"b{i + 1} has {biases[i].shape[0]} entries, W{i} has {weights[i].shape[1]} columns")
    return Params(weights, biases)


def _read_json_dict(path: Path) -> dict:
    """A JSON object from ``path`` (``{}`` when absent); one-line ``ConfigError`` otherwise."""
    if not path.exists():
        return {}
    try:
        if not path.is_file():
            raise ConfigError(f"{path} is not a file")
        if path.stat().st_size > MAX_JSON_BYTES:
            raise ConfigError(f"{path} is larger than {MAX_JSON_BYTES} bytes")
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as e:
        raise ConfigError(f"{path} cannot be read ({e.strerror or e})") from None
    except RecursionError:
        raise ConfigError(f"{path} is nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, huge integer literals
        raise ConfigError(f"{path} is not valid JSON ({(str(e).splitlines() or [''])[0][:80]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data


def load_checkpoint(path) -> Checkpoint:
    """Read an output folder (or a weights .npz with its siblings, when present).

    Every malformed part is refused with a one-line ``ValueError``/``ConfigError`` naming the
    file: the weights (:func:`read_weights`), a config whose layers differ from the weights',
    training.json and metrics.json that are not JSON objects, training dynamics that do not
    rebuild.
    """
    p = Path(path)
    if p.is_dir():
        folder, weights = p, p / WEIGHTS_FILE
    else:
        folder, weights = p.parent, p
    if not weights.is_file():
        raise FileNotFoundError(f"weights file {str(weights)!r} does not exist")
    params = read_weights(weights)
    cfg_path = folder / CONFIG_FILE
    if cfg_path.exists():
        config = EqSpikeConfig.load(cfg_path)
        if config.layers != tuple(params.layers):
            raise ConfigError(f"{cfg_path} is for layers {list(config.layers)}, "
                              f"{weights} for {list(params.layers)}")
    else:
        config = hardware_config(params)
    training = _read_json_dict(folder / TRAINING_FILE)
    metrics = _read_json_dict(folder / METRICS_FILE)
    if "dynamics" in training:
        try:
            dynamics_from_dict(training["dynamics"])
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as e:
            msg = (str(e).splitlines() or [""])[0][:120] or type(e).__name__
            raise ConfigError(f"{folder / TRAINING_FILE}: dynamics are malformed ({msg})") from None
    return Checkpoint(params, config, training, metrics, folder)
