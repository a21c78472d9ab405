from dataclasses import dataclass

from trainlab.config import BaseConfig
from trainlab.report.markdown import inline, to_html
from trainlab.runs import Run

STUDY_TABLE = """The study's Table 1:

| batch_size | test_acc |
|---|---|
| 2 | 99.67 |
| 1024 | 99.57 |

- **bold** item with `code`
- a [link](https://example.org)
"""


@dataclass
class Cfg(BaseConfig):
    x: int = 1
    """x"""


def test_text_items_tables_and_captions_render_as_html(tmp_path):
    run = Run.create(tmp_path, "demo", Cfg(), "cpu", title="Some study, Q1: a **demo**")
    run.text("note", "Adam is **faster** here & `lr=1e-3` wins; x < y <script>alert(1)</script>")
    run.text("study", STUDY_TABLE, title="The study's `numbers`")
    run.table("t", [{"act": "relu", "test_acc": 91.555}, {"act": "tanh", "test_acc": 90.0}],
              caption="Accuracy in **percent**.", row_classes={0: "best"})
    run.summary(test_acc=91.555)
    run.finish("done", 2.0)
    page = (run.path / "report.html").read_text()
    assert "<strong>faster</strong>" in page and "<code>lr=1e-3</code>" in page
    # escaped exactly once, and no raw HTML gets through
    assert "&amp; <code>" in page and "&amp;amp;" not in page
    assert "x &lt; y &lt;script&gt;" in page and "<script>" not in page
    # the study's Markdown table, its list and link; the recipe's table with its coloured row
    assert page.count("<table>") == 2 and page.count('<div class="table-wrap"><table>') == 2
    assert "<td style=\"text-align:right\">99.67</td>" in page  # numbers right-aligned
    assert "<li><strong>bold</strong> item with <code>code</code></li>" in page
    assert '<a href="https://example.org">link</a>' in page
    assert '<tr class="best">' in page and ">91.56</td>" in page and "91.555" not in page.split("Run details")[0]
    assert "<p class=\"caption\">Accuracy in <strong>percent</strong>.</p>" in page
    assert "<h2>The study's <code>numbers</code></h2>" in page
    assert "a <strong>demo</strong>" in page
    assert "|---|" not in page and "**" not in page.split("Run details")[0]
    md = (run.path / "report.md").read_text()
    assert "**faster**" in md and "| test_acc | 91.56% |" in md


def test_inline_has_no_paragraph_and_blocks_do():
    assert inline("a *b*") == "a <em>b</em>"
    assert to_html("a\n\nb") == "<p>a</p>\n<p>b</p>\n"


def test_tables_typed_without_alignment_get_numbers_right_aligned_only():
    page = to_html("| name | value |\n|---|---|\n| relu | **1.5** |\n| tanh | 2% |\n")
    assert "<td>relu</td>" in page and '<td style="text-align:right"><strong>1.5</strong></td>' in page
