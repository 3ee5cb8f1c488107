"""MNIST and Fashion-MNIST as whole splits of numpy arrays.

A split is `{"image": uint8 [N, 28, 28, 1], "label": int32 [N]}`. It is loaded once and moved to
the device whole; batching and shuffling happen there (`dl_jax.train`), never per example here.

Where the data comes from is decided by `load`; its docstring is the one statement of the order.
What was loaded is recognised from the sha256 of the decoded arrays (`fingerprint`), whatever
folder or format it came from: a run records it, and a resumed run must load the same.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import io
import logging
import socket
import threading
import urllib.parse
from pathlib import Path

import numpy as np

from dl_jax.errors import DataError, unknown_name
from dl_jax.files import replacing

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
SPLITS = ("train", "test")

# The standard file names, shared by MNIST and Fashion-MNIST.
IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_IMAGES_MAGIC, _LABELS_MAGIC = 0x00000803, 0x00000801  # unsigned bytes, 3 dims / 1 dim

DATASETS = ("mnist", "fashion_mnist")
NAMES = ("auto", *DATASETS)  # auto: whatever --data.dir holds; MNIST where a name must be given
SOURCES = ("auto", "idx", "tfds", "sample")
# Folders that distributions install IDX files into (Debian: apt-get install dataset-fashion-mnist).
SYSTEM_IDX_DIRS = {"fashion_mnist": Path("/usr/share/datasets/fashion-mnist")}
SAMPLE_DIR = Path(__file__).parent / "assets" / "mnist_sample"


# The fingerprints (train, test) of the datasets the package knows, in the orders they come in:
# the IDX files' and TFDS's (which stores them shuffled). Recompressed .gz files, or the same
# arrays read through TFDS, are recognised; a subset, a cut or any other data is "unknown".
KNOWN = {
    ("3247b02c795e66589198f1b06819b6d6ed00dd353f2e445d78442763f6d47976",
     "76e5f252e161533b1a315653b9b744135bb5a805313d5b964cbb937a2d8c9a76"): "mnist",
    ("960231ee20099c03d92d4b369eaebed1bab06e5c8a9b4f5f86b207fe884ea77a",
     "a144b69a405f46a0ffcab61adf67b27fbfe6cc139a94540cbd286b3e60102ff8"): "mnist",
    ("215eff3858f11c54163559da5f9169b295f24a80b5a4f102d29235d32c4ce20c",
     "289b0e40f1abfaa0334c8c75f9c012410a7eeb666a02db910b082051585021a5"): "fashion_mnist",
    ("b9f19d0537967684cd6a54ac2fa47bd127b014b1cdb05d6a897d2a382b154a24",
     "33cab01912aa5918175ae1d9744b796797f132bbf5ad86dae3513899d8aae548"): "fashion_mnist",
    ("dc45712257f191d5ef65fc64e8a33d10407f909041d3c66a365410b8ff09b1d9",
     "3f9b41680f5327b4aff104c35b514de2e96763e89fcedd91118ffa2268970f4a"): "mnist",  # the sample
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Splits:
    """The train and test splits of one dataset, a line saying where they came from, and its
    name when the maker knows it (generated data); loaded data is named by its fingerprints."""

    train: dict[str, np.ndarray]
    test: dict[str, np.ndarray]
    source: str
    name: str | None = None

    @functools.cached_property
    def fingerprints(self) -> tuple[str, str]:
        """The sha256 of the train and of the test split (`fingerprint`)."""
        return fingerprint(self.train), fingerprint(self.test)

    @property
    def dataset(self) -> str:
        """`name`, else the dataset recognised from the fingerprints ("mnist", ...), else
        "unknown"."""
        return self.name or KNOWN.get(self.fingerprints, "unknown")

    def identity(self) -> dict:
        """What a run records of its data, and compares on resume: name, source, fingerprints."""
        return {
            "name": self.dataset,
            "source": self.source,
            **{
                split: {"examples": num_examples(getattr(self, split)), "sha256": digest}
                for split, digest in zip(SPLITS, self.fingerprints, strict=True)
            },
        }

    def describe(self) -> str:
        """`mnist from IDX folder PATH: 60000 train, 10000 test` (or `unknown, from ...`)."""
        name = self.dataset + ("," if self.dataset == "unknown" else "")
        return (
            f"{name} from {self.source}: {num_examples(self.train)} train, "
            f"{num_examples(self.test)} test"
        )


def num_examples(split: dict[str, np.ndarray]) -> int:
    """The length of a split's example axis (every array of a split has it first)."""
    return len(next(iter(split.values())))


