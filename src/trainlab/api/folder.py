"""A finished (or running) run folder, read back as data: :class:`Run` and :func:`load_run`.

This ``Run`` only reads: the folder is the one source of truth, and every property reads
its files again, so a run still being written shows its latest state. (The recipes'
writer is a different class, :class:`trainlab.runs.Run`.)
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd

from trainlab.errors import ConfigError
from trainlab.execute import stored_config
from trainlab.experiments.registry import get_experiment
from trainlab.files import read_jsonl
from trainlab.report.folder import (MANIFEST, RUN_INFO, config_values, inside, items_problem, read_checked,
                                    run_info_problem, summary_problem)
from trainlab.report.html import figure_html, header_html, render_report, summary_box, summary_entries
from trainlab.report.style import scoped_css
from trainlab.run_list import shown_status
from trainlab.api.models import load_model

SCOPE = "trainlab-run"
"""The class of the element a run's notebook view lives in; the report's stylesheet applies only inside it."""


class Run:
    """A run folder as Python objects: config, summary, tables, metrics, figures, models, report.

    ``trainlab.run(...)`` and ``trainlab.load_run(path)`` return one; in a notebook it shows
    as its status, summary numbers and figures.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        """The run folder."""
        if not (self.path / RUN_INFO).is_file():
            raise ConfigError(f"{self.path} is not a run folder (no {RUN_INFO}); trainlab runs "
                              "or trainlab.list_runs() lists them")
        self.name: str = str(self.info.get("experiment", self.path.parent.name))
        """The experiment's name."""

    def __repr__(self) -> str:
        return f"Run({self.name!r}, status={self.status!r}, path={str(self.path)!r})"

    # -- what run.json says ---------------------------------------------------------
    @property
    def info(self) -> dict[str, Any]:
        """run.json as it is now: status, times, error, headline, the process that runs it."""
        return read_checked(inside(self.path, RUN_INFO), {}, run_info_problem)

    @property
    def status(self) -> str:
        """done, diverged, failed, interrupted, running, or killed for a run whose process died."""
        return str(self._shown_info().get("status", "?"))

    def _shown_info(self) -> dict[str, Any]:
        """run.json with the status ``trainlab runs`` shows (``killed`` when a running run's process died)."""
        info = self.info
        return {**info, **shown_status(info)} if "status" in info else info

    @property
    def error(self) -> str | None:
        """Why the run failed or diverged (one line), or None."""
        return self.info.get("error")

    # -- results ----------------------------------------------------------------------
    @property
    def config(self) -> Any:
        """The run's typed ``Config``, rebuilt from config.yaml and validated again."""
        return stored_config(get_experiment(self.name), config_values(self.path))

    @property
    def summary(self) -> dict[str, Any]:
        """summary.json: the run's headline numbers."""
        return dict(read_checked(inside(self.path, "summary.json"), {}, summary_problem))

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """Table name -> the table's CSV as a DataFrame (pandas infers each column's type)."""
        return {csv.stem: pd.read_csv(inside(self.path, f"tables/{csv.name}"))
                for csv in sorted(self.path.glob("tables/*.csv"))}

    @property
    def metrics(self) -> pd.DataFrame:
        """metrics.jsonl, one row per record (a torn last line of a killed run is skipped)."""
        return pd.DataFrame(read_jsonl(inside(self.path, "metrics.jsonl")))

    @property
    def figures(self) -> dict[str, Path]:
        """Figure name -> its PNG file."""
        return {png.stem: inside(self.path, f"figures/{png.name}") for png in sorted(self.path.glob("figures/*.png"))}

    def model(self, name: str | None = None) -> Any:
        """Trained model ``name`` (see ``checkpoints/``) as a ready ``nn.Module`` in eval mode on the CPU,
        or a NumPy network; ``None`` returns the only one and names them all when there are several."""
        return load_model(self.path, self.name, name)

    def report_html(self) -> Path:
        """The path of report.html (self-contained: open it in a browser), rendered first if missing."""
        page = self.path / "report.html"
        return page if page.is_file() else render_report(self.path)[1]

    # -- notebook view -------------------------------------------------------------
    def _repr_html_(self) -> str:
        """The head of the report: status, summary numbers and figures (the whole page: :meth:`report_html`)."""
        info = self._shown_info()
        parts = header_html(self.name, info)
        parts.append(f"<p class='meta'><code>{html.escape(str(self.path))}</code></p>")
        summary = self.summary
        if summary:
            parts.append(summary_box(summary_entries(summary, info.get("headline"))))
        for item in self._figure_items():
            parts.append(figure_html(self.figures.get(item["name"], self.path / "figures" / f"{item['name']}.png"),
                                     item["title"], item.get("caption", "")))
        return f"<div class='{SCOPE}'><style>{scoped_css('.' + SCOPE)}</style>{''.join(parts)}</div>"

    def _figure_items(self) -> list[dict[str, Any]]:
        """The figures in the report's order with their titles; figures it does not list, by name."""
        items = [i for i in read_checked(inside(self.path, MANIFEST), [], items_problem) if i.get("kind") == "figure"]
        listed = {i["name"] for i in items}
        return items + [{"name": n, "title": n} for n in self.figures if n not in listed]


SWEEP_PLAN = "sweep.json"  # :data:`trainlab.sweeps.trials.SPEC_FILE`; that package is not imported for one name


def load_run(path: str | Path) -> Run:
    """The run in folder ``path`` (a folder ``trainlab run`` printed, or a row of :func:`list_runs`)."""
    if (Path(path) / SWEEP_PLAN).is_file():
        raise ConfigError(f"{path} is a sweep folder; trainlab.load_sweep({str(path)!r}) reads it")
    return Run(path)
