"""Data sets: MNIST-format IDX files and the built-in ``digits`` and ``fashion-mnist``.

Every loader returns a :class:`Dataset` with pixels scaled to [0, 1] (float32) and integer
labels. Errors are one line: a missing file, a bad magic number, mismatched image and label
counts, an unknown data set name.

Rules an IDX folder must meet (anything else is refused with a :class:`DataError`):

* image files are 3-D ``(n, rows, cols)`` with ``n >= 1`` and ``rows * cols >= 1``, label files
  1-D with one label per image; training and test images have the same ``rows x cols``;
* the classes are ``0 .. K-1`` with ``K = 1 + the largest training label`` and ``2 <= K <=
  MAX_CLASSES``; **every class has at least one training sample** (a gap such as labels
  ``0..9`` and ``200`` would make a network whose missing output neurons are never trained);
* every test label is one of the training classes.

IDX format (big-endian): magic ``0x00 0x00 <type> <ndim>`` (type 0x08 = unsigned byte), then
``ndim`` uint32 sizes, then the data. Images are ``ndim = 3`` (n, rows, cols), labels ``ndim = 1``.
Files may be gzipped (``.gz``) or plain; both spellings are searched.
"""

from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "Dataset", "DataError", "DATASETS", "FASHION_MNIST_DIR", "DIGITS_SEED", "MAX_CLASSES", "check_labels",
    "read_idx", "load_idx_pair", "load_idx_dir", "load_digits", "load_fashion_mnist", "load_dataset",
]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
DIGITS_SEED = 0          # the fixed shuffle of the digits split
DIGITS_TEST = 360        # 1,437 train / 360 test (spec section 8)
DATASETS = ("digits", "fashion-mnist")
#: Input size of each built-in data set (known without loading it; tests check it against the data).
INPUT_SIZES = {"digits": 64, "fashion-mnist": 784}

_IDX_TYPES = {0x08: np.uint8}
#: Most classes an IDX folder may have (labels are bytes; MNIST and Fashion-MNIST have 10).
MAX_CLASSES = 256
#: Largest IDX payload read (bytes): MNIST's training images are 47 MB.
MAX_IDX_BYTES = 1 << 32


class DataError(ValueError):
    """A data file is missing or malformed (one-line message)."""


@dataclass
class Dataset:
    """Train and test split, pixels in [0, 1].

    Members
    -------
    name : str
    x_train, x_test : float32 arrays (n, n_inputs)
    y_train, y_test : int64 arrays (n,), class indices
    n_classes : int
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def n_inputs(self) -> int:
        return int(self.x_train.shape[1])

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> "Dataset":
        """The first ``n_train`` training and ``n_test`` test samples (order kept)."""
        return Dataset(self.name, self.x_train[:n_train], self.y_train[:n_train],
                       self.x_test[:n_test], self.y_test[:n_test], self.n_classes)

    def one_hot(self, y: np.ndarray) -> np.ndarray:
        out = np.zeros((len(y), self.n_classes), dtype=np.float32)
        out[np.arange(len(y)), y] = 1.0
        return out


def _open(path: Path):
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def read_idx(path: str | Path, ndim: int | None = None) -> np.ndarray:
    """Read one IDX file (gzipped or plain) into a uint8 array; check magic and size."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist")
    try:
        with _open(path) as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_TYPES:
                raise DataError(f"{path}: bad magic number {head.hex() or '(empty file)'} "
                                f"(expected 0x000008NN for an unsigned-byte IDX file)")
            nd = head[3]
            if ndim is not None and nd != ndim:
                raise DataError(f"{path}: IDX file has {nd} dimensions, expected {ndim}")
            dims_raw = f.read(4 * nd)
            if len(dims_raw) < 4 * nd:
                raise DataError(f"{path}: truncated IDX header")
            dims = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))
            expected = math.prod(dims)
            if expected > MAX_IDX_BYTES:
                raise DataError(f"{path}: IDX shape {dims} needs {expected} bytes, more than "
                                f"the {MAX_IDX_BYTES} this loader reads")
            # read one byte past the expected size: enough to tell "too long" without reading it all
            data = f.read(expected + 1)
    except (OSError, EOFError, zlib.error) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise DataError(f"{path}: cannot read IDX data ({e})") from None
    if len(data) != expected:
        found = f"{len(data)}" if len(data) <= expected else "more"
        raise DataError(f"{path}: expected {expected} data bytes for shape {dims}, found {found}")
    return np.frombuffer(data, dtype=_IDX_TYPES[head[2]]).reshape(dims)