def fingerprint(split: dict[str, np.ndarray]) -> str:
    """sha256 of a split's decoded arrays: each one's name, dtype and shape, then its bytes."""
    digest = hashlib.sha256()
    for key in sorted(split):
        array = np.ascontiguousarray(split[key])
        digest.update(f"{key} {array.dtype} {array.shape}\n".encode())
        digest.update(array)
    return digest.hexdigest()


def load(
    name: str = "auto",
    source: str = "auto",
    dir: str | Path | None = None,  # named as --data.dir is
    tfds_dir: str | Path | None = None,
) -> Splits:
    """Load the train and test splits of `name` ("mnist", "fashion_mnist" or "auto").

    With `source="auto"` the first of these that applies is used:

    1. `dir` is given: the IDX gz files in that folder (errors there are final).
    2. A folder a distribution installs the files into (`SYSTEM_IDX_DIRS`), if it exists.
    3. A TFDS copy already prepared under `tfds_dir` (TFDS's default dir when None), read with
       `tfds.data_source(download=False)`; the arrays are cached next to it as `.npz`.
    4. The network is reachable: TFDS downloads the files, checks their registered sha256 and
       prepares them with a TensorFlow-free builder, then as in 3.
    5. Otherwise: a DataError naming every place tried and how to provide the data.

    `source="idx"` is step 1 alone; `source="tfds"` is steps 3-4, and with `dir` it prepares
    the TFDS copy from that local folder instead of downloading (offline). `source="sample"` is
    the bundled sample of real MNIST (5,000 train / 1,000 test images), for quickstarts and tests.

    `name="auto"` takes whatever `dir` holds, and MNIST from TFDS; a name that contradicts
    the dataset recognised in the files is refused. Data that is not recognised loads as it is.
    """
    if name not in NAMES:
        raise unknown_name("dataset", name, NAMES)
    if source not in SOURCES:
        raise unknown_name("data source", source, SOURCES)
    splits = _load(name, source, dir, tfds_dir)
    _check_name(name, splits)
    return splits


def _check_name(name: str, splits: Splits) -> None:
    """Refuse an explicit `name` that contradicts the dataset recognised in `splits`."""
    if name != "auto" and splits.dataset not in (name, "unknown"):
        raise DataError(
            f"--data.name={name}, but {splits.source} holds {splits.dataset} (recognised from "
            f"its contents); use --data.name={splits.dataset} or --data.name=auto"
        )


def _load(name: str, source: str, idx_dir, tfds_dir) -> Splits:
    if source == "sample" and idx_dir is not None:
        raise DataError(
            f"--data.dir={idx_dir} is not read with --data.source=sample (the bundled sample); "
            "use --data.source=idx or auto to read it"
        )
    if source == "sample":
        if name not in ("auto", "mnist"):
            raise DataError(f"the bundled sample is MNIST only, not {name!r}")
        return _from_idx(SAMPLE_DIR, "bundled MNIST sample")
    if source == "idx" or (source == "auto" and idx_dir is not None):
        if idx_dir is None:
            raise DataError("--data.source=idx needs --data.dir=PATH, a folder of IDX gz files")
        return _from_idx(Path(idx_dir), f"IDX folder {idx_dir}")
    if source == "tfds" and idx_dir is not None:
        local = _from_idx(Path(idx_dir), f"IDX folder {idx_dir}")  # checks the files first
        _check_name(name, local)
        if name == "auto":
            name = local.dataset if local.dataset in DATASETS else "mnist"
        _prepare_tfds(name, tfds_dir, idx_dir=Path(idx_dir))
        return _from_tfds(name, tfds_dir)
    if name == "auto":
        name = "mnist"

    tried = []
    system_dir = SYSTEM_IDX_DIRS.get(name)
    if source == "auto" and system_dir is not None:
        if system_dir.is_dir():
            return _from_idx(system_dir, f"IDX folder {system_dir}")
        tried.append(f"IDX folder {system_dir} (absent)")
    try:
        return _from_tfds(name, tfds_dir)
    except DataError as e:
        tried.append(str(e))
    url = _stock_builder(name).URL
    if _reachable(url):
        _prepare_tfds(name, tfds_dir, idx_dir=None)
        return _from_tfds(name, tfds_dir)
    tried.append(f"TFDS download (no network: {urllib.parse.urlparse(url).hostname} unreachable)")
    raise DataError(
        f"no {name} data found. Tried: {'; '.join(tried)}. Provide it with --data.dir=PATH "
        "(a folder with the 4 IDX gz files), prepare TFDS once while online, or use "
        "--data.source=sample for the bundled MNIST sample"
    )


