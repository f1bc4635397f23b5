import os
import subprocess
from pathlib import Path

import pytest

from tests.standin.harness import REPO, project_exe


# A Korean Windows' code page (cp949), as a Linux locale: EUC-KR (scripts/install generates it)
KOREAN_LOCALE = ("ko_KR.EUC-KR", "euc-kr")


def run_tool(tool: str, *args, cwd=REPO, env=None, timeout=600, input=None, locale=None) -> subprocess.CompletedProcess:
    """Run `fab` or `inv` the way a user does, from the project root; `locale` (name, codec) runs it on that code
    page, Python's UTF-8 mode off, and reads its output as that code page writes it."""
    environ = {**os.environ, **(env or {})}
    if locale:
        environ = {k: v for k, v in environ.items() if not k.startswith(("LC_", "PYTHONUTF8", "PYTHONIOENCODING"))}
        environ.update(LC_ALL=locale[0], LANG=locale[0], PYTHONUTF8="0")
    return subprocess.run([project_exe(tool), *map(str, args)], cwd=cwd, capture_output=True, timeout=timeout,
                          encoding=locale[1] if locale else "utf-8", env=environ, input=input,
                          stdin=None if input else subprocess.DEVNULL)


def fab(*args, **kw) -> subprocess.CompletedProcess:
    return run_tool("fab", *args, **kw)


def assert_one_line_error(result, *fragments, alone=True):
    """A user mistake: non-zero exit, one `error:` line naming the problem, no traceback. alone=False allows
    other output before it on stderr (a build tool's own messages)."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if not alone:
        lines = lines[-1:]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def write_conf(tmp_path):
    """Write a settings file and return its path."""
    def write(text: str, name: str = "env.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return write
