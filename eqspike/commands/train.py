"""``eqspike train``: equilibrium propagation training (spec section 4) on a data set."""

from __future__ import annotations

import sys
import time

import numpy as np

from eqspike.cli import CLIError
from golden_model.config import ConfigError, EqSpikeConfig, default_config, learning_config
from golden_model.float_model import Dynamics
from experiments.training import (
    MODES, EpochMetrics, Trainer, TrainSettings, accuracy, hardware_config, load_checkpoint,
    save_checkpoint,
)

from ._common import (DATASET_DEFAULTS, add_data_arguments, check_output_dir, check_output_file,
                      float_in, int_at_least, load_data, nonneg_int, parse_eps, parse_lam,
                      parse_layers, parse_rates, positive_int, write_json)

#: Most phase steps accepted (as EqSpikeConfig.n_free / n_nudged).
MAX_STEPS = 1 << 16


def _lfsr_seed(text: str) -> int:
    """argparse type: a nonzero 64-bit LFSR state, decimal or 0x..."""
    import argparse
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer (decimal or 0x...), not {text!r}") from None
    if not 1 <= v < 1 << 64:
        raise argparse.ArgumentTypeError(f"must be in 1..2^64-1 (a nonzero 64-bit state), not {v}")
    return v

NAME = "train"
HELP = "train a network with equilibrium propagation (continuous, binary or fixed-point dynamics)"


