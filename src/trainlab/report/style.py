"""The one stylesheet and page shell of report.html and the tour's index.html.

The stylesheet is inlined: a page is one file that works offline, moved or mailed.
"""

import html
import re

CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--soft:#f6f8fa;--accent:#0969da}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
  max-width:1100px;margin:0 auto;padding:1.5em 1.2em 4em}
h1{font-size:1.8em;margin:.2em 0 .1em}
h2{font-size:1.3em;margin:1.6em 0 .5em;padding-bottom:.2em;border-bottom:1px solid var(--line)}
h3{font-size:1.05em;margin:1em 0 .3em}
a{color:var(--accent);text-decoration:none} a:hover{text-decoration:underline}
.subtitle{color:var(--muted);margin:0 0 .6em;font-size:1.05em}
.meta{color:var(--muted);font-size:.92em;margin:.3em 0 1em}
.badge{display:inline-block;padding:.05em .55em;border-radius:1em;font-size:.85em;font-weight:600;
  background:#dafbe1;color:#116329}
.badge.failed,.badge.interrupted{background:#ffebe9;color:#a40e26}
.badge.diverged,.badge.running{background:#fff8c5;color:#7d4e00}
.error{color:#a40e26;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85em;
  overflow-wrap:anywhere}
.summary{display:flex;flex-wrap:wrap;gap:.5em;margin:.5em 0 1em}
.kv{border:1px solid var(--line);border-radius:6px;padding:.35em .7em;background:var(--soft);min-width:8em}
.kv .k{display:block;color:var(--muted);font-size:.78em;font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
.kv .v{font-size:1.1em;font-weight:600;font-variant-numeric:tabular-nums}
.kv.headline{border-color:var(--accent);background:#ddf4ff}
.table-wrap{overflow-x:auto;max-width:100%;margin:.6em 0}
table{border-collapse:collapse;font-size:.9em;font-variant-numeric:tabular-nums}
th,td{border:1px solid var(--line);padding:.25em .6em;white-space:nowrap}
th{background:var(--soft)}
tr.best td{background:#fff6c2;font-weight:600}
tr.worst td{background:#ffd9d9}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.88em;background:var(--soft);
  padding:.1em .3em;border-radius:4px}
pre{background:var(--soft);padding:.8em;overflow-x:auto;font-size:.85em;border-radius:6px}
pre code{background:none;padding:0}
figure{margin:.6em 0}
figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption,.caption{color:var(--muted);font-size:.9em}
details{margin:1em 0} summary{cursor:pointer;color:var(--muted)}
"""


def page(title: str, body: list[str], css: str = "") -> str:
    """A whole HTML page: ``title`` (plain text), the ``body`` parts (HTML), extra ``css``."""
    head = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{CSS}{css}</style></head><body>"
    )
    return "\n".join([head, *body, "</body></html>"])


def scoped_css(scope: str) -> str:
    """:data:`CSS` for HTML shown inside another page (a notebook's output), applying only under ``scope``.

    Every selector is prefixed with ``scope``, ``:root``'s colours move onto it, and the
    page-wide rules (``body``, ``*``) are left out so the host page keeps its own look.
    """
    rules = []
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", CSS):
        kept = []
        for selector in (s.strip() for s in selectors.split(",")):
            if selector == ":root":
                kept.append(scope)
            elif selector not in ("body", "*"):
                kept.append(f"{scope} {selector}")
        if kept:
            rules.append(f"{','.join(kept)}{{{body}}}")
    return "\n".join(rules)
