"""Where IDX datasets are found: data_dir > $TRAINLAB_DATA/~/.cache > Debian copy > download > error."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from trainlab.cli import main
from trainlab.data import fetch, load_images, write_idx
from trainlab.data.sources import (FILE_NAMES, HIDE_SYSTEM_DATA, IDX_FILES, SOURCES, _dpkg_dir, cache_root,
                                   file_sha256, locate)
from trainlab.errors import ConfigError, DataError


def _sha256s(folder):
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in FILE_NAMES}


def test_data_dir_beats_env_beats_debian(isolated, make_dataset, monkeypatch):
    given = make_dataset(isolated.tmp / "given", seed=1)
    env_root = isolated.tmp / "env"
    in_env = make_dataset(env_root / "mnist", seed=2)
    in_debian = make_dataset(isolated.debian / "mnist", seed=3)
    monkeypatch.setenv("TRAINLAB_DATA", str(env_root))

    ds = load_images("mnist", isolated.tmp / "given")
    np.testing.assert_array_equal(ds.train_images, given["train_images"])
    assert "data_dir" in ds.source

    ds = load_images("mnist")
    np.testing.assert_array_equal(ds.train_images, in_env["train_images"])
    assert str(env_root / "mnist") in ds.source

    monkeypatch.delenv("TRAINLAB_DATA")
    ds = load_images("mnist")
    np.testing.assert_array_equal(ds.test_images, in_debian["test_images"])
    assert str(isolated.debian / "mnist") in ds.source


def test_home_cache_used_without_env_and_beats_debian(isolated, make_dataset):
    in_home = make_dataset(isolated.cache / "fashion-mnist", seed=4)
    make_dataset(isolated.debian / "fashion-mnist", seed=5)
    assert cache_root() == isolated.cache
    ds = load_images("fashion-mnist")
    np.testing.assert_array_equal(ds.train_images, in_home["train_images"])
    assert ds.class_names[0] == "T-shirt/top" and len(ds.class_names) == 10


def test_raw_files_accepted(isolated, make_dataset):
    arrays = make_dataset(isolated.tmp / "raw", gz=False)
    ds = load_images("mnist", isolated.tmp / "raw")
    np.testing.assert_array_equal(ds.test_images, arrays["test_images"])
    assert ds.train_labels.dtype == np.int64 and ds.train_images.dtype == np.uint8


def test_data_dir_parent_with_name_subfolder(isolated, make_dataset):
    make_dataset(isolated.tmp / "all" / "mnist")
    assert locate("mnist", isolated.tmp / "all").folder == isolated.tmp / "all" / "mnist"


def test_incomplete_data_dir_lists_missing(isolated, make_dataset):
    folder = isolated.tmp / "partial"
    make_dataset(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    (folder / "train-images-idx3-ubyte.gz").unlink()
    make_dataset(isolated.debian / "mnist")  # must NOT be used when data_dir is explicit
    with pytest.raises(DataError) as info:
        load_images("mnist", folder)
    msg = str(info.value)
    assert "t10k-labels-idx1-ubyte.gz" in msg and "train-images-idx3-ubyte.gz" in msg
    assert "t10k-images" not in msg
    with pytest.raises(DataError, match="not a folder"):
        load_images("mnist", isolated.tmp / "nowhere")


def test_count_mismatch_names_both_files(isolated, make_dataset):
    folder = isolated.tmp / "bad"
    make_dataset(folder, n_test=6)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(5, dtype=np.uint8))
    with pytest.raises(DataError) as info:
        load_images("mnist", folder)
    msg = str(info.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg and "6" in msg and "5" in msg


def test_corrupt_file_in_dataset_names_it(isolated, make_dataset):
    folder = isolated.tmp / "corrupt"
    make_dataset(folder)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        load_images("mnist", folder)


def test_missing_everything_lists_four_names_and_places(isolated):
    for download in (False, True):  # True: the (refusing) mirrors are tried first
        with pytest.raises(DataError) as info:
            load_images("mnist", download=download)
        msg = str(info.value)
        assert all(name in msg for name in FILE_NAMES)
        assert "data_dir=" in msg and "TRAINLAB_DATA/mnist" in msg and "trainlab data fetch mnist" in msg
        assert "\n" not in msg
    # nothing half-downloaded left behind (the cache's lock file stays: see sources.cache_lock)
    assert [p.name for p in isolated.cache.rglob("*") if p.is_file()] == [".mnist.lock"]


def _serve(mirror_root, make_dataset):
    make_dataset(mirror_root, seed=7)
    return _sha256s(mirror_root)


def test_download_lands_verified_files_in_cache(isolated, make_dataset, http_mirror):
    root, url = http_mirror
    sums = _serve(root, make_dataset)
    ds = load_images("mnist", mirrors=["http://127.0.0.1:9/", url], sha256=sums)  # first mirror refuses
    assert "downloaded" in ds.source
    target = isolated.cache / "mnist"
    for name in FILE_NAMES:
        assert (target / name).read_bytes() == (root / name).read_bytes()
    assert sorted(p.name for p in target.iterdir()) == sorted(FILE_NAMES)  # no temp files
    # second call: found in the cache, no mirror needed
    assert "cache" in load_images("mnist", mirrors=[]).source


def test_bad_checksum_leaves_nothing_and_raises(isolated, make_dataset, http_mirror):
    root, url = http_mirror
    sums = _serve(root, make_dataset)
    sums[FILE_NAMES[0]] = "0" * 64
    with pytest.raises(DataError) as info:
        load_images("mnist", mirrors=[url], sha256=sums)
    assert "checksum" in str(info.value) and FILE_NAMES[0] in str(info.value)
    target = isolated.cache / "mnist"
    assert not target.exists() or not any(target.iterdir())


def test_missing_file_on_mirror(isolated, make_dataset, http_mirror):
    root, url = http_mirror
    sums = _serve(root, make_dataset)
    (root / FILE_NAMES[3]).unlink()
    with pytest.raises(DataError, match=FILE_NAMES[3]):
        fetch("mnist", mirrors=[url], sha256=sums)
    # the three verified files stay (a retry resumes); no partial file for the fourth
    assert sorted(p.name for p in (isolated.cache / "mnist").iterdir()) == sorted(FILE_NAMES[:3])


def test_fetch_copies_data_dir_into_cache(isolated, make_dataset):
    make_dataset(isolated.tmp / "mine", seed=9)
    target = fetch("mnist", isolated.tmp / "mine")
    assert target == isolated.cache / "mnist"
    assert _sha256s(target) == _sha256s(isolated.tmp / "mine")
    assert fetch("mnist") == target  # already there: nothing to do


def test_fetch_checks_system_copy_content(isolated, make_dataset):
    make_dataset(isolated.debian / "fashion-mnist")
    with pytest.raises(DataError, match="content SHA-256"):  # tiny fake files are not the real release
        fetch("fashion-mnist")
    assert not (isolated.cache / "fashion-mnist").exists()


def test_unknown_dataset_lists_known(isolated):
    with pytest.raises(ConfigError) as info:
        load_images("cifar-11")
    assert "mnist" in str(info.value) and "digits" in str(info.value) and "fashion-mnist" in str(info.value)


DEBIAN_FASHION = SOURCES["fashion-mnist"].system_dirs[0]


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="no dpkg")
def test_dpkg_listing_finds_debian_copy():
    found = _dpkg_dir("dataset-fashion-mnist")
    if found is None:
        pytest.skip("dataset-fashion-mnist not installed")
    assert found == DEBIAN_FASHION
    assert _dpkg_dir("no-such-package-trainlab") is None


@pytest.mark.skipif(not (DEBIAN_FASHION / FILE_NAMES[3]).is_file(), reason="dataset-fashion-mnist not installed")
def test_debian_copy_matches_published_content_checksums():
    # Labels only (fast): the decompressed bytes must equal the published release.
    expected = SOURCES["fashion-mnist"].content_sha256
    for stem in (IDX_FILES["train_labels"], IDX_FILES["test_labels"]):
        assert file_sha256(DEBIAN_FASHION / f"{stem}.gz", decompressed=True) == expected[stem]


# --------------------------------------------------------------------------- cache hygiene
def test_downloaded_and_copied_cache_files_follow_the_umask(isolated, make_dataset, http_mirror, umask):
    root, url = http_mirror
    sums = _serve(root, make_dataset)
    load_images("mnist", mirrors=[url], sha256=sums)
    umask(isolated.cache / "mnist")
    mine = isolated.tmp / "mine"
    make_dataset(mine, seed=9)
    for path in mine.iterdir():
        path.chmod(0o640)  # the user's own modes are not the cache's
    isolated.cache.rename(isolated.tmp / "downloaded")  # so that fetch copies rather than finds
    fetch("mnist", mine)
    umask(isolated.cache)


@pytest.mark.parametrize("where", ["file", "below a file"])
def test_trainlab_data_that_is_not_a_folder_is_one_line_exit_2(isolated, monkeypatch, capsys, where):
    blocker = isolated.tmp / "not-a-folder"
    blocker.write_text("x")
    env = blocker if where == "file" else blocker / "data"
    monkeypatch.setenv("TRAINLAB_DATA", str(env))
    for name in ("mnist", "cifar10"):
        for command in (["data", "info", name], ["data", "fetch", name]):
            with pytest.raises(SystemExit) as info:
                main(command)
            err = capsys.readouterr().err.strip()
            assert info.value.code == 2 and len(err.splitlines()) == 1, err
            assert f"TRAINLAB_DATA={env} is not a folder ({blocker} is a file)" in err
    assert blocker.read_text() == "x"


def test_a_file_in_place_of_one_datasets_cache_folder_is_named(isolated, monkeypatch):
    monkeypatch.setenv("TRAINLAB_DATA", str(isolated.tmp / "cache"))
    (isolated.tmp / "cache").mkdir()
    (isolated.tmp / "cache" / "mnist").write_text("x")
    with pytest.raises(DataError, match=r"the mnist cache folder .*/cache/mnist is not a folder"):
        load_images("mnist")


def test_hiding_system_data_hides_the_system_copy_and_the_home_cache(isolated, make_dataset, monkeypatch):
    make_dataset(isolated.debian / "fashion-mnist")
    make_dataset(isolated.cache / "mnist")
    assert "system copy" in load_images("fashion-mnist", download=False).source  # the oracle: visible unhidden
    assert "(cache)" in load_images("mnist", download=False).source
    monkeypatch.setenv(HIDE_SYSTEM_DATA, "1")
    for name in ("fashion-mnist", "mnist", "cifar10"):
        with pytest.raises(DataError, match=f"{HIDE_SYSTEM_DATA}=1 hides ~/.cache/trainlab; set TRAINLAB_DATA=DIR"):
            load_images(name, download=False)
    monkeypatch.setenv("TRAINLAB_DATA", str(isolated.tmp / "given"))
    with pytest.raises(DataError, match="fashion-mnist not found"):
        load_images("fashion-mnist", download=False)
    make_dataset(isolated.tmp / "given" / "fashion-mnist", seed=3)
    assert str(isolated.tmp / "given") in load_images("fashion-mnist", download=False).source
    assert load_images("digits").num_classes == 10  # bundled data needs no lookup


def test_an_empty_idx_split_is_one_line_naming_the_file(isolated, make_dataset, capsys):
    folder = isolated.tmp / "empty"
    make_dataset(folder, n_train=0)
    with pytest.raises(SystemExit) as info:
        main(["data", "info", "mnist", f"data_dir={folder}"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and len(err.splitlines()) == 1
    assert f"{folder / FILE_NAMES[0]} holds 0 images" in err
