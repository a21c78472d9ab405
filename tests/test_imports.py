"""No import cycles: modules form layers, so any one can be read (and imported) on its own.

The graph counts every import, also those inside functions: an import hidden in a
function still ties the two modules together, it only hides the cycle.
"""

import ast
import subprocess
import sys
from pathlib import Path

import trainlab

SRC = Path(trainlab.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for file in SRC.rglob("*.py"):
        parts = list(file.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = file
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the trainlab modules it imports anywhere in its file."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, file in modules.items():
        package = name if file.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(file.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                # "from trainlab.report import numbers" imports the module trainlab.report.numbers
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_files_is_a_leaf():
    assert import_graph()["trainlab.files"] == set()


def test_runs_and_the_report_do_not_import_each_other():
    graph = import_graph()
    report = {m for m in graph if m.startswith("trainlab.report")}
    for module in report:
        assert "trainlab.runs" not in graph[module], module
        assert "trainlab.tour" not in graph[module], module


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_importing_files_loads_no_other_trainlab_module():
    code = ("import sys, trainlab.files; "
            "print(sorted(m for m in sys.modules if m.startswith('trainlab.') and m != 'trainlab.files'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(SRC.parent), "PATH": ""})
    assert out.stdout.strip() == "[]"


# The layer rule (DESIGN.md): library packages take plain arguments and know nothing of run
# folders, reports, sweeps or recipes, so a user can call them without any of that.
LIBRARY = ("data", "nn", "train", "diffusion", "mcmc", "scratch", "analysis")
ABOVE_THE_LIBRARY = ("experiments", "runs", "report", "sweeps", "execute", "tour", "cli", "processes")
# checkpoints.py is not among them: the one weights format imports only errors, so models
# (nn.alexnet) read weights through its checks.


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_library_packages_import_nothing_above_them():
    graph = import_graph()
    wrong = {module: sorted(i for i in imports if _layer(i) in ABOVE_THE_LIBRARY)
             for module, imports in graph.items() if _layer(module) in LIBRARY}
    assert {m: i for m, i in wrong.items() if i} == {}


def _imports_of(file: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def test_benches_and_library_tests_use_no_recipe_plumbing():
    """experiments/_*.py is glue only recipes share; benches and tests of the library go
    through public library modules (tests of the recipes' own plumbing live in tests/experiments/)."""
    root = SRC.parent.parent
    files = [*root.joinpath("bench").glob("*.py"),
             *(f for f in root.joinpath("tests").rglob("*.py") if "experiments" not in f.relative_to(root).parts)]
    wrong = {str(f.relative_to(root)): sorted(n for n in _imports_of(f) if n.startswith("trainlab.experiments._"))
             for f in files}
    assert {f: n for f, n in wrong.items() if n} == {}
