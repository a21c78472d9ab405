"""Every experiment names the study and question it comes from, for people."""

import re

from trainlab.experiments.registry import STUDIES, all_experiments, by_study


def test_every_experiment_belongs_to_a_known_study_with_a_question():
    for name, exp in all_experiments().items():
        assert exp.study in STUDIES, f"{name}: STUDY {exp.study!r} is not one of {sorted(STUDIES)}"
        assert exp.question, f"{name} has no QUESTION"
        assert exp.title.startswith(f"{STUDIES[exp.study]}, {exp.question}: ")


def test_no_user_facing_text_names_a_study_file():
    for name, exp in all_experiments().items():
        assert not re.search(r"seed\s*00\d", exp.title, re.I), name


def test_list_groups_follow_the_study_order():
    groups = by_study()
    known = [title for title in STUDIES.values() if title in groups]
    assert list(groups)[: len(known)] == known
    assert sum(len(v) for v in groups.values()) == len(all_experiments())
