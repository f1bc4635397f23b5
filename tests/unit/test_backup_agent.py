"""The backup agent run here as the server runs it (python3 -c, its JSON answer on stdout): a database path with
URI characters in it, a database that is not there, and a disk that fills up half-way."""
import gzip
import os
import resource
import sqlite3
import subprocess

from tasks import remote


def agent(*args, file_size_limit=None) -> tuple[int, dict]:
    def limit():   # what a full disk does to a writer, without a disk to fill: writes past the limit fail
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
    result = subprocess.run(["sh", "-c", remote.command("backup_agent", *args)], capture_output=True, text=True,
                            preexec_fn=limit if file_size_limit else None, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, remote.parse_answer(result.stdout)


def make_database(path, rows=1, size=10) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE defect (id INTEGER PRIMARY KEY, note BLOB)")
    con.executemany("INSERT INTO defect (note) VALUES (?)", [(os.urandom(size),) for _ in range(rows)])
    con.commit()
    con.close()


def rows_in_backup(directory, bid) -> int:
    plain = directory / "restored.sqlite3"
    plain.write_bytes(gzip.decompress((directory / f"{bid}.sqlite3.gz").read_bytes()))
    con = sqlite3.connect(plain)
    try:
        return con.execute("SELECT count(*) FROM defect").fetchone()[0]
    finally:
        con.close()


def test_a_database_path_with_uri_characters_is_the_one_backed_up(tmp_path):
    app = tmp_path / "qms#2 ?100%"
    app.mkdir()
    make_database(app / "db.sqlite3", rows=3)
    code, answer = agent("create", app / "db.sqlite3", tmp_path / "backups", "manual", 14, 0)
    assert code == 0 and "error" not in answer, answer
    assert rows_in_backup(tmp_path / "backups", answer["id"]) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backups", "qms#2 ?100%"]   # no file made on the way


def test_a_missing_database_is_refused_not_created(tmp_path):
    code, answer = agent("create", tmp_path / "db.sqlite3", tmp_path / "backups", "manual", 14, 0)
    assert code == 1 and answer["error"] == f"no database at {tmp_path / 'db.sqlite3'} yet"
    assert not (tmp_path / "db.sqlite3").exists()


def test_a_full_disk_is_one_error_and_leaves_no_partial_backup(tmp_path):
    make_database(tmp_path / "db.sqlite3", rows=200, size=4096)          # about 1 MB
    code, answer = agent("create", tmp_path / "db.sqlite3", tmp_path / "backups", "manual", 14, 0,
                         file_size_limit=256 << 10)
    assert code == 1 and answer["error"].startswith(f"cannot back up {tmp_path / 'db.sqlite3'} into "
                                                    f"{tmp_path / 'backups'}: "), answer
    assert os.listdir(tmp_path / "backups") == []
    code, answer = agent("list", tmp_path / "backups")
    assert answer == {"backups": []}
