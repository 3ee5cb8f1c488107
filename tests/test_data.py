import dataclasses
import functools
import gzip
import inspect
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from dl_jax import data
from dl_jax.config import DataConfig
from dl_jax.errors import ConfigError, DataError
from scripts import write_idx_folder

FIXTURES = Path(__file__).parent / "fixtures"


def write_split_files(folder: Path, n_train=40, n_test=12, seed=0):
    """Tiny synthetic IDX files with the standard names; returns the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        data.write_idx(folder / data.IDX_FILES[split][0], images)
        data.write_idx(folder / data.IDX_FILES[split][1], labels)
        arrays[split] = {"image": images[..., None], "label": labels.astype(np.int32)}
    return arrays


def by_content(split):
    return sorted(zip(split["label"].tolist(), [x.tobytes() for x in split["image"]], strict=True))


def test_idx_round_trip(tmp_path):
    written = write_split_files(tmp_path)
    splits = data.load(dir=tmp_path)
    for name in ("train", "test"):
        for key in ("image", "label"):
            np.testing.assert_array_equal(getattr(splits, name)[key], written[name][key])
    assert splits.train["image"].dtype == np.uint8 and splits.train["label"].dtype == np.int32
    assert splits.source == f"IDX folder {tmp_path}"


def test_write_idx_is_reproducible(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    data.write_idx(tmp_path / "a.gz", labels)
    data.write_idx(tmp_path / "b.gz", labels)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def corrupt(path: Path, edit):
    path.write_bytes(gzip.compress(edit(gzip.decompress(path.read_bytes()))))


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda raw: raw[:-1],
            r"truncated or corrupt IDX file .*train-images-idx3-ubyte.gz: "
            r"its header says shape \(40, 28, 28\) \(31376 bytes\), the file has 31375",
        ),
        (lambda raw: raw + b"\0", r"the file has 31377 bytes"),
        (
            lambda raw: b"\0\0\x08\x01" + raw[4:],
            r"bad magic number in .*train-images-idx3-ubyte.gz: 0x00000801, expected 0x00000803",
        ),
        (lambda raw: raw[:6], r"truncated IDX file .*: 6 bytes, shorter than its header"),
        (lambda raw: b"", r"bad magic number .*: none \(file too short\)"),
    ],
)
def test_corrupt_images_file(tmp_path, edit, message):
    write_split_files(tmp_path)
    corrupt(tmp_path / "train-images-idx3-ubyte.gz", edit)
    with pytest.raises(DataError, match=message):
        data.load(dir=tmp_path)


def test_not_gzip_missing_and_inconsistent_files(tmp_path):
    write_split_files(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=r"corrupt or truncated IDX file .*t10k-labels"):
        data.load(dir=tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"missing IDX file .*t10k-labels-idx1-ubyte.gz"):
        data.load(dir=tmp_path)
    data.write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(11, np.uint8))
    with pytest.raises(DataError, match="12 images but 11 labels in the test split"):
        data.load(dir=tmp_path)
    data.write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(12, 10, np.uint8))
    with pytest.raises(DataError, match="label 10 is not in 0..9"):
        data.load(dir=tmp_path)


def test_bundled_sample(sample):
    assert sample.train["image"].shape == (5000, 28, 28, 1)
    assert sample.test["image"].shape == (1000, 28, 28, 1)
    counts = np.bincount(sample.train["label"], minlength=10)
    assert counts.min() > 400  # every digit is there, roughly balanced
    assert sample.train["image"].max() == 255 and sample.train["image"].mean() > 25  # real ink


def test_bundled_sample_is_the_deterministic_cut_of_real_mnist(tmp_path, mnist_dir):
    data.cut_sample(mnist_dir, tmp_path)
    for path in sorted(data.SAMPLE_DIR.iterdir()):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name
    full = data.load(dir=mnist_dir)
    np.testing.assert_array_equal(
        data.load(source="sample").test["image"], full.test["image"][::10]
    )


def test_the_dataset_is_recognised_by_its_decoded_arrays(tmp_path, sample):
    assert sample.dataset == "mnist" and sample.describe() == (
        "mnist from bundled MNIST sample: 5000 train, 1000 test"
    )
    copy = data.load(dir=write_idx_folder(tmp_path / "copy", sample))  # recompressed
    assert copy.fingerprints == sample.fingerprints and copy.dataset == "mnist"
    cut = data.load(dir=write_idx_folder(tmp_path / "cut", sample, train=100, test=100))
    assert cut.dataset == "unknown"  # a subset is legitimate data, just not a known one
    assert cut.describe() == f"unknown, from IDX folder {tmp_path / 'cut'}: 100 train, 100 test"
    identity = cut.identity()
    assert identity["name"] == "unknown" and identity["train"]["examples"] == 100
    assert identity["train"]["sha256"] == data.fingerprint(cut.train) != sample.fingerprints[0]


def test_the_fingerprint_sees_one_pixel_and_the_order(sample):
    image = sample.train["image"].copy()
    image[4321, 10, 10, 0] ^= 1
    assert data.fingerprint({**sample.train, "image": image}) != sample.fingerprints[0]
    order = np.arange(5000)[::-1]
    reordered = {k: v[order] for k, v in sample.train.items()}
    assert data.fingerprint(reordered) != sample.fingerprints[0]


def test_full_mnist_is_recognised(mnist_dir):
    assert data.load(dir=mnist_dir).dataset == "mnist"


def test_an_explicit_name_must_match_the_recognised_data(tmp_path, sample):
    folder = write_idx_folder(tmp_path / "digits", sample)
    message = (
        rf"--data.name=fashion_mnist, but IDX folder {folder} holds mnist \(recognised from its "
        r"contents\); use --data.name=mnist or --data.name=auto"
    )
    with pytest.raises(DataError, match=message):
        data.load("fashion_mnist", dir=folder)
    with pytest.raises(DataError, match=message):  # before any TFDS copy is written
        data.load("fashion_mnist", source="tfds", dir=folder, tfds_dir=tmp_path / "tfds")
    assert not (tmp_path / "tfds").exists()
    assert data.load("mnist", dir=folder).dataset == "mnist"
    cut = write_idx_folder(tmp_path / "cut", sample, train=50, test=50)
    assert data.load("fashion_mnist", dir=cut).dataset == "unknown"  # unknown data: allowed


def test_source_errors():
    with pytest.raises(ConfigError, match="unknown dataset 'cifar10'; valid: auto, fashion_mn"):
        data.load("cifar10")
    with pytest.raises(ConfigError, match="unknown data source 'web'"):
        data.load(source="web")
    with pytest.raises(DataError, match="--data.source=idx needs --data.dir=PATH"):
        data.load(source="idx")
    with pytest.raises(DataError, match="the bundled sample is MNIST only"):
        data.load("fashion_mnist", source="sample")


def test_offline_with_no_data_fails_fast_naming_every_place(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_reachable", lambda url: False)
    monkeypatch.setattr(data, "SYSTEM_IDX_DIRS", {"fashion_mnist": tmp_path / "debian"})
    start = time.perf_counter()
    with pytest.raises(DataError) as error:
        data.load("fashion_mnist", tfds_dir=tmp_path / "tfds")
    message = str(error.value)
    assert time.perf_counter() - start < 10
    assert f"IDX folder {tmp_path / 'debian'} (absent)" in message
    assert f"TFDS copy at {tmp_path / 'tfds' / 'fashion_mnist'} (no such folder)" in message
    assert "TFDS download (no network: fashion-mnist" in message
    assert "--data.dir=PATH" in message and "--data.source=sample" in message


def test_a_half_prepared_tfds_folder_is_named_without_tfds_warnings(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(data, "_reachable", lambda url: False)
    (tmp_path / "mnist" / "3.0.1").mkdir(parents=True)
    with pytest.raises(DataError, match="mnist .not prepared in the array_record format"):
        data.load("mnist", source="tfds", tfds_dir=tmp_path)
    assert [r.message for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_bucket_url_for_tfds_is_refused_in_one_line(monkeypatch):
    with pytest.raises(DataError, match="TFDS data at gs://b/tfds: URLs are not read directly"):
        data.load("mnist", source="tfds", tfds_dir="gs://b/tfds")
    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", "gs://b/env")  # from TFDS_DATA_DIR
    monkeypatch.setattr(data, "_reachable", lambda url: True)
    with pytest.raises(DataError, match="TFDS data at gs://b/env: URLs"):
        data.load("mnist")


def test_auto_uses_the_system_folder(tmp_path, monkeypatch):
    write_split_files(tmp_path)
    monkeypatch.setattr(data, "SYSTEM_IDX_DIRS", {"fashion_mnist": tmp_path})
    assert data.load("fashion_mnist").source == f"IDX folder {tmp_path}"


def test_reachable_is_false_for_a_closed_port():
    assert not data._reachable("http://127.0.0.1:9/", timeout=2)


def test_tfds_path_under_mock_data(tmp_path):
    # The dataset_info.json and features.json that our builder wrote for the real MNIST give the
    # mock real split sizes and labels; kept in tmp_path, they also keep the .npz cache there.
    shutil.copytree(FIXTURES / "tfds_metadata", tmp_path, dirs_exist_ok=True)
    mock = functools.partial(
        tfds.testing.mock_data, policy=tfds.testing.MockPolicy.USE_FILES, data_dir=str(tmp_path)
    )
    with mock(num_examples=24):
        splits = data.load("mnist", source="tfds", tfds_dir=tmp_path)
    assert splits.train["image"].shape == (24, 28, 28, 1)
    assert splits.train["image"].dtype == np.uint8 and splits.train["label"].dtype == np.int32
    assert splits.test["label"].max() < 10
    assert splits.source == f"TFDS mnist in {tmp_path}"
    assert (tmp_path / "mnist" / "3.0.1" / "dl_jax-train.npz").exists()
    with mock(num_examples=5):
        again = data.load("mnist", source="tfds", tfds_dir=tmp_path)
    np.testing.assert_array_equal(again.train["image"], splits.train["image"])  # from the cache


def test_tfds_round_trip_from_local_idx_files(tmp_path):
    written = write_split_files(tmp_path / "idx")
    tfds_dir = tmp_path / "tfds"
    prepared = data.load("mnist", source="tfds", dir=tmp_path / "idx", tfds_dir=tfds_dir)
    cached = data.load("mnist", source="tfds", tfds_dir=tfds_dir)
    for split in ("train", "test"):
        # TFDS stores examples in its own (hashed) order: compare contents, not positions.
        assert by_content(getattr(prepared, split)) == by_content(written[split])
        for key in ("image", "label"):
            from_cache, from_tfds = getattr(cached, split)[key], getattr(prepared, split)[key]
            np.testing.assert_array_equal(from_cache, from_tfds)
    assert (tmp_path / "tfds" / "mnist" / "3.0.1" / "dl_jax-test.npz").exists()


def test_tf_free_builder_keeps_the_registered_checksums():
    url_infos = data._builder_class("mnist").url_infos
    info = url_infos[
        "https://storage.googleapis.com/cvdf-datasets/mnist/train-images-idx3-ubyte.gz"
    ]
    assert info.checksum == "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
    assert data._builder_class("fashion_mnist").name == "fashion_mnist"


def test_load_takes_the_command_lines_names():
    """`data.load(**dataclasses.asdict(cfg.data))`: its keywords are --data.*'s fields."""
    fields = [f.name for f in dataclasses.fields(DataConfig)]
    assert list(inspect.signature(data.load).parameters) == fields
    sample = data.load(**dataclasses.asdict(DataConfig(source="sample")))
    assert sample.test["label"].shape == (1000,)
