"""The experiments and their configs as data: :func:`list_experiments`, :func:`make_config`, :func:`show`.

Keyword overrides become the ``key=value`` text the command line would get
(:func:`override_text`) and go through the one validation path,
:func:`trainlab.execute.build_config`: the same ``ConfigError`` with the same message.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
from typing import Any, Mapping

import pandas as pd
import yaml

from trainlab.execute import build_config
from trainlab.experiments.registry import all_experiments, get_experiment


def list_experiments() -> pd.DataFrame:
    """Every experiment: name, study, question, summary and expected runtime, one row each."""
    rows = [{"name": exp.name, "study": exp.study_title, "question": exp.question, "summary": exp.summary,
             "runtime": exp.runtime} for exp in all_experiments().values()]
    return pd.DataFrame(rows, columns=["name", "study", "question", "summary", "runtime"])


def value_text(value: Any) -> str:
    """``value`` as the text a command line gives after ``key=`` (OmegaConf's dotlist grammar).

    ``True`` -> ``true``, ``None`` -> ``null``, lists, tuples and ranges -> ``[a,b,c]``;
    a string is single-quoted when it would not read back as itself (see :func:`_string_text`);
    anything else is its ``str`` (a float its shortest repr, so ``1e-05`` stays exact).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple, range)):
        return "[" + ",".join(value_text(v) for v in value) + "]"
    if isinstance(value, str):
        return _string_text(value)
    return str(value)


_GRAMMAR = set(",()[]{}'\"")
"""Characters the sweep grammar reads (lists, ``choice(...)``, quotes): a string holding one is quoted."""


def _string_text(text: str) -> str:
    """``text`` as is, or YAML-single-quoted when YAML would read it as something else (``a: b``,
    `` x``, ``#``) or it holds sweep grammar (``a,b`` would otherwise sweep over ``a`` and ``b``)."""
    try:
        plain = yaml.safe_load(text) == text
    except yaml.YAMLError:
        plain = False
    if plain and not _GRAMMAR & set(text):
        return text
    return "'" + text.replace("'", "''") + "'"


def override_text(overrides: Mapping[str, Any]) -> list[str]:
    """Keyword overrides as the command line's ``key=value`` items, in order."""
    return [f"{key}={value_text(value)}" for key, value in overrides.items()]


def make_config(name: str, quick: bool = False, **overrides: Any) -> Any:
    """The validated, typed ``Config`` of experiment ``name``: defaults <- quick profile <- ``overrides``.

    ``make_config("mnist-binary", hidden=8, batch_sizes=[16, 128])`` is exactly
    ``trainlab run mnist-binary hidden=8 batch_sizes=[16,128]``'s config, and a bad value
    raises the same :class:`~trainlab.errors.ConfigError` with the same message.
    """
    return build_config(get_experiment(name), override_text(overrides), quick=quick)


def show(name: str) -> pd.DataFrame:
    """Every config field of experiment ``name``: name, type, default, quick value and docstring."""
    exp = get_experiment(name)
    defaults, quick = make_config(name), make_config(name, quick=True)
    docs = field_docstrings(exp.config_cls)
    rows = [{"name": f.name, "type": _type_name(f.type), "default": getattr(defaults, f.name),
             "quick": getattr(quick, f.name), "doc": docs.get(f.name, "")}
            for f in dataclasses.fields(exp.config_cls)]
    return pd.DataFrame(rows, columns=["name", "type", "default", "quick", "doc"])


def field_docstrings(cls: type) -> dict[str, str]:
    """Field name -> the string under its declaration, over ``cls``'s MRO (a subclass's wins).

    Configs inherit fields from mixins and library settings, so every class's source is read.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):  # no source (a frozen install): no docstrings
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                docs[node.target.id] = " ".join(after.value.value.split())  # source line breaks are not meant
    return docs


def _type_name(annotation: Any) -> str:
    # With `from __future__ import annotations` the annotation is already its source text.
    if isinstance(annotation, str):
        return annotation
    return getattr(annotation, "__name__", str(annotation))
