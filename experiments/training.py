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

import dataclasses
import json
import time
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
    "save_checkpoint", "load_checkpoint", "Checkpoint",
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
        model = FloatModel(self.params, dyn, rng=self.enc_rng, dtype=st.dtype)
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


def save_checkpoint(out_dir, params: Params, config: EqSpikeConfig, training: dict, metrics: dict) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params.astype(np.float64).save(out / WEIGHTS_FILE)
    config.save(out / CONFIG_FILE)
    (out / TRAINING_FILE).write_text(json.dumps(training, indent=2) + "\n")
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    return out


def load_checkpoint(path) -> Checkpoint:
    """Read an output folder (or a weights .npz with its siblings, when present)."""
    p = Path(path)
    if p.is_dir():
        folder, weights = p, p / WEIGHTS_FILE
    else:
        folder, weights = p.parent, p
    if not weights.is_file():
        raise FileNotFoundError(f"weights file {str(weights)!r} does not exist")
    try:
        params = Params.load(weights)
    except (OSError, KeyError, EOFError, ValueError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"{weights}: not a weights file ({msg[:80]})") from None
    cfg_path = folder / CONFIG_FILE
    config = EqSpikeConfig.load(cfg_path) if cfg_path.is_file() else hardware_config(params)
    training = json.loads((folder / TRAINING_FILE).read_text()) if (folder / TRAINING_FILE).is_file() else {}
    metrics = json.loads((folder / METRICS_FILE).read_text()) if (folder / METRICS_FILE).is_file() else {}
    return Checkpoint(params, config, training, metrics, folder)
