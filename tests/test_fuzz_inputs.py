"""Input fuzz (issue 13 item 5): generated malformed inputs through the command line.

Six families of inputs, each drawn by Hypothesis and fed to ``eqspike.cli.main`` exactly as the
``eqspike`` program feeds it (so through the same loaders the commands call):

``config``      config JSON: fields set to random JSON values, deleted or added, layers mangled,
                the text truncated, nested thousands deep, replaced by binary bytes;
``idx``         an IDX folder: each of the four files valid, missing, a folder, empty, random
                bytes, truncated, extended, header bytes or shape changed, labels or counts
                changed, gzipped, gzipped and truncated;
``weights``     weights.npz: random sets of arrays (names, ranks, shapes, dtypes incl. object,
                NaN/inf/huge values), valid chains with one fault, a valid archive with bytes
                cut, flipped or inserted, a single .npy, random bytes;
``checkpoint``  a checkpoint folder: config.json, training.json, metrics.json mutated or
                replaced by random JSON or bytes, read by ``evaluate --weights`` and ``train --init``;
``arguments``   ``train`` and ``evaluate`` with 1-3 options set to odd values (nan, inf, -1, 0,
                1e400, 0x10, text, NUL, huge integers, comma lists);
``outputs``     --out / --json / -o / --plot under a regular file, naming a folder, with NUL
                bytes or over-long names.

Every input must end in one stderr line ``eqspike CMD: error: ...`` and exit status 2, never a
traceback, and every file already there (sentinel outputs, a sentinel checkpoint) must be
unchanged. Most valid draws are stopped by the sentinels (a checkpoint of another mode in
--out, a different config in OUT.json, weights whose layers fit no data set), so each example
costs milliseconds; valid IDX folders and valid 3-input weights instead run to the end
(``train --epochs 0`` on the folder, ``evaluate`` on a tiny 3-pixel data set), so that data the
loaders accept is also shown to work downstream. ``make test`` runs a few dozen per family with a fixed derandomised seed;
``pytest -m slow tests/test_fuzz_inputs.py -s`` runs 250 per family and prints the counts.
"""

import contextlib
import gzip
import io
import json
import os
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eqspike.cli import main
from experiments.training import save_checkpoint
from golden_model.config import default_config, learning_config, narrow_config
from golden_model.float_model import glorot_params

QUICK_EXAMPLES = 30     # per family in make test
SLOW_EXAMPLES = 250     # per family in the slow campaign (6 families: 1,500 inputs)

#: What the campaign saw: inputs, refusals by kind, tracebacks.
STATS = Counter()

# -- running one input -----------------------------------------------------------------------------


def _tree(paths) -> dict:
    """Every file under ``paths`` with its bytes (directories recursively)."""
    out = {}
    for p in paths:
        p = Path(p)
        if p.is_file():
            out[str(p)] = p.read_bytes()
        elif p.is_dir():
            for q in sorted(p.rglob("*")):
                out[str(q)] = q.read_bytes() if q.is_file() else None
    return out


def expect_refusal(argv, guarded=(), family="?", allow_ok=False):
    """Run ``eqspike ARGV``: exit status 2, one stderr line, and ``guarded`` paths unchanged
    (``allow_ok``: a valid input may also run to the end, exit status 0)."""
    before = _tree(guarded)
    err = io.StringIO()
    STATS["inputs"] += 1
    STATS[f"inputs {family}"] += 1
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            rc = main(argv)
    except BaseException:
        STATS["tracebacks"] += 1
        raise
    text = err.getvalue().strip()
    lines = text.splitlines()
    if allow_ok and rc == 0:
        assert _tree(guarded) == before, f"an existing output changed for {argv!r}"
        STATS["accepted (valid input, ran to the end)"] += 1
        return None
    assert rc == 2, f"exit status {rc} for {argv!r}: {text[-500:]}"
    assert len(lines) == 1 and lines[0].startswith("eqspike ") and ": error: " in lines[0], \
        f"not one error line for {argv!r}: {text[-500:]}"
    assert _tree(guarded) == before, f"an existing output changed for {argv!r}"
    sentinel = any(s in lines[0] for s in ("holds a sentinel", "holds a different config",
                                           "inputs but digits has 64", "--init weights are for layers",
                                           "layers start with 1 inputs", "layers end with 1 outputs"))
    STATS["stopped by a sentinel (input valid)" if sentinel else "refused as malformed"] += 1
    return lines[0]


