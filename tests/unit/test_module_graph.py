"""The task modules form no import cycle, counting imports inside functions: a cycle that only a lazy import hides
still ties the modules together (issue #14: nginx -> smoke -> browser_check -> nginx)."""
import ast
from pathlib import Path

TASKS = Path(__file__).resolve().parents[2] / "tasks"


def imports_of(path: Path) -> set[str]:
    """The task modules (tasks/<name>.py) that `path` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return {name for name in found if (TASKS / f"{name}.py").exists()}


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle, as the path that closes it, or []."""
    state: dict[str, str] = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return []

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return []


def test_the_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) == []


def test_task_modules_import_no_cycle():
    graph = {path.stem: imports_of(path) - {path.stem} for path in TASKS.glob("*.py") if path.stem != "__init__"}
    assert cycle(graph) == []
