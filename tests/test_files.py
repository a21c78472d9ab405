import os
import stat
from dataclasses import dataclass

import numpy as np
import pytest

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
