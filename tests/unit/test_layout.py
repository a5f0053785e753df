"""The layout of ``curate/`` stays readable: one package per step of the flow, no import cycles, no oversized module.

The import graph is read from the source (every ``import`` and ``from ... import``, also those inside functions),
so a cycle hidden behind a lazy import counts too; imports under ``if TYPE_CHECKING:`` are never run and do not.
Edges go from a module to the module it names; importing
``curate.a.b`` does not count as importing the package ``curate.a`` itself.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "curate"
MAX_LINES = 400
TOP_LEVEL_MODULES = {"__init__.py", "__main__.py", "errors.py"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:`` (imports for type hints only, never run)."""
    out: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        out.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of ``known`` (or outside curate) that ``path`` imports, with relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:  # `from curate.x import y` names module curate.x.y when it is one
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    return found


def import_graph() -> dict[str, set[str]]:
    """``{module: modules it imports}`` for every module of ``curate`` (targets may lie outside curate)."""
    modules = _modules()
    return {name: _imports(name, path, set(modules)) - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle among the modules of ``graph`` (``[a, b, ..., a]``), or ``None``."""
    inside = {name: {t for t in targets if t in graph} for name, targets in graph.items()}
    try:
        graphlib.TopologicalSorter(inside).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def test_the_import_graph_is_read_from_the_source():
    graph = import_graph()
    assert "curate.cli.main" in graph
    assert "curate.store.database" in graph["curate.store.workspace"]
    assert any(t.startswith("curate.ingest.") for t in graph["curate.ingest.sources"])
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None  # the check can fail
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_inside_curate():
    assert find_cycle(import_graph()) is None


def test_curate_never_imports_the_app_or_the_recipes():
    graph = import_graph()
    bad = [(a, b) for a, targets in graph.items() for b in targets if b.split(".")[0] in ("apps", "recipes")]
    assert bad == []
    text = "\n".join(p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py"))
    assert "import_module(\"apps" not in text and "import_module('apps" not in text


def test_no_package_shares_its_name_with_a_module_beside_it():
    clashes = [str(d.relative_to(ROOT)) for d in PACKAGE.rglob("*")
               if d.is_dir() and (d.parent / f"{d.name}.py").exists()]
    assert clashes == []


def test_the_top_level_holds_only_packages_and_the_entry_modules():
    files = {p.name for p in PACKAGE.iterdir() if p.is_file() and p.suffix == ".py"}
    assert files == TOP_LEVEL_MODULES
    packages = [d for d in PACKAGE.iterdir() if d.is_dir() and d.name != "__pycache__"]
    assert all((d / "__init__.py").exists() for d in packages), "a folder without __init__.py"
    assert len(packages) >= 10


def test_no_module_over_the_line_limit():
    sources = [*PACKAGE.rglob("*.py"), *(ROOT / "apps").rglob("*.py"), *(ROOT / "recipes").rglob("*.py")]
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in sources}
    long = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert long == {}


def test_every_module_says_in_its_first_line_what_it_is_for():
    missing = []
    for name, path in _modules().items():
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        if not doc or not doc.splitlines()[0].strip():
            missing.append(name)
    assert missing == []


def test_no_module_is_named_after_a_speed_or_a_vague_idea():
    vague = {"fast", "common", "utils", "util", "misc", "helpers", "_common"}
    named = [str(p.relative_to(ROOT)) for p in [*PACKAGE.rglob("*.py"), *(ROOT / "recipes").rglob("*.py")]
             if p.stem in vague]
    assert named == []


def test_command_modules_do_not_import_each_other():
    graph = import_graph()
    shared = {"curate.cli", "curate.cli.options", "curate.cli.output", "curate.cli.progress"}
    commands = [m for m in graph if m.startswith("curate.cli.") and m not in shared | {"curate.cli.main"}]
    crossing = {m: sorted(t for t in graph[m] if t.startswith("curate.cli") and t not in shared) for m in commands}
    assert {m: t for m, t in crossing.items() if t} == {}
    assert set(commands) <= graph["curate.cli.main"]  # the entry module registers every command module


def test_every_dotted_curate_name_in_the_readme_resolves():
    import importlib
    import re

    names = set(re.findall(r"`(curate(?:\.[A-Za-z_]+)+)`", (ROOT / "README.md").read_text(encoding="utf-8")))
    names |= set(re.findall(r"\b(curate(?:\.[A-Za-z_]+){2,})", (ROOT / "README.md").read_text(encoding="utf-8")))
    names.discard("curate.apps")  # the entry-point group, not a module
    assert {"curate.selectors.StreamGate", "curate.loop.stopping.stopping_report"} <= names
    for name in sorted(names):
        module, _, attr = name.rpartition(".")
        try:
            importlib.import_module(name)
        except ImportError:
            assert hasattr(importlib.import_module(module), attr), name
