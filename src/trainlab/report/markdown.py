"""Markdown to HTML with markdown-it-py: the text, tables and captions recipes write.

Raw HTML in the Markdown is escaped, not passed through (``html=False``): report
text is data from a run, and markdown-it escapes it exactly once. Every table is
wrapped in a box that scrolls sideways, so a wide table never widens the page.
"""

from __future__ import annotations

from typing import Mapping

from markdown_it import MarkdownIt

_MD = MarkdownIt("commonmark", {"html": False}).enable("table")


def to_html(text: str, row_classes: Mapping[int, str] | None = None) -> str:
    """Block Markdown (paragraphs, lists, code, tables) as HTML.

    ``row_classes`` maps the index of a body row (of the first table) to a CSS class
    such as ``best`` or ``worst``; recipes use it to colour rows.
    """
    tokens = _MD.parse(text)
    _align_numbers(tokens)
    if row_classes:
        row, in_body = 0, False
        for tok in tokens:
            if tok.type in ("tbody_open", "tbody_close"):
                in_body = tok.type == "tbody_open"
            elif tok.type == "tr_open" and in_body:
                if row_classes.get(row):
                    tok.attrSet("class", row_classes[row])
                row += 1
            elif tok.type == "table_close":
                break
    html = _MD.renderer.render(tokens, _MD.options, {})
    # With html=False no "<table" can come from the text itself, so this only wraps real tables.
    return html.replace("<table>", '<div class="table-wrap"><table>').replace("</table>", "</table></div>")


def _align_numbers(tokens: list) -> None:
    """Right-align the columns that hold only numbers, in tables that set no alignment.

    Tables written by trainlab say their alignment (``---:``); tables typed into text
    items (a study's numbers) usually do not, and numbers read best right-aligned.
    """
    table: list = []  # (column, cell-open token, its text) of the current table
    for i, tok in enumerate(tokens):
        if tok.type == "table_open":
            table, col = [], 0
        elif tok.type == "tr_open":
            col = 0
        elif tok.type in ("th_open", "td_open"):
            table.append((col, tok, tokens[i + 1].content if i + 1 < len(tokens) else ""))
            col += 1
        elif tok.type == "table_close":
            if any(t.attrGet("style") for _, t, _ in table):
                continue
            for c in {c for c, _, _ in table}:
                body = [text for cc, t, text in table if cc == c and t.type == "td_open" and text.strip()]
                if body and all(_is_number(text) for text in body):
                    for cc, t, _ in table:
                        if cc == c:
                            t.attrSet("style", "text-align:right")


def _is_number(text: str) -> bool:
    try:
        float(text.strip().strip("*").rstrip("%").replace(",", ""))
    except ValueError:
        return False
    return True


def inline(text: str) -> str:
    """One line of Markdown (a title, a caption) as HTML without a surrounding paragraph."""
    return _MD.renderInline(text)