def load_idx_pair(images: str | Path, labels: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, rows*cols) scaled to [0, 1] float32 and labels (n,) int64."""
    x = read_idx(images, 3)
    y = read_idx(labels, 1)
    if x.shape[0] != y.shape[0]:
        raise DataError(f"{images} has {x.shape[0]} images but {labels} has {y.shape[0]} labels")
    if x.shape[0] == 0 or x.shape[1] * x.shape[2] == 0:
        raise DataError(f"{images} holds no pixels (shape {x.shape})")
    return (x.reshape(x.shape[0], -1).astype(np.float32) / np.float32(255.0)), y.astype(np.int64)


def _find(data_dir: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (data_dir / name).is_file():
            return data_dir / name
    raise FileNotFoundError(f"data file {str(data_dir / stem)!r} (or .gz) does not exist")


def load_idx_dir(data_dir: str | Path, name: str = "idx") -> Dataset:
    """An MNIST-layout directory: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-*."""
    d = Path(data_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"data directory {str(d)!r} does not exist")
    xtr, ytr = load_idx_pair(_find(d, "train-images-idx3-ubyte"), _find(d, "train-labels-idx1-ubyte"))
    xte, yte = load_idx_pair(_find(d, "t10k-images-idx3-ubyte"), _find(d, "t10k-labels-idx1-ubyte"))
    if xtr.shape[1] != xte.shape[1]:
        raise DataError(f"{d}: training images have {xtr.shape[1]} pixels, test images {xte.shape[1]}")
    return Dataset(name, xtr, ytr, xte, yte, check_labels(d, ytr, yte))


def check_labels(where, y_train: np.ndarray, y_test: np.ndarray) -> int:
    """The class count ``K`` of these labels, after checking the rules of the module docstring."""
    n_classes = int(y_train.max()) + 1
    if not 2 <= n_classes <= MAX_CLASSES:
        raise DataError(f"{where}: training labels must span 2..{MAX_CLASSES} classes, "
                        f"found {n_classes} (largest label {n_classes - 1})")
    missing = np.setdiff1d(np.arange(n_classes), y_train)
    if missing.size:
        raise DataError(f"{where}: labels must be the classes 0..{n_classes - 1}, each with a training "
                        f"sample; {missing.size} have none (first: {int(missing[0])})")
    if int(y_test.max()) >= n_classes:
        raise DataError(f"{where}: test label {int(y_test.max())} is not a training class "
                        f"(0..{n_classes - 1})")
    return n_classes


def load_digits() -> Dataset:
    """scikit-learn's 1,797 8x8 digits, pixels / 16, fixed shuffle: 1,437 train / 360 test."""
    from sklearn.datasets import load_digits as _sk_digits
    d = _sk_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    order = np.random.default_rng(DIGITS_SEED).permutation(len(y))
    x, y = x[order], y[order]
    n_train = len(y) - DIGITS_TEST
    return Dataset("digits", x[:n_train], y[:n_train], x[n_train:], y[n_train:], 10)


def load_fashion_mnist(data_dir: str | Path | None = None) -> Dataset:
    """Fashion-MNIST from ``data_dir`` or the Debian package's directory."""
    d = Path(data_dir) if data_dir is not None else FASHION_MNIST_DIR
    if data_dir is None and not d.is_dir():
        raise FileNotFoundError(
            f"Fashion-MNIST not found under {d}; install it with "
            "'apt-get install dataset-fashion-mnist' or pass --data-dir")
    return load_idx_dir(d, "fashion-mnist")


def load_dataset(name: str, data_dir: str | Path | None = None) -> Dataset:
    """A data set by name (``digits``, ``fashion-mnist``) or, with ``data_dir``, an IDX directory.

    ``name == "idx"`` (or any name with ``data_dir`` given other than ``digits``) reads the
    MNIST-layout IDX files in ``data_dir``.
    """
    if name == "digits":
        return load_digits()
    if name == "fashion-mnist":
        return load_fashion_mnist(data_dir)
    if name in ("idx", "mnist") and data_dir is not None:
        return load_idx_dir(data_dir, name)
    raise DataError(f"unknown data set {name!r} (known: digits, fashion-mnist, or idx/mnist with --data-dir)")
