"""The package layering, checked on the source (AST), function-local imports included.

Layers, lowest first (README "Layout"):

- core: ``lr_core/*.py`` and ``lr_core/data/``: imports nothing from the layers above, nor from
  ``slurm``, ``reports``, ``experiments`` or ``ablations``;
- ``lr_core/retrieval/``: imports the core only (not serve, pipeline, cli, slurm, reports,
  experiments, ablations);
- ``lr_core/serve/``: torch-free by construction: nothing it reaches, transitively, imports torch,
  transformers, lightning, peft or mteb;
- orchestration (``lr_core/pipeline/``, ``slurm/``): not the CLI, reports or experiments;
- ``lr_core/cli/``: the outermost layer, the only one that imports everything.

Also: no import loops among the project's modules, and no ``importlib.import_module`` with a
computed name outside the CLI (a hidden edge this check could not see).
"""
from __future__ import annotations

import ast
import sys
from functools import lru_cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("lr_core", "slurm", "reports", "experiments", "ablations")
TORCH_LIKE = {"torch", "transformers", "lightning", "peft", "mteb", "sentence_transformers", "accelerate"}
# modules allowed to load others by a computed name (the CLI's `lr bench NAME` table)
DYNAMIC_IMPORT_OK = {"lr_core.cli.commands"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@lru_cache(maxsize=None)
def modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            if "results" not in path.relative_to(REPO).parts:
                found[_module_name(path)] = path
    return found


def _resolve(name: str) -> str | None:
    """The project module an imported dotted name refers to (longest existing prefix)."""
    parts = name.split(".")
    while parts:
        cand = ".".join(parts)
        if cand in modules():
            return cand
        parts.pop()
    return None


@lru_cache(maxsize=None)
def imports(mod: str) -> tuple[frozenset[str], frozenset[str], tuple[int, ...]]:
    """(project modules, external top-level packages, lines of computed dynamic imports) of ``mod``,
    every import statement anywhere in the file (module level, functions, TYPE_CHECKING excluded)."""
    tree = ast.parse(modules()[mod].read_text(), filename=str(modules()[mod]))
    internal, external, dynamic = set(), set(), []
    type_checking = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_checking.update(id(n) for b in node.body for n in ast.walk(b))
    for node in ast.walk(tree):
        if id(node) in type_checking:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against this module's package
                base = mod.split(".")
                is_pkg = modules()[mod].name == "__init__.py"
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                root = ".".join(base + ([node.module] if node.module else []))
            else:
                root = node.module or ""
            names = [f"{root}.{a.name}" for a in node.names] or [root]
            names.append(root)
        elif isinstance(node, ast.Call) and ast.unparse(node.func) in ("importlib.import_module", "import_module",
                                                                        "__import__"):
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names = [arg.value]
            else:
                dynamic.append(node.lineno)
        for name in names:
            target = _resolve(name)
            if target is not None and target != mod:
                internal.add(target)
            elif target is None and name.split(".")[0] not in PACKAGES:
                external.add(name.split(".")[0])
    return frozenset(internal), frozenset(external), tuple(dynamic)


def layer(mod: str) -> str:
    top = mod.split(".")
    if top[0] != "lr_core":
        return top[0]
    if len(top) > 1 and top[1] in ("retrieval", "serve", "pipeline", "cli"):
        return top[1]
    return "core"


FORBIDDEN = {  # layer -> layers it must not import
    "core": {"retrieval", "serve", "pipeline", "cli", "slurm", "reports", "experiments", "ablations"},
    "retrieval": {"serve", "pipeline", "cli", "slurm", "reports", "experiments", "ablations"},
    "serve": {"pipeline", "cli", "slurm", "reports", "experiments", "ablations"},
    "pipeline": {"cli", "slurm", "reports", "experiments"},
    "slurm": {"cli", "reports", "experiments"},
    "ablations": {"retrieval", "serve", "pipeline", "cli", "slurm", "reports", "experiments"},
    "reports": {"cli", "serve", "pipeline", "slurm", "experiments"},
}


def test_the_check_sees_the_project():
    mods = modules()
    assert {"lr_core.modules", "lr_core.retrieval.evaluate", "lr_core.serve.bundle", "slurm.task",
            "lr_core.cli"} <= set(mods)
    # function-local imports count: the CLI imports its commands' modules inside functions
    assert {"lr_core.retrieval.evaluate", "slurm.task"} <= set().union(
        *(imports(m)[0] for m in mods if m.startswith("lr_core.cli")))


@pytest.mark.parametrize("low", sorted(FORBIDDEN))
def test_layers_import_downward_only(low):
    bad = [f"{m} -> {t} ({layer(t)})" for m in modules() if layer(m) == low
           for t in imports(m)[0] if layer(t) in FORBIDDEN[low]]
    assert not bad, f"{low} imports a layer above it:\n" + "\n".join(sorted(bad))


def _reach(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo.extend(imports(m)[0])
        # importing a.b.c runs a/__init__ and a/b/__init__ too
        parts = m.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in modules())
    return seen


def test_serve_is_torch_free_by_construction():
    serve = [m for m in modules() if layer(m) == "serve"]
    assert {"lr_core.serve.bundle", "lr_core.serve.server", "lr_core.serve.loadtest"} <= set(serve)
    bad = []
    for m in serve:
        for r in _reach(m):
            heavy = imports(r)[1] & TORCH_LIKE
            if heavy:
                bad.append(f"{m} reaches {r}, which imports {', '.join(sorted(heavy))}")
    assert not bad, "\n".join(sorted(set(bad)))


def test_no_import_loops():
    graph = {m: set(imports(m)[0]) for m in modules()}
    index, low, stack, on, loops = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                loops.append(sorted(comp))

    for m in sorted(graph):
        if m not in index:
            visit(m)
    assert not loops, "import loops:\n" + "\n".join(" <-> ".join(c) for c in loops)


def test_no_hidden_imports_by_computed_name():
    bad = [f"{m}:{line}" for m in modules() if m not in DYNAMIC_IMPORT_OK for line in imports(m)[2]]
    assert not bad, "import_module with a computed name (an edge no reader sees): " + ", ".join(bad)


def test_the_checker_catches_a_violation(tmp_path, monkeypatch):
    """Control: a planted upward import and a planted loop are reported."""
    fake = {"lr_core.a": tmp_path / "a.py", "lr_core.b": tmp_path / "b.py", "reports.x": tmp_path / "x.py"}
    fake["lr_core.a"].write_text("def f():\n    from lr_core.b import g\n    import reports.x\n")
    fake["lr_core.b"].write_text("from lr_core import a\nimport torch\n")
    fake["reports.x"].write_text("")
    monkeypatch.setattr(sys.modules[__name__], "modules", lambda: fake)
    imports.cache_clear()
    try:
        assert imports("lr_core.a")[0] == {"lr_core.b", "reports.x"}
        assert imports("lr_core.b") == (frozenset({"lr_core.a"}), frozenset({"torch"}), ())
        with pytest.raises(AssertionError, match="reports.x"):
            test_layers_import_downward_only("core")
        with pytest.raises(AssertionError, match="lr_core.a <-> lr_core.b"):
            test_no_import_loops()
    finally:
        imports.cache_clear()