def _sentinels(root: Path) -> dict:
    """Outputs that no refused command may touch: a checkpoint of mode 'sentinel', a JSON file,
    and a Verilog/config pair whose config differs from anything drawn."""
    ck = root / "sentinel-ckpt"
    save_checkpoint(ck, glorot_params((64, 4, 10), np.random.default_rng(0)), default_config((64, 4, 10)),
                    {"mode": "sentinel", "layers": [64, 4, 10], "dataset": "digits"}, {"epochs": 1})
    js = root / "sentinel.json"
    js.write_text('{"sentinel": true}\n')
    (root / "sentinel.v").write_text("// sentinel\n")
    default_config((7, 5, 3)).save(root / "sentinel.json.cfg")
    (root / "sentinel.json.cfg").rename(root / "top.json")
    (root / "sentinel.v").rename(root / "top.v")
    tiny = root / "tiny-idx"
    tiny.mkdir()
    for stem, n in (("train", 6), ("t10k", 4)):
        (tiny / f"{stem}-images-idx3-ubyte").write_bytes(_idx_bytes(np.arange(n * 3).reshape(n, 1, 3) * 20))
        (tiny / f"{stem}-labels-idx1-ubyte").write_bytes(_idx_bytes(np.arange(n) % 2))
    w = root / "w322"
    save_checkpoint(w, glorot_params((3, 2, 2), np.random.default_rng(1)), default_config((3, 2, 2)),
                    {"mode": "binary", "layers": [3, 2, 2], "dataset": "digits"}, {"epochs": 1})
    return {"ckpt": ck, "json": js, "top": root / "top.v", "w322": w, "tiny": tiny}


# -- strategies ------------------------------------------------------------------------------------
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6))
json_value = st.recursive(json_leaf, lambda c: st.lists(c, max_size=3)
                          | st.dictionaries(st.text(max_size=4), c, max_size=3), max_leaves=6)
near_ints = st.one_of(st.integers(-3, 70), st.sampled_from([2 ** 20, 2 ** 20 + 1, 2 ** 31, 2 ** 63, 2 ** 64, -2 ** 63]))
odd_text = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "-1", "0", "-0", "1e400", "1e-400", "0x10", "", " ", "1,2",
                     "a", "-1e-9", "3.5", "9" * 25, "0b1", "1_000", "\u0661", "\x00", "1,,2", "64,0,10",
                     "64-x-10", "64,4", "1e6", "osa:2", "power:1:-1", "constant:0", "osa:nan"]),
    st.integers(-10 ** 6, 10 ** 6).map(str), st.floats().map(repr), st.text(max_size=8))


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _set(doc, path, value):
    if not path:
        return value
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return doc


def _delete(doc, path):
    if not path:
        return doc
    node = doc
    for k in path[:-1]:
        node = node[k]
    del node[path[-1]]
    return doc


def draw_config_bytes(data) -> bytes:
    """A config JSON document, mutated at the value level and then perhaps at the text level."""
    base = data.draw(st.sampled_from(["default", "learning", "narrow"]))
    doc = {"default": lambda: default_config((4, 3, 2)), "learning": lambda: learning_config((4, 3, 2)),
           "narrow": narrow_config}[base]().to_dict()
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(["set", "set_near", "delete", "unknown", "layers", "wrap"]))
        path = data.draw(st.sampled_from(list(_paths(doc))))
        if op == "set":
            doc = _set(doc, path, data.draw(json_value))
        elif op == "set_near":
            doc = _set(doc, path, data.draw(near_ints))
        elif op == "delete":
            doc = _delete(doc, path)
        elif op == "unknown" and isinstance(doc, dict):
            doc[data.draw(st.text(max_size=5))] = data.draw(json_value)
        elif op == "layers" and isinstance(doc, dict):
            doc["layers"] = data.draw(st.lists(near_ints, max_size=5))
        elif op == "wrap":
            doc = [doc] if data.draw(st.booleans()) else {"config": doc}
    try:
        text = json.dumps(doc)
    except (ValueError, TypeError):     # e.g. an integer too long to print
        text = "{}"
    kind = data.draw(st.sampled_from(["as_is", "as_is", "truncate", "replace", "deep", "bytes", "bom"]))
    raw = text.encode()
    if kind == "truncate":
        raw = raw[:data.draw(st.integers(0, len(raw)))]
    elif kind == "replace" and raw:
        i = data.draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + bytes([data.draw(st.integers(0, 255))]) + raw[i + 1:]
    elif kind == "deep":
        n = data.draw(st.sampled_from([100_000, 3000, 100, 9]))
        raw = b'{"layers": ' + b"[" * n + b"1" + b"]" * n + b"}"
    elif kind == "bytes":
        raw = data.draw(st.binary(max_size=64))
    elif kind == "bom":
        raw = b"\xef\xbb\xbf" + raw
    return raw


