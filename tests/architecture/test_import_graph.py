"""The code's structure follows the flow: import -> mine -> assign -> judge -> agree -> export -> train -> serve.

Read from the source (ast), not from what happens to be imported at run time, so a function-level
import counts as much as a top-level one:

- mining.text (tokenisation, BM25, highlighting), annotate.grades and annotate.formats are plain
  libraries: they import no first-party module (formats may read the grade scale);
- annotate never imports training, nor mining beyond mining.text;
- training reads annotate's public surface only (models, access, export, formats, grades) and
  mining.text, never annotate's internals or mining's jobs; it writes back only the machine judge's
  grades, through annotate.sources (the one service for a derived source's judgments);
- mining's jobs may use training's promoted model: the one arrow back, the feedback loop;
- config's infrastructure (celery, errors, env, redis...) imports no app; only the composition root
  (urls, api_urls, wsgi, stack, settings) names the apps;
- no cycle between the apps; no first-party import hides in `try/except ImportError`.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("annotate", "mining", "training", "config")
LIBRARIES = ("mining.text", "annotate.grades", "annotate.formats")
TRAINING_MAY_READ = ("annotate.models", "annotate.access", "annotate.export", "annotate.formats", "annotate.grades",
                     "annotate.sources", "mining.text", "config")
COMPOSITION_ROOT = ("config.urls", "config.api_urls", "config.wsgi", "config.stack", "config.settings",
                    "config.settings_test")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _source_files():
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    if not node.level:
        base = node.module or ""
    else:
        parts = module.split(".")
        if not is_package:
            parts = parts[:-1]
        parts = parts[: len(parts) - node.level + 1]
        base = ".".join(parts + ([node.module] if node.module else []))
    # `from x import y` may import the submodule x.y: count both spellings.
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def _imports(tree: ast.AST, module: str, is_package: bool):
    """(imported module, the ast node) for every import statement, at any depth."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node
        elif isinstance(node, ast.ImportFrom):
            for name in _resolve(module, is_package, node):
                yield name, node


def _first_party(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def _within(name: str, prefixes) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in _source_files():
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[module] = {name for name, _ in _imports(tree, module, path.name == "__init__.py") if _first_party(name)}
    return graph


def component(module: str) -> str:
    """The unit the rules talk about: a library, config's two halves, or an app."""
    for library in LIBRARIES:
        if _within(module, (library,)):
            return library
    if module.startswith("config"):
        return "config.root" if _within(module, COMPOSITION_ROOT) else "config"
    return module.split(".")[0]


def violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, imported in sorted(graph.items()):
        for name in sorted(imported):
            where, what = component(module), component(name)
            if where == what or (where in LIBRARIES and what == "annotate.grades" and where == "annotate.formats"):
                continue
            if where in LIBRARIES:
                found.append(f"{module} imports {name}: {where} is a library and imports nothing first-party")
            elif where == "config":
                found.append(f"{module} imports {name}: config's infrastructure imports no app")
            elif where == "annotate" and what in ("training", "mining"):
                found.append(f"{module} imports {name}: annotate never imports {what} (only mining.text)")
            elif where == "training" and what != "config.root" and not _within(name, TRAINING_MAY_READ):
                found.append(f"{module} imports {name}: training reads only {', '.join(TRAINING_MAY_READ)}")
            elif what == "config.root" and where != "config.root":
                found.append(f"{module} imports {name}: only the composition root imports it")
    return found


def app_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles in the graph of components (an edge where any module of one imports the other)."""
    edges: dict[str, set[str]] = {}
    for module, imported in graph.items():
        for name in imported:
            if component(name) != component(module):
                edges.setdefault(component(module), set()).add(component(name))
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for following in sorted(edges.get(node, ())):
            if state.get(following) == "open":
                cycles.append(stack[stack.index(following):] + [following])
            elif following not in state:
                visit(following, stack + [following])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return cycles


def guarded_imports() -> list[str]:
    """First-party imports inside `try: ... except ImportError` (as if an app could be missing)."""
    found = []
    for path in _source_files():
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Try):
                continue
            caught = {ast.unparse(handler.type) for handler in node.handlers if handler.type is not None}
            if not any("ImportError" in text or "ModuleNotFoundError" in text for text in caught):
                continue
            for statement in node.body:
                for name, _ in _imports(statement, module, path.name == "__init__.py"):
                    if _first_party(name):
                        found.append(f"{module}: imports {name} inside try/except ImportError")
    return found


def test_dependencies_run_one_way_along_the_flow():
    assert violations(import_graph()) == []


def test_no_cycle_between_apps():
    assert app_cycles(import_graph()) == []


def test_no_first_party_import_is_guarded_by_except_import_error():
    assert guarded_imports() == []


# The checks themselves must be able to fail: each is run on a small graph with the fault in it.

def test_an_import_from_annotate_into_training_is_caught():
    graph = {"annotate.export.services": {"training.models"}}
    assert violations(graph) == ["annotate.export.services imports training.models: annotate never imports training "
                                 "(only mining.text)"]


def test_training_reading_annotate_internals_is_caught():
    assert violations({"training.retraining": {"annotate.judging.services"}})
    assert violations({"training.retraining": {"annotate.export.services", "mining.text.bm25"}}) == []


def test_a_cycle_between_apps_is_caught():
    graph = {"mining.fusion": {"training.registry"}, "training.evaluation": {"mining.pipeline"}}
    assert app_cycles(graph) == [["mining", "training", "mining"]]
    assert app_cycles({"mining.fusion": {"training.registry"}, "training.evaluation": {"mining.text.bm25"}}) == []


def test_a_guarded_first_party_import_is_caught(tmp_path, monkeypatch):
    package = tmp_path / "annotate"
    package.mkdir()
    (package / "guarded.py").write_text("try:\n    from mining.text import tokenize\nexcept ImportError:\n    tokenize = None\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["REPO"]), "REPO", tmp_path)
    (tmp_path / "mining").mkdir()
    (tmp_path / "training").mkdir()
    (tmp_path / "config").mkdir()
    assert guarded_imports() == ["annotate.guarded: imports mining.text inside try/except ImportError",
                                 "annotate.guarded: imports mining.text.tokenize inside try/except ImportError"]


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_library_importing_an_app_is_caught(library):
    assert violations({f"{library}.x": {"annotate.models"}})
