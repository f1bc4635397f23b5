"""Backups end to end: the stand-in's SQLite database (the shared one every release uses, shared/db/db.sqlite3, which
only the app's user `qms` may read or write), an S3-compatible server (moto) on this machine's loopback. A restore
stops the served release's instance (qms-backend@<id>), saves the database it replaces, and starts it again."""
import os
import shlex
import socket
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error, fab
from tests.standin.conftest import deploy_example_app, get, remove_standin, served
from tests.standin.harness import project_exe

pytestmark = pytest.mark.standin
BUCKET = "qms-backups"
DB = "/home/ubuntu/QMS/shared/db/db.sqlite3"
AS_APP = "sudo -u qms"   # the database's directory is the app's user's alone (0700)


def start_moto(auth: bool):
    """moto's S3 server on loopback with a bucket; with `auth`, every call after that one is authenticated (and no
    key is valid: moto's signature check mishandles prefixes with '/', so the working tests run without it)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, **({"INITIAL_NO_AUTH_ACTION_COUNT": "1"} if auth else {})}
    server = subprocess.Popen([project_exe("moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    import boto3
    for _ in range(100):
        try:
            boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="setup",
                         aws_secret_access_key="setup").create_bucket(Bucket=BUCKET)
            return server, url
        except Exception:
            time.sleep(0.1)
    server.kill()
    pytest.fail("moto_server did not start")


@pytest.fixture(scope="module")
def s3_endpoint():
    server, url = start_moto(auth=False)
    yield url, "AKIAQMSTESTKEY", "test-secret-access-key"
    server.terminate()
    server.wait()


@pytest.fixture(scope="module")
def box(tmp_path_factory, s3_endpoint):
    url, key_id, secret = s3_endpoint
    tmp = tmp_path_factory.mktemp("backups")
    s = deploy_example_app("qmsbak", tmp, settings=(
        f"  backups:\n    keep: 3\n    local_dir: {tmp / 'local'}\n"
        f"    s3:\n      bucket: {BUCKET}\n      endpoint_url: {url}\n      region: us-east-1\n"),
        secrets=f"AWS_ACCESS_KEY_ID={key_id}\nAWS_SECRET_ACCESS_KEY={secret}\n")
    assert s.fab("manage", "seed_defect_data").returncode == 0
    yield s
    remove_standin(s)


def rows(box) -> int:
    return int(box.ssh(f"{AS_APP} sqlite3 {DB} 'select count(*) from quality_defect'").stdout)


def assert_database_private(box) -> None:
    """What a restore puts in place is the app's, as before: owned by qms, 0600, in its 0700 directory."""
    assert box.ssh(f"sudo stat -c '%U %a' {DB} $(dirname {DB})").stdout.split() == ["qms", "600", "qms", "700"]


def variant(box, tmp_path, secrets: str) -> Path:
    """A settings file for the same stand-in with other secrets."""
    conf, path = tmp_path / "standin.yaml", tmp_path / "other.env"
    path.write_text(secrets)
    path.chmod(0o600)
    conf.write_text(box.conf.read_text().replace(f"secrets_file: {box.secrets}", f"secrets_file: {path}"))
    return conf