def _idx_bytes(arr: np.ndarray) -> bytes:
    return (bytes([0, 0, 8, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
            + arr.astype(np.uint8).tobytes())


def write_idx_folder(data, d: Path) -> None:
    """A small MNIST-layout folder (6 train, 3 test images of 2x2, classes 0..2), each file
    perhaps broken."""
    rng = np.random.default_rng(data.draw(st.integers(0, 3)))
    base = {"train-images-idx3-ubyte": rng.integers(0, 256, (6, 2, 2)),
            "train-labels-idx1-ubyte": np.arange(6) % 3,
            "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 2, 2)),
            "t10k-labels-idx1-ubyte": np.arange(3) % 3}
    for name, arr in base.items():
        op = data.draw(st.sampled_from(["ok", "ok", "missing", "dir", "empty", "bytes", "truncate", "append",
                                        "header", "shape", "labels", "count", "ndim", "gz", "gz_truncate",
                                        "big_dims"]))
        raw = _idx_bytes(arr)
        head = 4 + 4 * arr.ndim
        path = d / name
        if op == "missing":
            continue
        if op == "dir":
            path.mkdir()
            continue
        if op == "empty":
            raw = b""
        elif op == "bytes":
            raw = data.draw(st.binary(max_size=40))
        elif op == "truncate":
            raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
        elif op == "append":
            raw = raw + data.draw(st.binary(min_size=1, max_size=8))
        elif op == "header":
            i = data.draw(st.integers(0, head - 1))
            raw = raw[:i] + bytes([data.draw(st.integers(0, 255))]) + raw[i + 1:]
        elif op == "shape":
            shape = data.draw(st.lists(st.integers(0, 5), min_size=arr.ndim, max_size=arr.ndim))
            raw = _idx_bytes(rng.integers(0, 256, shape))
        elif op == "labels":
            raw = _idx_bytes(np.array(data.draw(st.lists(st.integers(0, 255), min_size=len(arr), max_size=len(arr)))))
        elif op == "count":
            n = data.draw(st.integers(0, 8))
            raw = _idx_bytes(rng.integers(0, 3, (n,) + arr.shape[1:]))
        elif op == "ndim":
            raw = _idx_bytes(rng.integers(0, 3, data.draw(st.lists(st.integers(1, 3), max_size=4))))
        elif op == "big_dims":
            raw = bytes([0, 0, 8, arr.ndim]) + b"".join(
                int(data.draw(st.sampled_from([2 ** 31, 2 ** 32 - 1, 65536]))).to_bytes(4, "big")
                for _ in range(arr.ndim))
        if op in ("gz", "gz_truncate"):
            raw = gzip.compress(raw)
            if op == "gz_truncate":
                raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
            path = d / (name + ".gz")
        path.write_bytes(raw)


def _random_array(data):
    ndim = data.draw(st.integers(0, 3))
    shape = tuple(data.draw(st.lists(st.integers(0, 4), min_size=ndim, max_size=ndim)))
    kind = data.draw(st.sampled_from(["f8", "f4", "i4", "u1", "c16", "?", "U2", "O"]))
    if kind == "O":
        return np.empty(shape, dtype=object)
    arr = np.zeros(shape, dtype=kind)
    if arr.size and kind in ("f8", "f4"):
        arr.flat[0] = data.draw(st.floats(allow_nan=True, allow_infinity=True, width=32 if kind == "f4" else 64))
    return arr


def write_weights(data, path: Path) -> None:
    """A weights.npz: random arrays, or a 3-input chain (the tiny data set's) with one fault or none."""
    op = data.draw(st.sampled_from(["arrays", "chain", "chain", "raw", "npy", "bytes", "dir"]))
    if op == "dir":
        path.mkdir()
        return
    if op == "bytes":
        path.write_bytes(data.draw(st.binary(max_size=80)))
        return
    if op == "npy":
        with open(path, "wb") as f:
            np.save(f, _random_array(data))
        return
    if op == "arrays":
        names = data.draw(st.lists(st.sampled_from(["W0", "W1", "W2", "b1", "b2", "b3", "x", "W", "b0", "W01"]),
                                   min_size=1, max_size=5, unique=True))
        with open(path, "wb") as f:
            np.savez(f, **{n: _random_array(data) for n in names})
        return
    layers = [3] + data.draw(st.lists(st.integers(1, 5), max_size=2)) + [data.draw(st.integers(1, 5))]
    params = glorot_params(layers, np.random.default_rng(0))
    arrays = {f"W{i}": w for i, w in enumerate(params.weights)}
    arrays.update({f"b{i + 1}": b for i, b in enumerate(params.biases)})
    if op == "chain":
        key = data.draw(st.sampled_from(sorted(arrays)))
        fault = data.draw(st.sampled_from(["value", "shape", "dtype", "drop", "extra", "none"]))
        if fault == "value" and arrays[key].size:
            arrays[key] = arrays[key].copy()
            arrays[key].flat[0] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e300, 1e7, -1e6, 1e3, 0.0]))
        elif fault == "shape":
            arrays[key] = _random_array(data) if data.draw(st.booleans()) else \
                np.zeros(tuple(data.draw(st.lists(st.integers(0, 5), min_size=1, max_size=3))))
        elif fault == "dtype":
            arrays[key] = arrays[key].astype(data.draw(st.sampled_from(["c16", "?", "U3", "O", "i8"])))
        elif fault == "drop":
            del arrays[key]
        elif fault == "extra":
            arrays["extra"] = np.zeros(2)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    raw = buf.getvalue()
    if op == "raw":
        how = data.draw(st.sampled_from(["cut", "flip", "insert"]))
        i = data.draw(st.integers(0, len(raw) - 1))
        if how == "cut":
            raw = raw[:i]
        elif how == "flip":
            raw = raw[:i] + bytes([raw[i] ^ data.draw(st.integers(1, 255))]) + raw[i + 1:]
        else:
            raw = raw[:i] + data.draw(st.binary(min_size=1, max_size=16)) + raw[i:]
    path.write_bytes(raw)


