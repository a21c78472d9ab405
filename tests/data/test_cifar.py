"""CIFAR-10 loader: the release's format, the lookup order, and hostile files refused."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainlab.cli import main
from trainlab.data import cifar, image_tensor, load_images
from trainlab.data.cifar import ARCHIVE, FOLDER, META, TEST_BATCH, TRAIN_BATCHES
from trainlab.errors import DataError

PER_BATCH = 4
N_TEST = 6


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def _meta(**kw) -> dict:
    return {"label_names": list(cifar.CLASS_NAMES), "num_cases_per_batch": PER_BATCH, "num_vis": 3072, **kw}


def _members(**replace: bytes) -> dict[str, bytes]:
    """Batch bytes of a tiny release: 5 x 4 train images, 6 test images, labels i % 10."""
    members = {name: cifar.batch_bytes(_images(PER_BATCH, i), [(i * PER_BATCH + j) % 10 for j in range(PER_BATCH)])
               for i, name in enumerate(TRAIN_BATCHES)}
    members[TEST_BATCH] = cifar.batch_bytes(_images(N_TEST, 99), [j % 10 for j in range(N_TEST)])
    members.update(replace)
    return members


def _archive(folder: Path, meta: dict | None = None, **replace: bytes) -> Path:
    return cifar.write_archive(folder / ARCHIVE, _members(**replace), meta=meta or _meta())


def _extracted(folder: Path, meta: dict | None = None, **replace: bytes) -> Path:
    target = folder / FOLDER
    target.mkdir(parents=True)
    (target / META).write_bytes(pickle.dumps(meta or _meta(), protocol=2))
    for name, payload in _members(**replace).items():
        (target / name).write_bytes(payload)
    return target


@pytest.fixture
def no_mirror(isolated, monkeypatch):
    monkeypatch.setattr(cifar, "MIRRORS", ("http://127.0.0.1:9/",))  # refused at once, never the internet
    return isolated


# --------------------------------------------------------------------------- format
def test_rows_are_red_then_green_then_blue_planes(tmp_path, no_mirror):
    """A batch row is 1024 R, 1024 G, 1024 B values, row-major: built here by hand, not by batch_bytes."""
    rng = np.random.default_rng(1)
    planes = rng.integers(0, 256, size=(2, 3, 32, 32), dtype=np.uint8)
    data = planes.reshape(2, 3072)
    raw = pickle.dumps({"data": data, "labels": [3, 7], "batch_label": "x", "filenames": ["a", "b"]}, protocol=2)
    (tmp_path / "b").write_bytes(raw)
    images, labels = cifar.read_batch(tmp_path / "b")
    assert images.shape == (2, 32, 32, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[1, :, :, 2], planes[1, 2])
    np.testing.assert_array_equal(images[0, 5, :, 0], planes[0, 0, 5])
    assert labels.tolist() == [3, 7] and labels.dtype == np.int64


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_every_pickle_protocol_of_numpy_arrays_loads(tmp_path, protocol):
    images = _images(3, 0)
    (tmp_path / "b").write_bytes(cifar.batch_bytes(images, [0, 1, 2], protocol=protocol))
    got, labels = cifar.read_batch(tmp_path / "b")
    np.testing.assert_array_equal(got, images)


def test_tarball_in_data_dir_loads_without_writing_there(tmp_path, no_mirror):
    archive = _archive(tmp_path / "user")
    before = sorted(os.listdir(tmp_path / "user"))
    ds = load_images("cifar10", tmp_path / "user")
    assert sorted(os.listdir(tmp_path / "user")) == before
    assert ds.train_images.shape == (5 * PER_BATCH, 32, 32, 3) and ds.test_images.shape == (N_TEST, 32, 32, 3)
    assert ds.image_shape == (32, 32) and ds.channels == 3 and ds.num_classes == 10
    np.testing.assert_array_equal(ds.train_images[PER_BATCH:2 * PER_BATCH], _images(PER_BATCH, 1))
    assert ds.train_labels.tolist() == [i % 10 for i in range(5 * PER_BATCH)]
    assert ds.class_names[0] == "airplane" and str(archive) in ds.source
    assert not (no_mirror.cache / "cifar10").exists()


@pytest.mark.parametrize("where", ["folder", "parent", "name_subfolder"])
def test_extracted_folder_in_data_dir(tmp_path, no_mirror, where):
    root = tmp_path / ("user/cifar10" if where == "name_subfolder" else "user")
    folder = _extracted(root)
    ds = load_images("cifar10", folder if where == "folder" else tmp_path / "user")
    assert len(ds.train_labels) == 5 * PER_BATCH and "data_dir" in ds.source


def test_cache_from_env_then_home(tmp_path, no_mirror, monkeypatch):
    _extracted(no_mirror.cache / "cifar10")
    assert "(cache)" in load_images("cifar10").source
    env = tmp_path / "env"
    _extracted(env / "cifar10")
    monkeypatch.setenv("TRAINLAB_DATA", str(env))
    assert str(env) in load_images("cifar10").source


def test_tarball_put_in_cache_is_extracted_once(no_mirror):
    _archive(no_mirror.cache / "cifar10")
    first = load_images("cifar10")
    assert "extracted" in first.source and (no_mirror.cache / "cifar10" / FOLDER / TEST_BATCH).is_file()
    assert "(cache)" in load_images("cifar10").source


def test_download_verifies_extracts_and_drops_the_tarball(tmp_path, no_mirror, http_mirror):
    root, url = http_mirror
    archive = _archive(root)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    ds = load_images("cifar10", mirrors=[url], sha256={ARCHIVE: digest})
    assert "downloaded" in ds.source and len(ds.test_labels) == N_TEST
    cached = no_mirror.cache / "cifar10"
    assert sorted(os.listdir(cached)) == [FOLDER]


def test_mismatching_download_is_deleted(no_mirror, http_mirror):
    root, url = http_mirror
    _archive(root)
    with pytest.raises(DataError, match="checksum mismatch"):
        load_images("cifar10", mirrors=[url])  # the real release's SHA-256 cannot match a test file
    cached = no_mirror.cache / "cifar10"
    assert not cached.exists() or os.listdir(cached) == []


def test_nothing_anywhere_says_what_to_put_where(no_mirror):
    with pytest.raises(DataError) as info:
        load_images("cifar10")
    message = str(info.value)
    assert ARCHIVE in message and "data_dir=DIR" in message and "TRAINLAB_DATA" in message
    assert "\n" not in message


def test_fetch_copies_data_dir_into_cache(tmp_path, no_mirror):
    _archive(tmp_path / "user")
    folder = cifar.fetch_cifar10(tmp_path / "user")
    assert folder == no_mirror.cache / "cifar10" / FOLDER and (folder / TRAIN_BATCHES[4]).is_file()
    assert "(cache)" in load_images("cifar10").source


def test_a_cached_folder_that_reads_is_never_replaced_one_that_does_not_is(tmp_path, no_mirror):
    """Another process may be reading a good cache folder: fetching a second copy keeps it, same
    files (inodes) and all. A partial folder reads for no one and gives way to the good copy."""
    cached = _extracted(no_mirror.cache / "cifar10")
    inodes = {p.name: p.stat().st_ino for p in cached.iterdir()}
    _archive(tmp_path / "other", meta=_meta(num_vis=1))  # a different, good copy
    assert cifar.fetch_cifar10(tmp_path / "other") == cached
    assert {p.name: p.stat().st_ino for p in cached.iterdir()} == inodes
    (cached / TRAIN_BATCHES[2]).unlink()
    assert cifar.fetch_cifar10(tmp_path / "other") == cached
    assert load_images("cifar10").train_images.shape == (5 * PER_BATCH, 32, 32, 3)
    assert cifar.read_meta(cached / META)["num_vis"] == 1  # the copy from "other"
    assert sorted(os.listdir(cached.parent)) == [FOLDER]  # no staging or set-aside folder left


def test_cli_data_info_counts_classes(tmp_path, no_mirror, capsys):
    _archive(tmp_path / "user")
    with pytest.raises(SystemExit) as info:
        main(["data", "info", "cifar10", f"data_dir={tmp_path / 'user'}"])
    out = capsys.readouterr().out
    assert info.value.code in (0, None)
    assert "32x32x3" in out and "airplane" in out and "truck" in out


# --------------------------------------------------------------------------- hostile and broken files
class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Evals:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


@pytest.mark.parametrize("payload", ["system_as_batch", "system_inside_dict", "eval", "object_array"])
def test_pickles_that_would_run_code_are_refused(tmp_path, no_mirror, payload):
    marker = tmp_path / "pwned"
    bad = {
        "system_as_batch": lambda: pickle.dumps(_RunsCode(marker), protocol=2),
        "system_inside_dict": lambda: pickle.dumps({"data": _RunsCode(marker), "labels": [0]}, protocol=4),
        "eval": lambda: pickle.dumps({"data": _Evals(), "labels": [0]}, protocol=2),
        "object_array": lambda: pickle.dumps({"data": np.array([1, "x"], dtype=object), "labels": [0]}, protocol=2),
    }[payload]()
    _archive(tmp_path / "user", **{TRAIN_BATCHES[2]: bad})
    with pytest.raises(DataError) as info:
        load_images("cifar10", tmp_path / "user")
    assert TRAIN_BATCHES[2] in str(info.value)
    assert "refused" in str(info.value) or "objects" in str(info.value)
    assert not marker.exists()


def _tar_with(path: Path, member: tarfile.TarInfo, payload: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in _members().items():
            info = tarfile.TarInfo(f"{FOLDER}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        meta = pickle.dumps(_meta(), protocol=2)
        info = tarfile.TarInfo(f"{FOLDER}/{META}")
        info.size = len(meta)
        tar.addfile(info, io.BytesIO(meta))
        if member.isfile():
            member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload))
        else:
            tar.addfile(member)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize("member", [
    _member(f"{FOLDER}/../../escaped"),
    _member("/tmp/trainlab-absolute-escape"),
    _member("elsewhere.txt"),
    _member(f"{FOLDER}/link", tarfile.SYMTYPE, "/etc/passwd"),
    _member(f"{FOLDER}/uplink", tarfile.SYMTYPE, "../../../outside"),
    _member(f"{FOLDER}/dev", tarfile.CHRTYPE),
], ids=["dotdot", "absolute", "outside_folder", "abs_symlink", "up_symlink", "device"])
def test_tar_members_leaving_the_folder_are_refused(tmp_path, no_mirror, member):
    archive = _tar_with(tmp_path / "user" / ARCHIVE, member)
    before = set(tmp_path.rglob("*"))
    with pytest.raises(DataError, match="refused member"):
        load_images("cifar10", tmp_path / "user")
    assert set(tmp_path.rglob("*")) == before
    assert not Path("/tmp/trainlab-absolute-escape").exists()
    assert archive.is_file()


def _raw(data, labels) -> bytes:
    return pickle.dumps({"data": data, "labels": labels}, protocol=2)


@pytest.mark.parametrize("replace, fragment", [
    ({"data_batch_3": _raw(np.zeros((4, 1024), np.uint8), [0] * 4)}, "uint8 array of shape (N, 3072)"),
    ({"data_batch_3": _raw(np.zeros((4, 3072), np.float32), [0] * 4)}, "uint8 array of shape (N, 3072)"),
    ({"data_batch_3": _raw(np.zeros((4, 3072), np.uint8), [0] * 3)}, "holds 4 images but 'labels' holds 3"),
    ({"data_batch_3": _raw(np.zeros((4, 3072), np.uint8), [0, 1, 2, 10])}, "labels must lie in 0..9"),
    ({"data_batch_3": _raw(np.zeros((4, 3072), np.uint8), ["a"] * 4)}, "list of ints"),
    ({"data_batch_3": _raw(np.zeros((5, 3072), np.uint8), [0] * 5)}, "expected 4"),
    ({"data_batch_3": pickle.dumps({"pixels": 1}, protocol=2)}, "keys 'data' and 'labels'"),
    ({"data_batch_3": b"not a pickle at all"}, "not a CIFAR-10 batch pickle"),
    ({"data_batch_3": pickle.dumps([1, 2, 3])[:-4]}, "not a CIFAR-10 batch pickle"),
])
def test_wrong_keys_shapes_dtypes_counts_name_the_file(tmp_path, no_mirror, replace, fragment):
    _archive(tmp_path / "user", **replace)
    with pytest.raises(DataError) as info:
        load_images("cifar10", tmp_path / "user")
    message = str(info.value)
    assert "data_batch_3" in message and fragment in message and "\n" not in message


def test_wrong_meta_and_missing_batch(tmp_path, no_mirror):
    folder = _extracted(tmp_path / "a", meta=_meta(label_names=["x"] * 9))
    with pytest.raises(DataError, match=r"batches.meta.*list of 10 strings"):
        load_images("cifar10", folder)
    folder = _extracted(tmp_path / "b")
    (folder / TEST_BATCH).unlink()
    with pytest.raises(DataError, match="lacks test_batch"):
        load_images("cifar10", folder)


def test_broken_batch_via_cli_is_one_line_exit_2(tmp_path, no_mirror, capsys):
    _archive(tmp_path / "user", data_batch_1=_raw(np.zeros((4, 3072), np.int16), [0] * 4))
    with pytest.raises(SystemExit) as info:
        main(["data", "info", "cifar10", f"data_dir={tmp_path / 'user'}"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and len(err.splitlines()) == 1 and "data_batch_1" in err


# --------------------------------------------------------------------------- device layout
def test_image_tensor_is_uint8_nchw():
    colour = _images(2, 0)
    t = image_tensor(colour, "cpu")
    assert t.shape == (2, 3, 32, 32) and t.dtype == torch.uint8
    assert torch.equal(t[1, 2], torch.from_numpy(colour[1, :, :, 2]))
    gray = np.zeros((5, 28, 28), np.uint8)
    assert image_tensor(gray, "cpu").shape == (5, 1, 28, 28)


# --------------------------------------------------------------------------- cache hygiene, one-line errors
def _one_line_data_error(data_dir: Path) -> str:
    with pytest.raises(DataError) as info:
        load_images("cifar10", data_dir)
    message = str(info.value)
    assert "\n" not in message and "trainlab-cifar-" not in message  # never the temporary extraction
    return message


def test_downloaded_extracted_and_copied_caches_follow_the_umask(tmp_path, no_mirror, http_mirror, umask):
    root, url = http_mirror
    archive = _archive(root)
    load_images("cifar10", mirrors=[url], sha256={ARCHIVE: hashlib.sha256(archive.read_bytes()).hexdigest()})
    umask(no_mirror.cache / "cifar10")
    mine = _extracted(tmp_path / "mine")
    for path in [mine, *mine.iterdir()]:
        path.chmod(0o750 if path.is_dir() else 0o640)  # the user's own modes are not the cache's
    no_mirror.cache.rename(tmp_path / "downloaded")
    cifar.fetch_cifar10(mine)
    umask(no_mirror.cache / "cifar10")


@pytest.mark.parametrize("damage", ["random bytes", "truncated", "empty"])
def test_a_damaged_tarball_is_one_line_naming_it(tmp_path, no_mirror, damage, capsys):
    archive = _archive(tmp_path / "user")
    payload = archive.read_bytes()
    archive.write_bytes({"random bytes": np.random.default_rng(0).bytes(2000), "truncated": payload[:len(payload) // 2],
                         "empty": b""}[damage])
    assert f"{archive}: not a" in _one_line_data_error(tmp_path / "user")
    with pytest.raises(SystemExit) as info:
        main(["data", "fetch", "cifar10", f"data_dir={tmp_path / 'user'}"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and len(err.splitlines()) == 1 and str(archive) in err
    assert not (no_mirror.cache / "cifar10").exists()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0), flip=st.integers(min_value=0), bits=st.integers(1, 255))
def test_any_cut_or_flipped_byte_loads_right_or_is_one_line(tmp_path, no_mirror, cut, flip, bits):
    folder = tmp_path / f"user-{cut}-{flip}-{bits}"
    archive = _archive(folder)
    good = load_images("cifar10", folder)
    payload = bytearray(archive.read_bytes())
    payload[flip % len(payload)] ^= bits
    archive.write_bytes(bytes(payload[:len(payload) - cut % len(payload)]))
    try:
        damaged = load_images("cifar10", folder)
    except DataError as exc:
        assert "\n" not in str(exc) and str(archive) in str(exc) and "trainlab-cifar-" not in str(exc)
    else:  # gzip's trailer is not always read: then every pixel must still be the release's
        assert np.array_equal(damaged.train_images, good.train_images)
        assert np.array_equal(damaged.test_labels, good.test_labels)


def test_batch_errors_in_a_tarball_name_the_tarball_and_its_member(tmp_path, no_mirror):
    archive = _archive(tmp_path / "user", data_batch_2=b"garbage")
    message = _one_line_data_error(tmp_path / "user")
    assert message.startswith(f"{archive} (member {FOLDER}/data_batch_2): not a CIFAR-10 batch pickle")
    archive = cifar.write_archive(tmp_path / "meta" / ARCHIVE, _members(), meta={"label_names": ["x"]})
    assert _one_line_data_error(tmp_path / "meta").startswith(f"{archive} (member {FOLDER}/{META}):")


def test_a_tarball_lacking_a_batch_names_the_tarball(tmp_path, no_mirror):
    members = _members()
    del members[TRAIN_BATCHES[3]]
    archive = cifar.write_archive(tmp_path / "user" / ARCHIVE, members, meta=_meta())
    assert _one_line_data_error(tmp_path / "user") == (
        f"{archive} lacks members {TRAIN_BATCHES[3]}; it should be the extracted {FOLDER}/ of {ARCHIVE}")


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("batch", [TRAIN_BATCHES[0], TEST_BATCH])
def test_an_empty_batch_is_one_line_naming_it(tmp_path, no_mirror, protocol, batch):
    empty = cifar.batch_bytes(np.zeros((0, 32, 32, 3), np.uint8), [], protocol=protocol)
    archive = cifar.write_archive(tmp_path / "user" / ARCHIVE, _members(**{batch: empty}), meta=_meta(num_cases_per_batch=None))
    assert _one_line_data_error(tmp_path / "user") == (
        f"{archive} (member {FOLDER}/{batch}): holds 0 images; a CIFAR-10 batch holds 10000, re-download {ARCHIVE}")


def test_bytes_with_an_argument_is_refused(tmp_path, no_mirror):
    # bytes() is allowed for protocol 2's b""; bytes(n) would allocate n bytes on the pickle's say-so
    hostile = b"\x80\x02c__builtin__\nbytes\nq\x00J\x00\x00\x00\x40\x85q\x01Rq\x02."  # bytes(2**30)
    assert pickle.loads(hostile) is not None  # the oracle: a real unpickler would build it
    archive = _archive(tmp_path / "user", data_batch_1=hostile)
    assert _one_line_data_error(tmp_path / "user") == (
        f"{archive} (member {FOLDER}/data_batch_1): not a CIFAR-10 batch pickle or not safe to load (bytes(1073741824,))")
