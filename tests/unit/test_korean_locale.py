"""The local tasks on a Korean legacy code page (what a Korean Windows has: cp949; here its Linux twin, EUC-KR,
with PYTHONUTF8=0): a repository with Hangul file names and a Korean commit subject (git writes both in UTF-8, as
on Windows), settings in UTF-8 with Korean comments and a BOM, a secrets file saved by PowerShell 5.1. Correct
results and one-line errors, never a traceback. The repository's own path stays ASCII: Linux hands a legacy
locale's argv and paths over as bytes, Windows does not (tests/unit/test_local_files.py covers that side)."""
import shutil
import subprocess

import pytest

from tests.conftest import KOREAN_LOCALE, REPO, run_tool

def korean(tool, *args) -> subprocess.CompletedProcess:
    return run_tool(tool, *args, locale=KOREAN_LOCALE, timeout=300)


@pytest.fixture(scope="module", autouse=True)
def legacy_locale():
    if "ko_kr.euckr" not in subprocess.run(["locale", "-a"], capture_output=True, text=True).stdout.lower():
        pytest.fail(f"the {KOREAN_LOCALE[0]} locale is missing: scripts/install generates it")
    code_page = run_tool("inv", "--version", locale=KOREAN_LOCALE, env={"PYTHONWARNINGS": "ignore"})
    assert code_page.returncode == 0, code_page.stderr


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=김철수", "-c", "user.email=k@example.com", *args],
                   check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    """The team's checkout: the example app, a Hangul file name, a Korean commit subject."""
    app = tmp_path / "app"
    shutil.copytree(REPO / "tests/example_app", app,
                    ignore=shutil.ignore_patterns("node_modules", ".next", "out", ".venv", "__pycache__"))
    (app / "품질보고서.md").write_text("# 품질 보고서\n", encoding="utf-8")
    git(app, "init", "-q", "-b", "main")
    git(app, "add", "-A")
    git(app, "commit", "-q", "-m", "로그인 버그 수정")
    return app


@pytest.fixture
def conf(tmp_path, repo):
    secrets = tmp_path / "production.env"   # ASCII: see the module docstring
    secrets.write_text("SECRET_KEY=비밀-0123456789abcdefghijklmnopqrstuvwxyz\n", encoding="utf-8")
    secrets.chmod(0o600)
    path = tmp_path / "production.yaml"
    path.write_bytes("\ufeff# 운영 서버 설정 (메모장이 BOM을 붙여 저장)\nqms:\n  host: qms-prod   # 서버\n"
                     f"  app_dir: {repo}\n  secrets_file: {secrets}\n  domains: [qms.example.com]\n"
                     "  backend:\n    env:\n      QMS_BANNER: 품질관리 시스템\n".encode("utf-8"))
    return path


def test_check_secrets_sees_hangul_file_names_as_git_writes_them(repo):
    clean = korean("inv", "check-secrets", "--repo", repo)
    assert clean.returncode == 0, clean.stderr
    assert "no secrets tracked" in clean.stdout
    (repo / ".env.운영").write_text("SECRET_KEY=x\n", encoding="utf-8")
    git(repo, "add", "-f", ".env.운영")
    found = korean("inv", "check-secrets", "--repo", repo)
    assert found.returncode == 1 and "Traceback" not in found.stderr
    assert "git holds .env.운영 (matches .env.*): git rm --cached '.env.운영'" in found.stdout


def test_settings_in_utf8_with_korean_comments_and_a_bom(conf):
    result = korean("inv", "-f", conf, "settings", "--all")
    assert result.returncode == 0, result.stderr
    assert "settings ok" in result.stdout and "품질관리 시스템" in result.stdout


def test_a_secrets_file_saved_by_powershell_is_refused_in_one_line(conf, tmp_path):
    (tmp_path / "production.env").write_bytes("SECRET_KEY=비밀값\r\n".encode("utf-16"))
    result = korean("inv", "-f", conf, "settings")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'production.env'} is UTF-16 (what PowerShell 5.1's > writes): save it as UTF-8 (Set-Content "
        "-Encoding utf8, or your editor's Save with Encoding)"]


def test_app_check_and_the_builds_plan_read_utf8_sources(conf, repo):
    (repo / "frontend/.env.local").write_text("# 로컬 개발용\nNEXT_PUBLIC_API_URL=http://localhost:8000/api\n",
                                              encoding="utf-8")
    settings = repo / "backend/backend/settings.py"
    settings.write_text("# 설정: 환경 변수에서 읽습니다\n" + settings.read_text(encoding="utf-8"), encoding="utf-8")
    checked = korean("inv", "-f", conf, "app-check")
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr
    planned = korean("inv", "--dry", "-f", conf, "build")
    assert planned.returncode == 0, planned.stderr
    assert "build: note: .env.local (http://localhost:8000/api) is ignored: the settings' value wins" in planned.stdout


def test_text_the_code_page_cannot_write_becomes_a_question_mark_not_a_traceback(tmp_path):
    conf = tmp_path / "emoji.yaml"
    conf.write_text('qms:\n  host: x\n  backend:\n    env:\n      QMS_BANNER: "품질 😀"\n', encoding="utf-8")
    result = korean("inv", "-f", conf, "settings", "--all")
    assert result.returncode == 0, result.stderr
    assert "'QMS_BANNER': '품질 ?'" in result.stdout