def _training_dict(data):
    d = {"mode": "binary", "layers": [3, 2, 2], "dataset": "digits",
         "dynamics": {"mode": "binary", "eps": {"kind": "osa", "nu_bar": 0.0346, "e": 1.0},
                      "lam": {"kind": "constant", "value": 0.275}, "encoder": "sigma_delta",
                      "n_free": 10, "n_nudged": 4, "beta": 0.5}}
    for _ in range(data.draw(st.integers(0, 2))):
        path = data.draw(st.sampled_from(list(_paths(d))))
        d = _set(d, path, data.draw(st.one_of(json_value, near_ints)))
    return d


def _write_json_or_bytes(data, path: Path, valid_value) -> None:
    op = data.draw(st.sampled_from(["absent", "valid", "value", "bytes", "truncate", "nan", "dir"]))
    if op == "absent":
        return
    if op == "dir":
        path.mkdir()
        return
    if op == "bytes":
        path.write_bytes(data.draw(st.binary(max_size=40)))
        return
    value = valid_value if op in ("valid", "truncate") else data.draw(json_value)
    try:
        text = json.dumps(value)
    except ValueError:
        text = "{}"
    if op == "truncate":
        text = text[:data.draw(st.integers(0, len(text)))]
    elif op == "nan":
        text = '{"test_accuracy": NaN, "epochs": Infinity}'
    path.write_text(text)


