"""The Pythons we support are declared once, said in the README, and checked by make before it installs."""

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUPPORTED = ["3.11", "3.12", "3.13"]  # what CI installs and tests


def test_requires_python_and_classifiers_name_the_supported_versions():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == f">={SUPPORTED[0]}"
    versions = [c.rsplit(" :: ", 1)[1] for c in project["classifiers"]
                if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
    assert versions == SUPPORTED
    assert sys.version_info >= (3, 11)  # this very suite runs on a supported Python


def test_readme_says_which_pythons_are_supported():
    text = (ROOT / "README.md").read_text()
    assert "Python 3.11, 3.12 and 3.13 are supported" in text and 'requires-python = ">=3.11"' in text


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
@pytest.mark.parametrize("version", ["3.10.13", "2.7.18"])
def test_make_stops_at_once_with_one_line_on_an_older_python(tmp_path, version):
    old = tmp_path / "python-old"  # answers like an old interpreter: the version test fails, the version prints
    old.write_text(f'#!/bin/sh\ncase "$2" in *version_info*) exit 1;; *) echo "Python {version}";; esac\n')
    old.chmod(0o755)
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    done = subprocess.run(["make", "-s", "test", f"PYTHON={old}"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "MAKEFLAGS": ""})
    ours = [line for line in done.stderr.splitlines() if not line.startswith("make")]
    assert done.returncode != 0 and len(ours) == 1, done.stderr
    assert "needs Python 3.11 or newer" in ours[0] and f"is Python {version}" in ours[0]
    assert not (tmp_path / ".venv").exists()  # stopped before anything was created
