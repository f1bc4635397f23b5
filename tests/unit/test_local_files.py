"""Local text in UTF-8 whatever the code page, and the Windows-only branches with the platform simulated."""
import shutil

import pytest

from tasks.core import local_files
from tasks.core.errors import UserError
from tasks.core.settings import defaults


def test_utf8_with_or_without_a_bom_is_read_and_utf16_or_a_code_page_is_refused(tmp_path):
    text = "# 운영 서버\nSECRET_KEY=비밀값\n"
    assert local_files.decode(text.encode("utf-8"), "s.env") == text
    assert local_files.decode(b"\xef\xbb\xbf" + text.encode("utf-8"), "s.env") == text     # Notepad's BOM
    with pytest.raises(UserError, match="s.env is UTF-16 .*: save it as UTF-8"):
        local_files.decode(text.encode("utf-16"), "s.env")                                 # PowerShell 5.1's >
    with pytest.raises(UserError, match="s.env is not UTF-8 .*: save it as UTF-8"):
        local_files.decode(text.encode("cp949"), "s.env")


def test_files_the_tool_writes_are_utf8_with_lf(tmp_path):
    path = tmp_path / "build-info.json"
    local_files.write_text(path, '{"env": "운영"}\n')
    assert path.read_bytes() == '{"env": "운영"}\n'.encode("utf-8")


def test_npm_on_windows_is_npm_cmd_never_the_extensionless_script():
    found = {"npm": r"C:\Program Files\nodejs\npm", "npm.cmd": r"C:\Program Files\nodejs\npm.cmd"}
    assert local_files.find_npm(found.get, windows=True) == r"C:\Program Files\nodejs\npm.cmd"
    assert local_files.find_npm(found.get, windows=False) == r"C:\Program Files\nodejs\npm"
    with pytest.raises(UserError, match="npm not found: install Node.js"):
        local_files.find_npm({"npm": "npm"}.get, windows=True)


def test_an_export_held_open_is_one_line_naming_the_fix(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()

    def held(path):   # what Windows raises when Explorer or a dev server has a file of out/ open
        raise PermissionError(32, "The process cannot access the file", str(out / "index.html"))
    monkeypatch.setattr(shutil, "rmtree", held)
    with pytest.raises(UserError, match=r"cannot remove .*out: .*index.html is in use .*close it and build again"):
        local_files.remove_tree(out)


def test_git_output_is_utf8_whatever_the_locale(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    local_files.local_git(repo, "init", "-q")
    (repo / "품질보고서.md").write_text("x", encoding="utf-8")
    listed = local_files.local_git(repo, "-c", "core.quotepath=false", "ls-files", "-o", "-z").stdout
    assert listed.split("\0")[0] == "품질보고서.md"


def test_a_hangul_repository_path_as_windows_hands_it_over(tmp_path):
    """Windows gives Python Unicode paths whatever the code page (as a UTF-8 locale does here), and git answers
    in UTF-8: read in the code page, 문서 would come back as 臾몄꽌 and `git -C` would miss the repository."""
    from tests.conftest import run_tool
    repo = tmp_path / "문서" / "앱"
    repo.mkdir(parents=True)
    local_files.local_git(repo, "init", "-q")
    top = local_files.local_git(repo, "rev-parse", "--show-toplevel").stdout.strip()
    assert top == str(repo)
    assert top.encode("utf-8").decode("cp949", errors="replace") != top      # what the code page would have made
    (repo / ".gitignore").write_text(".env\n", encoding="utf-8")
    result = run_tool("inv", "check-secrets", "--repo", repo)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    missing = len(defaults()["secrets_check"]["patterns"]) - 1   # all but .env
    assert f"error: {repo}: {missing} secret-file problem(s), listed above" in result.stderr