# -- families --------------------------------------------------------------------------------------
def family_config(data, root: Path, s: dict) -> None:
    cfg = root / "cfg.json"
    cfg.write_bytes(draw_config_bytes(data))
    argv = data.draw(st.sampled_from([
        ["verilog", "--config", str(cfg), "-o", str(s["top"])],
        ["train", "--mode", "fixed", "--config", str(cfg), "--layers", "64,4,10", "--out", str(s["ckpt"]),
         "--n-train", "10", "--n-test", "5"],
    ]))
    expect_refusal(argv, [s["ckpt"], s["top"], s["top"].with_suffix(".json")], "config")


def family_idx(data, root: Path, s: dict) -> None:
    d = root / "idx"
    d.mkdir()
    write_idx_folder(data, d)
    # a valid folder trains for 0 epochs (inference on both splits) into a fresh folder
    expect_refusal(["train", "--data-dir", str(d), "--epochs", "0", "--free-steps", "4", "--nudged-steps", "2",
                    "--out", str(root / "run"), "--json", str(root / "run.json"), "--no-progress"],
                   [s["ckpt"], s["json"], d], "idx", allow_ok=True)


def family_weights(data, root: Path, s: dict) -> None:
    w = root / "weights.npz"
    write_weights(data, w)
    target = w if data.draw(st.booleans()) else root
    # 3-input weights with >= 2 outputs evaluate to the end on the tiny 3-pixel data set
    expect_refusal(["evaluate", "--weights", str(target), "--data-dir", str(s["tiny"]),
                    "--json", str(root / "eval.json")], [s["json"], s["ckpt"], s["tiny"]], "weights", allow_ok=True)


def family_checkpoint(data, root: Path, s: dict) -> None:
    d = root / "ck"
    d.mkdir()
    if data.draw(st.integers(0, 3)) == 0:
        write_weights(data, d / "weights.npz")
    else:
        glorot_params((3, 2, 2), np.random.default_rng(0)).save(d / "weights.npz")
    cfg_op = data.draw(st.sampled_from(["absent", "valid", "other_layers", "mutated"]))
    if cfg_op == "valid":
        default_config((3, 2, 2)).save(d / "config.json")
    elif cfg_op == "other_layers":
        default_config((3, 4, 2)).save(d / "config.json")
    elif cfg_op == "mutated":
        (d / "config.json").write_bytes(draw_config_bytes(data))
    _write_json_or_bytes(data, d / "training.json", _training_dict(data))
    _write_json_or_bytes(data, d / "metrics.json", {"epochs": 1, "test_accuracy": 0.5})
    argv = data.draw(st.sampled_from([
        ["evaluate", "--weights", str(d), "--dataset", "digits", "--n-test", "5", "--json", str(s["json"])],
        ["train", "--init", str(d), "--layers", "64,4,10", "--out", str(s["ckpt"]), "--n-train", "10",
         "--n-test", "5", "--no-progress"],
    ]))
    expect_refusal(argv, [s["ckpt"], s["json"]], "checkpoint")


TRAIN_OPTIONS = ["--lr", "--n-train", "--n-test", "--epochs", "--batch", "--beta", "--free-steps",
                 "--nudged-steps", "--lr-decay", "--lr-decay-start", "--eps", "--lam", "--layers", "--seed",
                 "--threads", "--lfsr-seed", "--learn-width", "--mode", "--rounding", "--config", "--init",
                 "--data-dir", "--dataset", "--decoder", "--encoder"]
EVALUATE_OPTIONS = ["--batch", "--n-test", "--n-train", "--dataset", "--data-dir", "--config"]


def family_arguments(data, root: Path, s: dict) -> None:
    if data.draw(st.booleans()):
        argv = ["train", "--layers", "64,4,10", "--epochs", "1", "--n-train", "10", "--n-test", "5",
                "--free-steps", "4", "--nudged-steps", "2", "--no-progress", "--out", str(s["ckpt"])]
        options = TRAIN_OPTIONS
    else:
        argv = ["evaluate", "--weights", str(s["w322"]), "--dataset", "digits", "--n-test", "5",
                "--json", str(s["json"])]
        options = EVALUATE_OPTIONS
    for opt in data.draw(st.lists(st.sampled_from(options), min_size=1, max_size=3, unique=True)):
        mode_values = st.sampled_from(["binary", "continuous", "fixed", "onchip"])
        value = data.draw(st.one_of(odd_text, mode_values) if opt == "--mode" else odd_text)
        argv.append(f"{opt}={value}")
    expect_refusal(argv, [s["ckpt"], s["json"], s["w322"]], "arguments")