def add_arguments(p) -> None:
    add_data_arguments(p)
    p.add_argument("--mode", choices=MODES, default="binary",
                   help="continuous (float, spec 2), binary (float, spec 3; default), fixed "
                        "(bit-accurate fixed-point phases, float update) or onchip (fully integer, "
                        "minibatch 1: the on-chip learning hardware, docs/learning.md)")
    p.add_argument("--layers", default=None,
                   help="layer sizes, input first, e.g. 64,100,10 (default: data inputs, a data-set "
                        "hidden width, classes)")
    p.add_argument("--epochs", type=nonneg_int, default=None, help="epochs (default: 30 digits, 3 fashion-mnist)")
    p.add_argument("--batch", type=positive_int, default=None,
                   help="minibatch size (default 20; onchip: 1, its updates are per sample)")
    p.add_argument("--lr", default=None,
                   help="learning rate per matrix, comma-separated (default: 0.1,0.05 digits; "
                        "0.05,0.025 fashion-mnist)")
    p.add_argument("--lr-decay", type=float_in(0.0, 1.0, lo_open=True), default=None,
                   help="per-epoch learning-rate factor (default: 0.9 digits, 1 otherwise)")
    p.add_argument("--lr-decay-start", type=positive_int, default=1,
                   help="last epoch E at the full rate: epoch e uses lr * decay^max(0, e - E) "
                        "(default 1)")
    p.add_argument("--beta", type=float_in(0.0, 16.0, lo_open=True), default=None,
                   help="nudging strength magnitude; sign random per minibatch (default 0.5)")
    p.add_argument("--free-steps", type=int_at_least(1, MAX_STEPS), default=None,
                   help="free-phase steps (default 100 binary, 20 continuous; fixed: the config's)")
    p.add_argument("--nudged-steps", type=int_at_least(1, MAX_STEPS), default=None,
                   help="nudged-phase steps (default 50 binary, 4 continuous; fixed: the config's)")
    p.add_argument("--eps", default=None,
                   help="step size: osa[:NU_BAR[:E]] (binary default osa:0.0346), VALUE, or "
                        "power:A0:ETA (continuous default 0.5)")
    p.add_argument("--lam", default=None,
                   help="predictive-coding lambda: VALUE or power:A0:ETA (binary default 0.275)")
    p.add_argument("--decoder", choices=("predictive", "identity"), default="predictive",
                   help="identity = no predictive coding (lambda 1)")
    p.add_argument("--encoder", choices=("sigma_delta", "stochastic"), default=None,
                   help="binary mode's spike encoder (default: the Dynamics default, sigma_delta)")
    p.add_argument("--config", default=None,
                   help="fixed-point config JSON (fixed mode; default: the default config; onchip: "
                        "needs a 'learning' section, default: learning_config with --lr)")
    p.add_argument("--rounding", choices=("stochastic", "nearest"), default=None,
                   help="onchip: rounding of the weight updates (default: the config's, stochastic)")
    p.add_argument("--lfsr-seed", type=_lfsr_seed, default=None,
                   help="onchip: initial state of the 64-bit LFSR (beta signs, rounding bits); "
                        "default: the config's (1)")
    p.add_argument("--learn-width", type=int_at_least(1, 64), default=None,
                   help="onchip: bits of the learning weight format (inference width + extra "
                        "fraction bits; default: the config's, 14 for 8-bit weights)")
    p.add_argument("--init", default=None, help="start from the weights of an output folder or .npz")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--seeds", default=None, metavar="SEEDS",
                   help="train the recipe once per seed (e.g. 0-3 or 0,2,5), one Ray task each (--jobs, "
                        "--address); reports per-seed accuracies, mean, min and max in OUT/seeds.md "
                        "(OUT default out/train-DATASET-MODE-seeds)")
    from ._executor import add_executor_arguments
    add_executor_arguments(p, "seeds", quiet=False)
    p.add_argument("--shuffle", action="store_true", help="reshuffle the training set every epoch")
    p.add_argument("--float64", action="store_true", help="float64 float models (default float32)")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="BLAS threads (default 1: minibatch-20 products gain little from a second "
                        "thread, and spinning BLAS threads on a busy machine cost up to 2x)")
    p.add_argument("--out", default=None,
                   help="output folder (default out/train-DATASET-MODE); a checkpoint of another mode, "
                        "layers or data set there is not replaced without --force")
    p.add_argument("--force", action="store_true",
                   help="replace a checkpoint in --out even if it is of another mode, layers or data set")
    p.add_argument("--json", default=None, help="write train/test accuracy, epochs and seconds here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_settings(args, data) -> TrainSettings:
    defaults = DATASET_DEFAULTS.get(args.dataset, DATASET_DEFAULTS["idx"])
    layers = (parse_layers(args.layers) if args.layers else
              (data.n_inputs,) + tuple(defaults["hidden"]) + (data.n_classes,))
    if layers[0] != data.n_inputs:
        raise CLIError(f"layers start with {layers[0]} inputs but {data.name} has {data.n_inputs}")
    if layers[-1] < data.n_classes:
        raise CLIError(f"layers end with {layers[-1]} outputs but {data.name} has {data.n_classes} classes")
    lr = parse_rates(args.lr, "--lr") if args.lr else tuple(defaults["lr"])
    if len(lr) == 1:
        lr = lr * (len(layers) - 1)
    if len(lr) != len(layers) - 1:
        raise CLIError(f"--lr needs one rate per matrix ({len(layers) - 1}), not {len(lr)}")
    epochs = args.epochs if args.epochs is not None else defaults["epochs"]
    # only what the user set; every default lives in Dynamics / the config
    steps = {k: v for k, v in (("n_free", args.free_steps), ("n_nudged", args.nudged_steps),
                               ("beta", args.beta)) if v is not None}
    config = None
    batch = args.batch if args.batch is not None else (1 if args.mode == "onchip" else 20)
    if args.mode != "onchip" and (args.rounding is not None or args.learn_width is not None
                                  or args.lfsr_seed is not None):
        raise CLIError("--rounding, --learn-width and --lfsr-seed are for --mode onchip")
    if args.mode == "onchip":
        if batch != 1:
            raise CLIError(f"onchip mode updates after every sample: --batch must be 1, not {batch}")
        config = EqSpikeConfig.load(args.config) if args.config else learning_config(layers, lr)
        if config.learning is None:
            raise ConfigError("onchip mode needs a config with a 'learning' section (see docs/learning.md)")
        lchanges = {}
        if args.rounding is not None:
            lchanges["rounding"] = args.rounding
        if args.lfsr_seed is not None:
            lchanges["seed"] = args.lfsr_seed
        if args.learn_width is not None:
            extra = [args.learn_width - f.width for f in config.weights]
            if len(set(extra)) != 1 or not 0 <= extra[0] <= 16:
                raise CLIError(f"--learn-width {args.learn_width} must be 0..16 bits wider than every "
                               f"weight format ({', '.join(str(f.width) for f in config.weights)} bits)")
            lchanges["extra_frac"] = extra[0]
        if lchanges:
            import dataclasses
            config = config.replace(learning=dataclasses.replace(config.learning, **lchanges))
    if args.mode in ("fixed", "onchip"):
        if config is None:
            config = EqSpikeConfig.load(args.config) if args.config else default_config(layers)
        if config.layers != layers:
            raise ConfigError(f"config is for layers {list(config.layers)}, training uses {list(layers)}")
        if args.eps is not None or args.lam is not None:
            raise CLIError("fixed mode takes eps and lambda from the config (--config), not --eps/--lam")
        config = config.replace(**steps) if steps else config
        dyn = Dynamics.from_config(config)
    elif args.mode == "continuous":
        eps = parse_eps(args.eps) if args.eps else None
        if eps is not None and getattr(eps, "kind", None) != "constant":
            raise CLIError("continuous mode needs a constant --eps VALUE")
        dyn = Dynamics.continuous(**steps, **({} if eps is None else {"eps": eps.value}))
    else:
        from golden_model.config import Schedule
        if args.decoder == "identity":
            steps["lam"] = Schedule.constant(1.0)
        elif args.lam:
            steps["lam"] = parse_lam(args.lam)
        if args.eps:
            steps["eps"] = parse_eps(args.eps)
        if args.encoder:
            steps["encoder"] = args.encoder
        dyn = Dynamics(mode="binary", **steps)
    lr_decay = args.lr_decay if args.lr_decay is not None else (
        1.0 if args.mode == "onchip" else defaults.get("lr_decay", 1.0))
    if args.mode == "onchip" and lr_decay != 1.0:
        raise CLIError("onchip mode has constant gains (the config's learning section): no --lr-decay")
    return TrainSettings(layers=layers, mode=args.mode, dynamics=dyn, config=config, lr=lr, lr_decay=lr_decay,
                         lr_decay_start=args.lr_decay_start,
                         epochs=epochs, batch=batch, seed=args.seed, shuffle=args.shuffle,
                         dtype=np.float64 if args.float64 else np.float32)


def _hw_config(settings: TrainSettings, trainer: Trainer) -> EqSpikeConfig:
    """The config saved beside the weights: fixed and onchip modes' as given, else the default one fitted."""
    if settings.mode in ("fixed", "onchip"):
        return settings.config
    return hardware_config(trainer.params, default_config(settings.layers).replace(beta=settings.dynamics.beta))


def _learner_state(trainer: Trainer) -> dict:
    """The on-chip learner's state file, committed with the checkpoint (onchip mode; other modes
    remove one left by an onchip run that --force replaced)."""
    return {"learning_state.npz": None if trainer.learner is None else trainer.learner.save}


def _check_outputs(out, json_path, settings: TrainSettings, dataset: str, force: bool) -> None:
    """Before training: ``out`` and ``--json`` must be writable, and a checkpoint already in
    ``out`` is replaced only by a run of the same mode, layers and data set (or with --force)."""
    import json
    from pathlib import Path

    from experiments.training import TRAINING_FILE, WEIGHTS_FILE

    check_output_dir(out, "--out")
    check_output_file(json_path, "--json")
    folder = Path(out)
    if force or not (folder / WEIGHTS_FILE).exists() and not (folder / TRAINING_FILE).exists():
        return
    try:
        old = json.loads((folder / TRAINING_FILE).read_text())
        old = (old.get("mode"), tuple(old.get("layers") or ()), old.get("dataset"))
    except (OSError, ValueError, AttributeError, TypeError, RecursionError):
        old = None
    new = (settings.mode, tuple(settings.layers), dataset)
    if old != new:
        what = ("an unreadable checkpoint" if old is None else
                f"a {old[0]} checkpoint of {'-'.join(map(str, old[1]))} on {old[2]}")
        raise CLIError(f"--out {folder} holds {what}; this run is {new[0]} "
                       f"{'-'.join(map(str, new[1]))} on {new[2]}: pass --force to replace it, or another --out")


def run(args) -> int:
    if args.seeds is not None:
        from ._seeds import run_seeds_command
        return run_seeds_command(args, run)
    if args.threads is not None:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
    data = load_data(args)
    settings = build_settings(args, data)
    init = None
    if args.init:
        init = load_checkpoint(args.init).params
        if tuple(init.layers) != settings.layers:
            raise ConfigError(f"--init weights are for layers {list(init.layers)}, "
                              f"training uses {list(settings.layers)}")
    out = args.out or f"out/train-{data.name}-{settings.mode}"
    _check_outputs(out, args.json, settings, data.name, args.force)
    trainer = Trainer(settings, init)
    training = settings.to_dict()
    training["dataset"] = data.name
    training["n_train"] = int(len(data.x_train))
    training["n_test"] = int(len(data.x_test))
    # "epochs" counts the epochs in the saved weights (as metrics.json); the plan is epochs_planned
    training["epochs_planned"] = settings.epochs
    training["epochs"] = 0
    print(f"training {'-'.join(map(str, settings.layers))} on {data.name} ({len(data.x_train)} train, "
          f"{len(data.x_test)} test), {settings.mode}: {settings.dynamics.describe()}, "
          f"lr {list(settings.lr)}" + (f" x {settings.lr_decay}^max(0, epoch-{settings.lr_decay_start})"
                                           if settings.lr_decay != 1 else "")
          + f", {settings.epochs} epochs, minibatch {settings.batch}, seed {settings.seed}")
    if settings.mode == "onchip":
        print("on-chip " + settings.config.summary().splitlines()[-1])
    from tqdm import tqdm
    t0 = time.perf_counter()
    history = []
    metrics = {}
    for epoch in range(1, settings.epochs + 1):
        te, ce = time.perf_counter(), time.process_time()
        bar = tqdm(total=len(data.x_train), desc=f"epoch {epoch}/{settings.epochs}", unit="img",
                   disable=args.no_progress, file=sys.stderr, mininterval=1.0, leave=False)

        def progress(n, loss, acc, bar=bar):
            bar.update(n)
            bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.3f}", refresh=False)

        loss, run_acc = trainer.train_epoch(data.x_train, data.y_train, data.n_classes, progress)
        bar.close()
        train_seconds, train_cpu = time.perf_counter() - te, time.process_time() - ce
        test_acc = accuracy(trainer.predict(data.x_test), data.y_test)
        m = EpochMetrics(epoch, loss, run_acc, test_acc, train_seconds, trainer.clipped, train_cpu)
        history.append(m.__dict__.copy())
        print(f"epoch {epoch}: loss {loss:.4f}, running train acc {100 * run_acc:.2f}%, "
              f"test acc {100 * test_acc:.2f}%, {train_seconds:.1f} s ({train_cpu:.1f} s CPU)", flush=True)
        metrics = {"dataset": data.name, "epochs": epoch, "test_accuracy": test_acc,
                   "train_running_accuracy": run_acc, "seconds": time.perf_counter() - t0,
                   "history": history}
        training["epochs"] = epoch
        save_checkpoint(out, trainer.params, _hw_config(settings, trainer), training, metrics,
                        extra=_learner_state(trainer))
    # "train" accuracy: fresh inference on (up to) the first 10,000 training samples (spec 5)
    n_tr = min(len(data.x_train), 10000)
    train_acc = accuracy(trainer.predict(data.x_train[:n_tr]), data.y_train[:n_tr])
    if settings.epochs == 0:
        metrics = {"dataset": data.name, "epochs": 0,
                   "test_accuracy": accuracy(trainer.predict(data.x_test), data.y_test), "history": []}
    seconds = time.perf_counter() - t0
    metrics.update({"train_accuracy": train_acc, "train_accuracy_samples": n_tr, "seconds": seconds,
                    "seconds_per_epoch": (float(np.mean([h["seconds"] for h in history])) if history else 0.0)})
    save_checkpoint(out, trainer.params, _hw_config(settings, trainer), training, metrics,
                    extra=_learner_state(trainer))
    print(f"done: train acc {100 * train_acc:.2f}% (first {n_tr}), test acc {100 * metrics['test_accuracy']:.2f}%, "
          f"{seconds:.1f} s; checkpoint in {out}")
    write_json(args.json, {"train_accuracy": train_acc, "test_accuracy": metrics["test_accuracy"],
                           "epochs": settings.epochs, "seconds": seconds})
    return 0
