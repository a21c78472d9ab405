"""docs/studies.md maps every experiment to its study; user-facing docs name studies by topic."""

import re
from pathlib import Path

from trainlab.experiments.registry import STUDIES, all_experiments

ROOT = Path(__file__).resolve().parents[1]
STUDIES_MD = ROOT / "docs" / "studies.md"


def _sections(text: str) -> dict[str, str]:
    """'## Heading' -> the text up to the next '## ' heading."""
    parts = re.split(r"^## +(.+?)\s*$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_every_study_has_a_section():
    sections = _sections(STUDIES_MD.read_text())
    missing = [title for title in STUDIES.values() if title not in sections]
    assert not missing, f"docs/studies.md has no '## ' section for {missing}"


def test_every_experiment_is_in_its_study_coverage_table():
    sections = _sections(STUDIES_MD.read_text())
    for name, exp in all_experiments().items():
        assert exp.study in STUDIES, f"{name}: STUDY = {exp.study!r} is not a key of registry.STUDIES"
        title = STUDIES[exp.study]
        assert title in sections, f"docs/studies.md has no '## {title}' section (study of {name})"
        # a row of the section's question table, not just a mention (the "planned" lines are not rows)
        rows = [line for line in sections[title].splitlines() if line.startswith("|") and f"`{name}`" in line]
        assert rows, f"docs/studies.md: add `{name}` to a question row of the table under '## {title}'"


def test_user_docs_never_name_a_study_by_its_file_number():
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    pattern = re.compile(r"seed[\s_-]*0\d\d", re.IGNORECASE)
    hits = [f"{f.relative_to(ROOT)}:{i}: {line.strip()}" for f in files
            for i, line in enumerate(f.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, "name the study by its topic (e.g. 'MNIST MLP study, Q2'), not its seed number:\n" + "\n".join(hits)