def family_outputs(data, root: Path, s: dict) -> None:
    f = root / "a-file"
    f.write_text("x")
    (root / "folder.v").mkdir()
    long, nul = "n" * 256, "a\x00b"
    bad_dirs = [f, f / "sub", f / "sub" / "deeper", root / long, root / nul]
    bad_files = [f / "x.json", f / "sub" / "x.json", root / long, root / nul, root, Path("")]
    bad_verilog = [f / "x.v", f / "sub" / "x.v", root / (long + ".v"), root / (nul + ".v"), root / "folder.v",
                   root / "x.txt"]
    fresh = root / "fresh"
    small = ["--n-train", "10", "--n-test", "5", "--epochs", "0", "--layers", "64,4,10", "--no-progress"]
    converge = ["converge", "--runs", "1", "--samples", "1", "--steps", "4", "--jobs", "1"]
    cmd = data.draw(st.sampled_from([
        lambda d, j, v: ["train", "--out", str(d), "--json", str(fresh / "t.json")] + small,
        lambda d, j, v: ["train", "--out", str(fresh), "--json", str(j)] + small,
        lambda d, j, v: ["verilog", "-o", str(v)],
        lambda d, j, v: converge + ["--plot", str(fresh / "c.png"), "--json", str(j)],
        lambda d, j, v: converge + ["--plot", str(j)],
        lambda d, j, v: ["compare", "--weights", str(s["w322"]), "--json", str(j)],
        lambda d, j, v: ["compare", "--weights", str(s["w322"]), "--out", str(d)],
        lambda d, j, v: ["sweep", "--weights", str(s["w322"]), "--out", str(d)],
        lambda d, j, v: ["learn-sweep", "--out", str(d)],
        lambda d, j, v: ["demo", "--out", str(d)],
        lambda d, j, v: ["cosim", "--weights", str(s["w322"]), "--json", str(j)],
        lambda d, j, v: ["synth", "--out", str(d)],
        lambda d, j, v: ["synth", "--json", str(j)],
    ]))
    argv = cmd(data.draw(st.sampled_from(bad_dirs)), data.draw(st.sampled_from(bad_files)),
               data.draw(st.sampled_from(bad_verilog)))
    expect_refusal(argv, [f, s["ckpt"], s["w322"], s["top"]], "outputs")
    assert not fresh.exists(), f"{argv!r} created {fresh} before refusing"


FAMILIES = {"config": family_config, "idx": family_idx, "weights": family_weights,
            "checkpoint": family_checkpoint, "arguments": family_arguments, "outputs": family_outputs}


def run_family(name: str, examples: int, derandomize: bool) -> None:
    """Run one family for ``examples`` Hypothesis examples (fresh sentinels each)."""
    family = FAMILIES[name]

    def one(data):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            cwd = os.getcwd()
            os.chdir(root)      # relative paths drawn ("", "a") land in the scratch folder
            try:
                family(data, root, _sentinels(root))
            finally:
                os.chdir(cwd)

    test = settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
                    suppress_health_check=list(HealthCheck))(given(st.data())(one))
    test()


@pytest.mark.parametrize("name", list(FAMILIES))
def test_fuzz_inputs_quick(name):
    run_family(name, QUICK_EXAMPLES, derandomize=True)


@pytest.mark.slow
def test_fuzz_inputs_campaign():
    """>= 1,000 generated malformed inputs, 0 tracebacks; prints the counts (run with -s)."""
    STATS.clear()
    STATS["tracebacks"] = 0
    for name in FAMILIES:
        run_family(name, SLOW_EXAMPLES, derandomize=False)
    width = max(len(k) for k in STATS)
    print("\ninput fuzz campaign:")
    for key in sorted(STATS):
        print(f"  {key:<{width}}  {STATS[key]:>6}")
    assert STATS["tracebacks"] == 0
    assert STATS["refused as malformed"] >= 1000
