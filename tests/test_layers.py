"""Layering: the import graph of derive/ (top-level and function-level imports alike) is acyclic,
imports live at the top of each module (only cli.py imports stages inside its command functions),
and the leaf modules import no stage."""
import ast
import copy
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "derive"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py"))


def _target(node, module: str) -> list[tuple[str, bool]]:
    """derive modules named by one import node (module names; '__init__' for the package)."""
    out = []
    if isinstance(node, ast.ImportFrom):
        if node.level == 1 or (node.level == 0 and (node.module or "").split(".")[0] == "derive"):
            base = node.module if node.level == 1 else ".".join((node.module or "").split(".")[1:]) or None
            if base:
                out.append(base.split(".")[0])
            else:                              # from . import x, y
                out.extend(a.name for a in node.names)
        elif node.level > 1:
            raise AssertionError(f"{module}: relative import beyond the package")
    elif isinstance(node, ast.Import):
        for a in node.names:
            parts = a.name.split(".")
            if parts[0] == "derive":
                out.append(parts[1] if len(parts) > 1 else "__init__")
    return [m for m in out if m in MODULES]


def import_graph() -> tuple[dict, dict]:
    """({module: set of derive modules it imports}, {module: [function-level imports]}): a copy
    of the graph parsed once per test process (five tests read it; parsing every module of
    derive/ takes about a second)."""
    return copy.deepcopy(_parsed_import_graph())


@functools.lru_cache(maxsize=None)
def _parsed_import_graph() -> tuple[dict, dict]:
    graph, local = {}, {}
    for name in MODULES:
        tree = ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8"))
        edges, inner = set(), []
        top = set(id(n) for n in tree.body)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets = _target(node, name)
                edges.update(targets)
                if id(node) not in top and targets:
                    inner.extend(targets)
        graph[name] = edges - {name}
        local[name] = inner
    return graph, local


def find_cycle(graph: dict) -> list | None:
    state: dict = {}
    stack: list = []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == "open":
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = "done"
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_the_graph_sees_the_known_edges():
    graph, _ = import_graph()
    assert "check" in graph["errata"] and {"escape", "files", "expr"} <= graph["spec"]
    assert "build" in graph["cli"] and {"render", "errata"} <= graph["build"]


def test_import_graph_is_acyclic():
    graph, _ = import_graph()
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


# The package's API facade (derive.load, derive.check_claims, derive.Problem; derive.api) is loaded on first attribute access
# (PEP 562 __getattr__), so that importing derive.cli does not import SymPy: `derive --help` and
# `derive solve` start without it; and derive.api imports derive.display (the renderers) on the first
# notebook display, so that `derive.load` and the engine's numbers do not wait for them.  Those
# deferred imports are allowed, and nothing else.
DEFERRED = {"__init__": ["api"], "api": ["display"]}


def test_imports_are_at_the_top_except_in_the_cli():
    _, local = import_graph()
    offenders = {m: v for m, v in local.items() if v and m != "cli" and DEFERRED.get(m) != v}
    assert not offenders, f"function-level imports of derive modules: {offenders}"


def test_the_command_line_starts_without_sympy():
    import subprocess
    import sys
    code = ("import sys, derive.cli; derive.cli.main(['solve', 'two-two-two', '--json']); "
            "print('sympy' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=PACKAGE.parent)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "False"


def test_leaf_modules_import_no_stage():
    graph, _ = import_graph()
    assert graph["errors"] == set()
    assert graph["escape"] <= {"errors"}
    assert graph["files"] <= {"errors"}
    assert graph["tex"] <= {"errors"}
    assert graph["templating"] <= {"errors", "files", "escape"}


def test_only_the_cli_uses_build_and_nothing_uses_the_cli():
    graph, _ = import_graph()
    assert [m for m, e in graph.items() if "build" in e] == ["cli"]
    assert [m for m, e in graph.items() if "cli" in e] == ["__main__"]
    assert "render" not in graph["errata"] and "errata" not in graph["check"] and "errata" not in graph["render"]
