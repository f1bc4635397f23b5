"""Secrets in git (guide section 10): patterns are data; the command line on a scratch repository."""
import subprocess

import pytest

from tasks.core.secret_files import offence, sample_path
from tasks.core.settings import defaults
from tests.conftest import REPO, assert_one_line_error, run_tool

PATTERNS = defaults()["secrets_check"]["patterns"]


@pytest.mark.parametrize("path, pattern", [
    (".env", ".env"), ("backend/.env.production", ".env.*"), ("deploy/server.pem", "*.pem"),
    ("id_rsa.pub", "id_rsa*"), ("backend/db.sqlite3", "*.sqlite3"), ("backups/2026.sqlite3.gz", "*.sqlite3.*"),
    ("a/backups/x", "backups/"), ("null", "null"), ("old.bak", "*.bak"),
    ("conf/production.env", "*.env"), ("app/conf/staging.env", "*.env"),
    (".ssh/id_ed25519", "id_ed25519*"), ("id_ecdsa", "id_ecdsa*"), ("keys/id_dsa", "id_dsa*"), ("deploy.key", "*.key"),
    ("backend/db.sqlite3.gz", "*.sqlite3.*"), ("db.sqlite3.xz", "*.sqlite3.*"), ("dump/qms.sql.gz", "*.sql.gz"),
    ("prod.dump", "*.dump"), ("backend/db.sqlite3-journal", "*-journal"), ("backend/db.sqlite3-wal", "*-wal"),
    ("data.db-shm", "*-shm"),
])
def test_offending_paths_name_their_pattern(path, pattern):
    assert offence(path, PATTERNS, ["*.example"]) == pattern


@pytest.mark.parametrize("path", [".env.example", "backend/.env.example", "README.md", "src/null.js", "backups.md",
                                  "conf/production.env.example", "docs/wal.md", "src/journal.ts", "envelope.py"])
def test_harmless_paths(path):
    assert offence(path, PATTERNS, ["*.example"]) is None


def test_samples_for_git_check_ignore():
    assert sample_path("*.pem") == "qms-check.pem" and sample_path("backups/") == "backups/qms-check"


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True)


def test_check_names_each_file_and_missing_ignore_then_the_hook_refuses_a_commit(tmp_path):
    repo = tmp_path / "app"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / ".gitignore").write_text("node_modules/\n")
    (repo / ".env").write_text("SECRET_KEY=x\n")
    (repo / "server.pem").write_text("-----BEGIN-----\n")
    (repo / ".env.example").write_text("SECRET_KEY=\n")
    git(repo, "add", ".")
    result = run_tool("inv", "check-secrets", "--repo", repo)
    assert_one_line_error(result, "secret-file problem(s)")
    for text in ("git holds .env (matches .env)", "git holds server.pem (matches *.pem)",
                 ".gitignore does not ignore *.sqlite3"):
        assert text in result.stdout
    assert ".env.example" not in result.stdout

    git(repo, "rm", "-q", "--cached", ".env", "server.pem")
    (repo / ".gitignore").write_text("\n".join(PATTERNS) + "\n")
    git(repo, "add", ".gitignore", ".env.example")
    ok = run_tool("inv", "check-secrets", "--repo", repo)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    git(repo, "commit", "-q", "-m", "clean")

    assert run_tool("inv", "install-hooks", "--repo", repo).returncode == 0
    (repo / "deploy.key").write_text("secret\n")
    git(repo, "add", "-f", "deploy.key")
    commit = subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-m", "x"],
                            capture_output=True, text=True)
    assert commit.returncode != 0 and "git holds deploy.key (matches *.key)" in commit.stdout + commit.stderr


def test_this_repository_is_clean():
    result = run_tool("inv", "check-secrets", "--repo", REPO)
    assert result.returncode == 0, result.stdout + result.stderr
