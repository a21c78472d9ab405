import errno
import os
import stat
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trainlab.config import BaseConfig
from trainlab.files import append_jsonl, atomic_write, jsonable, read_jsonl
from trainlab.runs import Run


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it after."""
    saved = os.umask(0o022)
    os.umask(saved)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(saved)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@dataclass
class Cfg(BaseConfig):
    x: int = 1
    """x"""


def test_atomic_write_gives_the_umask_permissions_not_mkstemps(tmp_path, umask):
    umask(0o022)
    atomic_write(tmp_path / "a.txt", "one")
    assert mode(tmp_path / "a.txt") == 0o644
    umask(0o027)
    atomic_write(tmp_path / "a.txt", "two")  # replacing a file applies the umask of now
    assert mode(tmp_path / "a.txt") == 0o640
    append_jsonl(tmp_path / "m.jsonl", {"a": 1})
    assert mode(tmp_path / "m.jsonl") == 0o640


def test_every_file_of_a_run_folder_is_readable_by_others(tmp_path, umask):
    umask(0o022)
    run = Run.create(tmp_path, "demo", Cfg(), "cpu")
    run.log(step=1)
    run.table("t", [{"a": 1}])
    run.text("note", "**hi**")
    run.summary(acc=1.0)
    run.finish("done", 0.1)
    files = [p for p in run.path.rglob("*") if p.is_file()]
    assert len(files) >= 9
    assert {p.name: oct(mode(p)) for p in files if mode(p) != 0o644} == {}


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write(tmp_path / "a.txt", "one")
    atomic_write(tmp_path / "a.txt", b"two")
    assert (tmp_path / "a.txt").read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_read_jsonl_ignores_torn_last_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": ')
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    assert read_jsonl(tmp_path / "missing.jsonl") == []


def test_jsonable_turns_arrays_and_nan_into_json_types(tmp_path):
    value = {"x": np.float32(0.5), "v": np.arange(3), "t": (1, float("nan")), "p": tmp_path}
    assert jsonable(value) == {"x": 0.5, "v": [0, 1, 2], "t": [1, None], "p": str(tmp_path)}


def test_an_append_after_a_torn_line_starts_on_a_line_of_its_own(tmp_path):
    path = tmp_path / "trials.jsonl"
    append_jsonl(path, {"key": "a"})
    with open(path, "a") as fh:
        fh.write('{"key": "b", "sta')  # a writer killed mid-line
    append_jsonl(path, {"key": "c"})
    assert read_jsonl(path) == [{"key": "a"}, {"key": "c"}]
    assert path.read_text().splitlines()[-1] == '{"key": "c"}'


@given(records=st.lists(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=8), max_size=3),
                        min_size=1, max_size=4),
       cut=st.integers(min_value=1), more=st.lists(st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
                                                   max_size=3))
@settings(max_examples=60, deadline=None)
def test_torn_tails_of_any_length_lose_only_the_torn_record(tmp_path_factory, records, cut, more):
    path = tmp_path_factory.mktemp("jsonl") / "log.jsonl"
    for record in records:
        append_jsonl(path, record)
    whole = path.read_bytes()
    last_line = len(whole) - whole[:-1].rfind(b"\n") - 1  # the last record with its newline
    # torn: its newline and closing brace gone, at least its first byte kept (a record without
    # its newline but otherwise whole is a complete record, and readers rightly keep it)
    path.write_bytes(whole[: len(whole) - 2 - cut % (last_line - 2)])
    for record in more:
        append_jsonl(path, record)
    assert read_jsonl(path) == [*records[:-1], *more]


def test_a_full_disk_during_an_append_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"epoch": 1})
    before = path.read_bytes()
    real_write = os.write

    def half_then_full(fd, data):  # the kernel takes part of the line, then the disk is full
        if len(data) > 4:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        append_jsonl(path, {"epoch": 2, "loss": 0.5})
    monkeypatch.undo()
    assert path.read_bytes() == before
    append_jsonl(path, {"epoch": 2})
    assert read_jsonl(path) == [{"epoch": 1}, {"epoch": 2}]


def test_read_jsonl_keeps_only_json_objects(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"a": 1}\n3\n["x"]\nnull\n\xff\xfe{"b"\n{"c": 2}\n')
    assert read_jsonl(path) == [{"a": 1}, {"c": 2}]


def test_not_a_file_names_a_folder_as_a_folder(tmp_path):
    from trainlab.files import not_a_file

    (tmp_path / "f.yaml").write_text("a: 1\n")
    assert not_a_file(tmp_path / "f.yaml") is None
    assert not_a_file(tmp_path) == "is a folder, not a file"
    assert not_a_file(tmp_path / "missing") == "does not exist"


def test_a_folder_given_as_config_file_is_named_a_folder(tmp_path):
    import pytest

    from trainlab.config import BaseConfig, load_config
    from trainlab.errors import ConfigError

    with pytest.raises(ConfigError, match="is a folder, not a file"):
        load_config(BaseConfig, yaml_file=tmp_path)


def test_an_atomic_file_that_raises_leaves_the_old_file_and_no_temp(tmp_path):
    from trainlab.files import atomic_file

    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    with pytest.raises(ValueError):
        with atomic_file(target) as fh:
            fh.write(b"half of the new")
            raise ValueError("a checksum mismatch, say")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]


def test_atomic_copy_streams_the_bytes_with_the_umasks_mode_not_the_sources(tmp_path):
    import os

    from trainlab.files import atomic_copy

    source = tmp_path / "src.bin"
    source.write_bytes(os.urandom(3 << 20))  # several copy chunks
    source.chmod(0o600)
    old = os.umask(0o022)
    try:
        atomic_copy(source, tmp_path / "out" / "copy.bin")
    finally:
        os.umask(old)
    copy = tmp_path / "out" / "copy.bin"
    assert copy.read_bytes() == source.read_bytes() and (copy.stat().st_mode & 0o777) == 0o644
