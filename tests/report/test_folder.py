"""trainlab report on damaged or hostile run folders: one line, exit 2, nothing read from outside."""

import json
from dataclasses import dataclass

import pytest

from trainlab.cli import main
from trainlab.config import BaseConfig
from trainlab.errors import DataError
from trainlab.report.html import render_report
from trainlab.runs import Run


@dataclass
class Cfg(BaseConfig):
    x: int = 1
    """x"""


@pytest.fixture
def run_dir(tmp_path):
    run = Run.create(tmp_path / "runs", "demo", Cfg(), "cpu")
    run.table("t", [{"a": 1}], title="A table", row_classes={0: "best"})
    run.text("note", "hello", title="A note")
    run.summary(headline="acc", acc=99.5)
    run.finish("done", 1.0)
    return run.path


def _report(capsys, run_dir):
    with pytest.raises(SystemExit) as info:
        main(["report", str(run_dir)])
    return info.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    "file, content, fragment",
    [
        ("report.json", {"kind": "table"}, "expected a list of items"),
        ("report.json", [["table", "t"]], "item 0 is a list"),
        ("report.json", [{"kind": "table", "name": 3, "title": "t"}], "item 0 has name 3"),
        ("report.json", [{"kind": "movie", "name": "t", "title": "t"}], "kind 'movie'"),
        ("report.json", [{"kind": "table", "name": "t", "title": 5}], "title a number"),
        ("run.json", [1, 2], "expected an object"),
        ("run.json", {"experiment": "demo", "seconds": "fast"}, "seconds is a string"),
        ("run.json", {"experiment": ["demo"]}, "experiment is a list"),
        ("summary.json", [99.5], "expected an object"),
        ("summary.json", {"acc": {"mean": 1}}, "acc is an object"),
        ("tables/t.rows.json", ["best"], "row index"),
    ],
)
def test_wrong_json_shape_is_one_line_exit_2(capsys, run_dir, file, content, fragment):
    (run_dir / file).write_text(json.dumps(content))
    code, err = _report(capsys, run_dir)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: {run_dir / file} is damaged") and fragment in err


@pytest.mark.parametrize("file", ["report.json", "summary.json", "run.json"])
def test_unparseable_json_is_reported_not_rendered_empty(capsys, run_dir, file):
    before = (run_dir / "report.html").read_text()
    (run_dir / file).write_text('[{"kind": "table", "na')
    code, err = _report(capsys, run_dir)
    assert code == 2 and f"{run_dir / file} is not readable JSON" in err and len(err.strip().splitlines()) == 1
    assert (run_dir / "report.html").read_text() == before  # nothing lost: the old report stays


@pytest.mark.parametrize("kind, folder, suffix", [("text", "text", ".md"), ("table", "tables", ".md"),
                                                   ("figure", "figures", ".png")])
def test_item_naming_a_file_outside_the_run_folder_is_refused(tmp_path, run_dir, kind, folder, suffix):
    secret = tmp_path / f"secret{suffix}"
    secret.write_text("TOP SECRET")
    depth = len((run_dir / folder).relative_to(tmp_path).parts)
    items = [{"kind": kind, "name": "../" * depth + "secret", "title": "x"}]
    (run_dir / "report.json").write_text(json.dumps(items))
    with pytest.raises(DataError, match="item 0 has name"):
        render_report(run_dir)
    assert "TOP SECRET" not in (run_dir / "report.md").read_text() + (run_dir / "report.html").read_text()


def test_link_inside_the_run_folder_to_outside_is_refused(tmp_path, run_dir):
    secret = tmp_path / "secret.md"
    secret.write_text("TOP SECRET")
    (run_dir / "text" / "note.md").unlink()
    (run_dir / "text" / "note.md").symlink_to(secret)
    with pytest.raises(DataError, match="leads outside the run folder"):
        render_report(run_dir)
    assert "TOP SECRET" not in (run_dir / "report.html").read_text()


def test_a_sound_folder_still_renders_its_items(run_dir):
    md, page = render_report(run_dir)
    text = md.read_text()
    assert "## A table" in text and "hello" in text and "acc" in text
    assert '<tr class="best">' in page.read_text()
