"""The suite as a fresh machine runs it: the programs this project installs are found in its own virtualenv, never
on PATH, where an earlier install on a developer's machine would stand in for what scripts/install must provide."""
import ast

import pytest

from tests.conftest import REPO, run_tool

# console scripts that come from this project's virtualenv, not from the system
PROJECT_PROGRAMS = {"fab", "inv", "pytest", "moto_server"}
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
SUBPROCESS_CALLS = {"run", "Popen", "call", "check_call", "check_output"}


def path_lookups(source: str) -> list:
    """(line, text) of each place that looks a project program up on PATH: `shutil.which("fab")`, or a subprocess
    command whose program is the bare name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        first = node.args[0]
        if name in SUBPROCESS_CALLS and isinstance(first, (ast.List, ast.Tuple)) and first.elts:
            first = first.elts[0]
        elif name != "which":
            continue
        # `x or "fab"` falls back to the bare name too
        candidates = first.values if isinstance(first, ast.BoolOp) else [first]
        if any(isinstance(c, ast.Constant) and c.value in PROJECT_PROGRAMS for c in candidates):
            found.append((node.lineno, ast.unparse(node)[:80]))
    return found


def test_the_lookup_check_sees_both_shapes():
    found = path_lookups('shutil.which("fab")\nsubprocess.Popen([shutil.which("fab") or "fab", "-f", c])\n'
                         'subprocess.run(["moto_server", "-p", "1"])')
    assert {line for line, _ in found} == {1, 2, 3}
    assert path_lookups('subprocess.run(["git", "status"])\nshutil.which("npm")') == []


def test_no_test_or_benchmark_looks_a_project_program_up_on_path():
    sources = [p for p in [*REPO.glob("tests/**/*.py"), *REPO.glob("bench/*.py")] if "example_app" not in p.parts]
    offenders = [f"{p.relative_to(REPO)}:{line}: {text}" for p in sources
                 for line, text in path_lookups(p.read_text())]
    assert not offenders, "use tests.standin.harness.project_exe:\n" + "\n".join(offenders)


@pytest.mark.parametrize("tool", ["fab", "inv"])
def test_the_projects_own_tools_run_with_only_the_systems_path(tool):
    result = run_tool(tool, "--list", env={"PATH": SYSTEM_PATH})
    assert result.returncode == 0, result.stderr
    assert "deploy" in result.stdout


def test_no_two_test_modules_share_a_name():
    # without packages, pytest imports a test module by its file name: a second one of that name stops the whole run
    names = [path.name for path in (REPO / "tests").rglob("test_*.py")]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
