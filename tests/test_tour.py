import json
import shutil
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

from trainlab.config import BaseConfig
from trainlab.files import atomic_write
from trainlab.report.figures import new_figure
from trainlab.report.index import render_index
from trainlab.runs import Run
from trainlab.tour import run_tour


class Links(HTMLParser):
    """Every href and src of a page."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.found += [v for k, v in attrs if k in ("href", "src") and v]


def links(page: Path) -> list[str]:
    parser = Links()
    parser.feed(page.read_text())
    return parser.found


def test_tour_index_links_stay_valid_after_the_folder_moves(tmp_path):
    seen = []
    index = run_tour(tmp_path / "a", only=["mnist-binary"], on_result=seen.append)
    assert index.name == "index.html" and index.is_file()
    results = json.loads((index.parent / "tour.json").read_text())
    assert [r["name"] for r in results] == ["mnist-binary"] == [r["name"] for r in seen]
    assert results[0]["status"] == "done" and not Path(results[0]["path"]).is_absolute()
    moved = Path(shutil.move(str(index.parent), str(tmp_path / "elsewhere" / "tour")))
    page = moved / "index.html"
    found = links(page)
    assert any(l.endswith("/report.html") for l in found) and any(l.endswith(".png") for l in found)
    for link in found:
        assert not urlparse(link).scheme and not link.startswith("/"), link
        assert (moved / unquote(link)).is_file(), link
    text = page.read_text()
    summary = json.loads(next(moved.glob("mnist-binary/*/summary.json")).read_text())
    assert "MNIST MLP study" in text and "Q1" in text and "test_acc" in text
    assert f"{summary['test_acc']:.2f}%" in text  # the headline number, rounded, with its unit


@dataclass
class Cfg(BaseConfig):
    x: int = 1
    """x"""


def test_index_groups_by_study_and_shows_failures(tmp_path):
    ok = Run.create(tmp_path, "good", Cfg(), "cpu")
    fig, axes = new_figure()
    axes[0, 0].plot([0, 1], [1, 0])
    ok.figure("curve", fig)
    ok.summary(headline="test_acc", loss=0.1234567, test_acc=97.123, train_time_s=1.5)
    ok.finish("done", 1.5)
    rows = [
        {"name": "good", "study": "MNIST MLP study", "question": "Q1", "summary": "a `good` one",
         "status": "done", "path": ok.path.relative_to(tmp_path).as_posix(), "seconds": 1.5},
        {"name": "bad", "study": "Diffusion study", "question": "§2", "summary": "a bad one",
         "status": "failed", "error": "ValueError: lr must be > 0\nsecond line", "seconds": 0.2},
    ]
    atomic_write(tmp_path / "tour.json", json.dumps(rows))
    page = render_index(tmp_path)
    assert page.index("<h2>MNIST MLP study</h2>") < page.index("<h2>Diffusion study</h2>")
    assert "ValueError: lr must be &gt; 0 second line" in page  # one line, escaped
    assert "1 failed" in page and "<code>good</code>" in page
    # headline first, with units; a thumbnail linking to the report
    assert page.index("97.12%") < page.index("0.1235") and "1.5 s" in page
    assert f"href='{rows[0]['path']}/report.html'><img src='{rows[0]['path']}/figures/curve.png'" in page