def test_backup_while_the_app_writes_is_consistent_and_reaches_s3(box):
    insert = ("insert into quality_defect(title, severity, status, created_at) "
              "values ('load', 'low', 'open', datetime('now'))")
    loop = f"for i in $(seq 400); do sqlite3 {DB} {shlex.quote(insert)}; done"
    writer = subprocess.Popen(["ssh", "-F", str(box.ssh_config), box.name, f"{AS_APP} sh -c {shlex.quote(loop)}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    result = box.fab("backup", "--download")
    writer.wait(timeout=120)
    assert result.returncode == 0, result.stderr
    assert "integrity_check ok" in result.stdout and "checksum verified, encryption AES256" in result.stdout
    bid = result.stdout.split("backup ")[1].split(":")[0]
    local = next(Path(result.stdout.split("downloaded to ")[1].split()[0]).parent.glob(f"{bid}*.gz"))
    plain = local.with_suffix("")
    subprocess.run(f"gunzip -c {local} > {plain}", shell=True, check=True)
    import sqlite3
    con = sqlite3.connect(plain)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert 4 <= con.execute("select count(*) from quality_defect").fetchone()[0] <= rows(box)
    listing = box.fab("backups")
    assert listing.returncode == 0
    line = next(l for l in listing.stdout.splitlines() if bid in l)
    assert "server" in line and "local" in line and "s3" in line


def test_restore_round_trip_from_each_place(box):
    box.fab("backup")
    before = rows(box)
    for source in ("server", "local", "s3"):
        box.ssh(f"{AS_APP} sqlite3 {DB} 'delete from quality_defect'")
        assert rows(box) == 0
        result = box.fab("restore", "latest", "--from", source)
        assert result.returncode == 0, f"{source}: {result.stdout}{result.stderr}"
        assert rows(box) >= before - 400 and rows(box) > 0
        assert_database_private(box)
        code, body = get(box, "/api/defects/")
        assert code == 200 and '"title"' in body


def test_restore_stops_the_app_before_it_saves_the_database(box):
    """The copy of the database a restore replaces is taken once the served instance has stopped: what the app
    wrote between that copy and the restore was lost when the copy came first."""
    unit = f"qms-backend@{served(box)}.service"
    assert box.fab("backup").returncode == 0
    assert get(box, "/api/health/")[0] == 200     # running (socket activation starts it on a request)
    assert box.ssh(f"systemctl is-active {unit}").stdout.strip() == "active"
    result = box.fab("restore", "latest")
    assert result.returncode == 0, result.stdout + result.stderr
    saved = result.stdout.split("the one it replaced is backup ")[1].split(")")[0]
    stopped = box.ssh(f"systemctl show -p InactiveEnterTimestamp --value --timestamp=us+utc {unit}").stdout.strip()
    stopped_at = datetime.strptime(stopped, "%a %Y-%m-%d %H:%M:%S.%f %Z").replace(tzinfo=timezone.utc).timestamp()
    saved_at = float(box.ssh(f"stat -c %.6Y ~/QMS/backups/{saved}.sqlite3.gz").stdout)
    assert stopped_at < saved_at, f"{unit} stopped at {stopped}, after backup {saved} was written"
    assert box.ssh(f"systemctl is-active {unit}").stdout.strip() == "active"
    assert get(box, "/api/health/")[0] == 200


def test_a_damaged_backup_is_refused_and_the_live_database_untouched(box):
    made = box.fab("backup")
    bid = made.stdout.split("backup ")[1].split(":")[0]
    path = f"/home/ubuntu/QMS/backups/{bid}.sqlite3.gz"
    box.ssh(f"printf 'XXXX' | dd of={path} bs=1 seek=100 conv=notrunc status=none")
    before = box.ssh(f"sudo sha256sum {DB}").stdout
    assert_one_line_error(box.fab("restore", bid), f"backup {bid} does not match its checksum")
    # a backup whose checksum matches but which is not a database: the integrity check refuses it
    box.ssh(f"head -c 5000 /dev/urandom | gzip > {path} && sha256sum {path} | sed 's# .*#  {bid}.sqlite3.gz#' "
            f"> {path}.sha256")
    assert_one_line_error(box.fab("restore", bid), f"backup {bid}", "integrity_check")
    assert box.ssh(f"sudo sha256sum {DB}").stdout == before
    assert get(box, "/api/health/")[0] == 200


def test_retention_removes_the_oldest(box):
    for _ in range(4):
        assert box.fab("backup").returncode == 0
        time.sleep(1.1)   # ids are made of seconds
    names = box.ssh("ls ~/QMS/backups | grep -c 'sqlite3.gz$'").stdout.strip()
    assert names == "3"


def test_s3_errors_are_one_line(box, tmp_path, s3_endpoint):
    checking, url = start_moto(auth=True)
    try:
        wrong = variant(box, tmp_path, secrets="SECRET_KEY=x0123456789\nAWS_ACCESS_KEY_ID=AKIAWRONG\n"
                                             "AWS_SECRET_ACCESS_KEY=wrongwrongwrong\n")
        wrong.write_text(wrong.read_text().replace(s3_endpoint[0], url))
        assert_one_line_error(fab("-f", wrong, "backup"), "refused the credentials (InvalidAccessKeyId)",
                              "AWS_ACCESS_KEY_ID")
    finally:
        checking.terminate()
        checking.wait()
    missing = tmp_path / "missing.yaml"
    missing.write_text(box.conf.read_text().replace(f"bucket: {BUCKET}", "bucket: no-such-bucket"))
    assert_one_line_error(fab("-f", missing, "backup"), "the bucket no-such-bucket does not exist")
    none = box.conf.read_text().replace(f"bucket: {BUCKET}", "bucket: null")
    (tmp_path / "none.yaml").write_text(none)
    assert_one_line_error(fab("-f", tmp_path / "none.yaml", "restore", "latest", "--from", "s3"), "no S3 bucket is set")


def test_scheduled_backups_run_from_a_systemd_timer(box):
    result = box.fab("backup", "--schedule")
    assert result.returncode == 0, result.stderr
    assert "qms-backup.timer" in box.ssh("systemctl list-timers --all --no-pager").stdout
    box.ssh("sudo systemctl start qms-backup.service")
    assert "scheduled.sqlite3.gz" in box.ssh("ls ~/QMS/backups").stdout
    assert box.fab("backup", "--unschedule").returncode == 0
    assert "qms-backup.timer" not in box.ssh("systemctl list-timers --all --no-pager").stdout


def test_a_restore_the_app_cannot_run_on_is_undone(box):
    """A sound SQLite file without the app's tables passes every check but the health check: the database that
    was there before comes back."""
    import sqlite3
    local = Path(box.conf.read_text().split("local_dir: ")[1].split()[0])
    local.mkdir(parents=True, exist_ok=True)
    bid = "20200101-000000-empty"
    plain = local / "empty.sqlite3"
    sqlite3.connect(plain).execute("create table unrelated (x)").connection.commit()
    packed = local / f"{bid}.sqlite3.gz"
    subprocess.run(f"gzip -c {plain} > {packed}", shell=True, check=True)
    digest = subprocess.run(["sha256sum", packed], capture_output=True, text=True).stdout.split()[0]
    (local / f"{bid}.sqlite3.gz.sha256").write_text(f"{digest}  {bid}.sqlite3.gz\n")
    before = rows(box)
    result = box.fab("restore", bid, "--from", "local")
    assert_one_line_error(result, f"restore of {bid} failed and was undone", "not healthy", alone=False)
    assert rows(box) == before
    assert_database_private(box)
    assert get(box, "/api/health/")[0] == 200
