"""IDX loader and built-in data sets (experiments/data.py)."""

import gzip
import struct

import numpy as np
import pytest

from experiments import data as D


def _idx_bytes(arr: np.ndarray, type_code: int = 0x08) -> bytes:
    head = bytes([0, 0, type_code, arr.ndim]) + b"".join(struct.pack(">I", n) for n in arr.shape)
    return head + arr.astype(np.uint8).tobytes()


def _write(path, arr, gz=False, **kw):
    raw = _idx_bytes(arr, **kw)
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)
    return path


def _mnist_dir(tmp_path, n_train=7, n_test=3, gz=True):
    rng = np.random.default_rng(0)
    sfx = ".gz" if gz else ""
    for stem, n in (("train", n_train), ("t10k", n_test)):
        _write(tmp_path / f"{stem}-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n, 4, 5)), gz)
        # every class 0..K-1 needs a training sample (experiments/data.py), so labels cycle
        _write(tmp_path / f"{stem}-labels-idx1-ubyte{sfx}", np.arange(n) % 5, gz)
    return tmp_path


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip_gzipped_and_plain(tmp_path, gz):
    img = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    p = _write(tmp_path / "img", img, gz)
    assert np.array_equal(D.read_idx(p, 3), img)


def test_idx_dir_scales_pixels_and_flattens(tmp_path):
    d = D.load_idx_dir(_mnist_dir(tmp_path))
    assert d.x_train.shape == (7, 20) and d.x_test.shape == (3, 20)
    assert d.x_train.dtype == np.float32 and 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0
    raw = D.read_idx(tmp_path / "train-images-idx3-ubyte.gz")
    assert np.allclose(d.x_train * 255.0, raw.reshape(7, 20))
    assert d.y_train.dtype == np.int64


def test_plain_files_are_found_too(tmp_path):
    d = D.load_dataset("idx", _mnist_dir(tmp_path, gz=False))
    assert len(d.y_train) == 7


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        D.load_idx_dir(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        D.read_idx(tmp_path / "nope")


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="data directory"):
        D.load_dataset("idx", tmp_path / "absent")


def test_bad_magic_number(tmp_path):
    p = tmp_path / "bad"
    p.write_bytes(b"\x12\x34\x08\x03" + b"\x00" * 20)
    with pytest.raises(D.DataError, match="bad magic number 12340803"):
        D.read_idx(p)
    q = _write(tmp_path / "float", np.zeros((1, 2, 2)), type_code=0x0D)
    with pytest.raises(D.DataError, match="bad magic"):
        D.read_idx(q)


def test_wrong_dimension_count(tmp_path):
    p = _write(tmp_path / "lab", np.zeros(5))
    with pytest.raises(D.DataError, match="1 dimensions, expected 3"):
        D.read_idx(p, 3)


def test_truncated_data(tmp_path):
    p = tmp_path / "short"
    p.write_bytes(_idx_bytes(np.zeros((3, 2, 2)))[:-1])
    with pytest.raises(D.DataError, match="expected 12 data bytes"):
        D.read_idx(p)


def test_mismatched_image_and_label_counts(tmp_path):
    _mnist_dir(tmp_path)
    _write(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(6), gz=True)
    with pytest.raises(D.DataError, match="7 images but .* 6 labels"):
        D.load_idx_dir(tmp_path)


def test_errors_are_one_line(tmp_path):
    p = tmp_path / "bad"
    p.write_bytes(b"\xff" * 10)
    with pytest.raises(D.DataError) as e:
        D.read_idx(p)
    assert "\n" not in str(e.value)


def test_digits_split_is_fixed_and_scaled():
    a, b = D.load_digits(), D.load_digits()
    assert a.x_train.shape == (1437, 64) and a.x_test.shape == (360, 64)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert a.x_train.min() == 0.0 and a.x_train.max() == 1.0
    assert set(np.unique(a.y_test)) == set(range(10))


def test_unknown_dataset_name():
    with pytest.raises(D.DataError, match="unknown data set 'cifar'"):
        D.load_dataset("cifar")


def test_fashion_mnist_missing_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "FASHION_MNIST_DIR", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        D.load_dataset("fashion-mnist")


def test_labels_must_be_classes_with_training_samples(tmp_path):
    _mnist_dir(tmp_path, gz=False)
    _write(tmp_path / "train-labels-idx1-ubyte", np.array([0, 1, 2, 3, 4, 5, 200]))
    with pytest.raises(D.DataError, match="each with a training sample; 194 have none"):
        D.load_idx_dir(tmp_path)
    _write(tmp_path / "train-labels-idx1-ubyte", np.zeros(7))
    with pytest.raises(D.DataError, match="must span 2..256 classes, found 1"):
        D.load_idx_dir(tmp_path)
    _write(tmp_path / "train-labels-idx1-ubyte", np.arange(7) % 2)
    with pytest.raises(D.DataError, match="test label 2 is not a training class"):
        D.load_idx_dir(tmp_path)


def test_train_and_test_images_must_have_the_same_size(tmp_path):
    _mnist_dir(tmp_path, gz=False)
    _write(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 5, 5)))
    with pytest.raises(D.DataError, match="20 pixels, test images 25"):
        D.load_idx_dir(tmp_path)


def test_input_sizes_match_the_data():
    assert D.load_digits().n_inputs == D.INPUT_SIZES["digits"]
    if (D.FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists():
        assert D.load_fashion_mnist().n_inputs == D.INPUT_SIZES["fashion-mnist"]