# --------------------------------------------------------------------------- IDX files


def read_idx(path: Path, magic: int) -> np.ndarray:
    """One gzipped IDX file as a uint8 array; its magic number and size are checked."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"missing IDX file {path}") from None
    except (OSError, EOFError) as e:  # not gzip, or cut short
        raise DataError(f"corrupt or truncated IDX file {path}: {e}") from None
    found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if found != magic:
        found_text = "none (file too short)" if found is None else f"0x{found:08x}"
        raise DataError(f"bad magic number in {path}: {found_text}, expected 0x{magic:08x}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"truncated IDX file {path}: {len(raw)} bytes, shorter than its header")
    dims = tuple(int(d) for d in np.frombuffer(raw[4:header], ">u4"))
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise DataError(
            f"truncated or corrupt IDX file {path}: its header says shape {dims} "
            f"({expected} bytes), the file has {len(raw)} bytes"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array of 1 or 3 dims as a gzipped IDX file, byte-for-byte reproducibly."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = _IMAGES_MAGIC if array.ndim == 3 else _LABELS_MAGIC
    header = magic.to_bytes(4, "big") + np.asarray(array.shape, ">u4").tobytes()
    # No name and no time in the gzip header: the bytes depend on the contents alone.
    with open(path, "wb") as raw, gzip.GzipFile("", "wb", fileobj=raw, mtime=0) as f:
        f.write(header + array.tobytes())


def read_idx_split(folder: Path, split: str) -> dict[str, np.ndarray]:
    """The `split` ("train" or "test") of the IDX files in `folder`, checked for consistency."""
    images_name, labels_name = IDX_FILES[split]
    images = read_idx(folder / images_name, _IMAGES_MAGIC)
    labels = read_idx(folder / labels_name, _LABELS_MAGIC)
    if images.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{folder / images_name}: images are {images.shape[1:]}, expected 28x28")
    if len(images) != len(labels):
        raise DataError(
            f"{folder}: {len(images)} images but {len(labels)} labels in the {split} split"
        )
    if labels.size and labels.max() >= NUM_CLASSES:
        raise DataError(f"{folder / labels_name}: label {labels.max()} is not in 0..9")
    return {"image": images[..., None], "label": labels.astype(np.int32)}


def _from_idx(folder: Path, source: str) -> Splits:
    if not folder.is_dir():
        raise DataError(f"IDX folder {folder} does not exist")
    train, test = (read_idx_split(folder, s) for s in SPLITS)
    return Splits(train, test, source)


def cut_sample(src_dir: str | Path, out_dir: str | Path = SAMPLE_DIR) -> None:
    """Write the bundled sample: every 12th training image (5,000), every 10th test image (1,000).

    Taking every k-th image is deterministic without any RNG, and covers the whole file,
    including both halves of the test set (whose writers differ).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, every in (("train", 12), ("test", 10)):
        arrays = read_idx_split(Path(src_dir), split)
        for filename, key in zip(IDX_FILES[split], ("image", "label"), strict=True):
            write_idx(
                out_dir / filename,
                arrays[key][::every].squeeze(-1) if key == "image" else arrays[key][::every],
            )


# --------------------------------------------------------------------------- TFDS


def _from_tfds(name: str, tfds_dir: str | Path | None) -> Splits:
    """Read a prepared TFDS copy through `tfds.data_source`, once per split, caching as .npz."""
    import tensorflow_datasets as tfds

    where = _tfds_root(tfds_dir)
    if not (where / name).is_dir():
        raise DataError(f"TFDS copy at {where / name} (no such folder)")
    splits = {}
    for split in SPLITS:
        absl_logger = logging.getLogger("absl")  # TFDS warns there about half-prepared folders
        level = absl_logger.level
        absl_logger.setLevel(logging.ERROR)
        try:
            ds = tfds.data_source(name, split=split, data_dir=tfds_dir, download=False)
        except Exception as e:  # TFDS raises several types for "not prepared" (or not array_record)
            raise DataError(
                f"TFDS copy at {where / name} (not prepared in the array_record "
                f"format: {type(e).__name__})"
            ) from None
        finally:
            absl_logger.setLevel(level)
        cache = Path(ds.dataset_info.data_dir) / f"dl_jax-{split}.npz"
        if cache.exists():
            with np.load(cache) as f:
                splits[split] = {k: f[k] for k in f.files}
            continue
        # Index one by one: `__getitems__` is broken under tfds.testing.mock_data.
        examples = [ds[i] for i in range(len(ds))]
        splits[split] = {
            "image": np.stack([ex["image"] for ex in examples]).astype(np.uint8),
            "label": np.asarray([ex["label"] for ex in examples], np.int32),
        }
        _save_npz(cache, splits[split])
    return Splits(splits["train"], splits["test"], f"TFDS {name} in {where}")


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    try:
        with replacing(path) as tmp:
            np.savez(tmp, **arrays)
    except OSError:  # a read-only data dir only costs the cache
        pass


def _tfds_root(tfds_dir: str | Path | None) -> Path:
    """`tfds_dir`, or TFDS's own (`TFDS_DATA_DIR`, else ~/tensorflow_datasets); a local or
    mounted folder, since reading a bucket's URL would need TensorFlow's file systems."""
    import tensorflow_datasets as tfds

    where = str(tfds_dir or tfds.core.constants.DATA_DIR)
    if "://" in where:
        raise DataError(
            f"TFDS data at {where}: URLs are not read directly; mount the bucket (gcsfuse) and "
            "give its path as --data.tfds_dir=PATH or TFDS_DATA_DIR"
        )
    return Path(where)


def _prepare_tfds(name: str, tfds_dir: str | Path | None, idx_dir: Path | None) -> None:
    """Prepare the TFDS copy of `name` without TensorFlow, from `idx_dir` or by downloading."""
    import tensorflow_datasets as tfds

    _tfds_root(tfds_dir)
    builder = _builder_class(name)(idx_dir=idx_dir, data_dir=tfds_dir, file_format="array_record")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False)
    )


def _builder_class(name: str):
    """The stock TFDS builder, changed to read IDX files with numpy and encode PNG with PIL.

    The stock builders need TensorFlow to prepare (tf.io.gfile, tf.image). This one writes the
    same `<name>/3.0.1` dataset, keeps the stock name and example keys, and still lets TFDS
    download the files and check them against the sha256 that TFDS registers for them.
    """
    from PIL import Image

    stock = _stock_builder(name)

    class IdxBuilder(stock, skip_registration=True):
        name = stock.name
        url_infos = stock.url_infos  # the registered checksums live with the stock builder

        def __init__(self, *, idx_dir: Path | None, **kwargs):
            self._idx_dir = idx_dir
            super().__init__(**kwargs)

        def _split_generators(self, dl_manager):
            files = {f"{split}/{i}": f for split in SPLITS for i, f in enumerate(IDX_FILES[split])}
            if self._idx_dir is None:
                urls = {k: urllib.parse.urljoin(self.URL, f) for k, f in files.items()}
                paths = {k: Path(p) for k, p in dl_manager.download(urls).items()}
            else:
                paths = {k: self._idx_dir / f for k, f in files.items()}
            return {s: self._generate_examples(paths[f"{s}/0"], paths[f"{s}/1"]) for s in SPLITS}

        def _generate_examples(self, images_path, labels_path):
            images = read_idx(images_path, _IMAGES_MAGIC)
            labels = read_idx(labels_path, _LABELS_MAGIC)
            for index, (image, label) in enumerate(zip(images, labels, strict=True)):
                png = io.BytesIO()
                Image.fromarray(image).save(png, format="PNG")
                yield index, {"image": png.getvalue(), "label": int(label)}

    return IdxBuilder


def _stock_builder(name: str):
    """TFDS's own builder class for `name`."""
    from tensorflow_datasets.image_classification import mnist as tfds_mnist

    return {"mnist": tfds_mnist.MNIST, "fashion_mnist": tfds_mnist.FashionMNIST}[name]


def _reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to `url`'s host opens within `timeout` seconds.

    TFDS's own downloader retries an unreachable host for minutes; this fails fast instead.
    The probe runs in a thread because name resolution has no timeout of its own.
    """
    parts = urllib.parse.urlparse(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    ok = []

    def probe():
        try:
            socket.create_connection((parts.hostname, port), timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(ok)
