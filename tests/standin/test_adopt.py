"""Servers from before whole-app releases, taken over by `setup`: one set up the guide's way (a clone in
/home/ubuntu/QMS with backend/db.sqlite3 inside, uvicorn on :8000 as ubuntu, a plain frontend/out) and one set up by
this tool's last release before them. Data intact (row counts), the old layout retired once the new release serves."""
import subprocess

import pytest
import yaml

from tests.conftest import REPO
from tests.export_fixture import make_export
from tests.standin.conftest import get, make_standin, remove_standin, stamp_export, with_example_app
from tests.standin.harness import project_exe

pytestmark = pytest.mark.standin

# This tool's last commit before whole-app releases: what "a server set up by the current release" ran.
BEFORE_RELEASES = "fd14b780017487c41992c134906d5684051c2811"

GUIDE_UNIT = """[Unit]
Description=QMS backend (the guide's unit)
After=network.target

[Service]
User=ubuntu
WorkingDirectory=/home/ubuntu/QMS/backend
EnvironmentFile=/home/ubuntu/QMS/.env
ExecStart=/home/ubuntu/QMS/backend/.venv/bin/uvicorn backend.asgi:application --host 127.0.0.1 --port 8000
Restart=always

[Install]
WantedBy=multi-user.target
"""


@pytest.fixture
def box(tmp_path):
    s = with_example_app(make_standin("qmsadopt", tmp_path), tmp_path, settings="  setup:\n    superuser: ''\n")
    s.tmp = tmp_path
    yield s
    remove_standin(s)


def rows(box, database: str) -> int:
    return int(box.ssh(f"sudo sqlite3 {database} 'select count(*) from quality_defect'").stdout)


def taken_over(box, before: int) -> None:
    """What every adopted server shows after the new setup: the same data, served by a release, no old units."""
    assert rows(box, "/home/ubuntu/QMS/shared/db/db.sqlite3") == before
    code, body = get(box, "/api/defects/")
    assert code == 200 and body.count('"title"') == before
    assert box.ssh("systemctl cat qms-backend.service", check=False).returncode != 0   # the old unit is gone
    assert box.ssh("ss -Hltn 'sport = :8000'").stdout.strip() == ""
    assert box.ssh("test -f ~/QMS/backend/db.sqlite3.before-releases && test ! -e ~/QMS/.env "
                   "&& readlink ~/QMS/frontend/out").stdout.strip() == "../current/frontend/out"
    assert [f for f in box.ssh("ls ~/QMS/backups").stdout.split() if f.endswith("-pre-adopt.sqlite3.gz")]
    assert box.ssh("git -C ~/QMS status --porcelain").stdout == ""   # nothing the takeover left counts as an edit


def test_a_server_set_up_the_guides_way_is_taken_over(box):
    repo = yaml.safe_load(box.conf.read_text())["qms"]["repo"]
    env = ('SECRET_KEY="guide-era-key-0123456789abcdefghijklmnop"\nDEBUG="0"\n'
           'ALLOWED_HOSTS="qms.test,127.0.0.1,localhost"\nCORS_ALLOWED_ORIGINS="https://qms.test"\n'
           'CSRF_TRUSTED_ORIGINS="https://qms.test"\nDATABASE_PATH="/home/ubuntu/QMS/backend/db.sqlite3"\n'
           'STATIC_ROOT="/home/ubuntu/QMS/backend/staticfiles"\n')
    (box.root / "home/ubuntu/guide.env").write_text(env)   # the stand-in's /tmp is its own tmpfs
    (box.root / "home/ubuntu/qms-backend.service").write_text(GUIDE_UNIT)
    box.ssh(f"git clone -q {repo} ~/QMS && cp ~/guide.env ~/QMS/.env && chmod 600 ~/QMS/.env "
            "&& python3 -m pip install -q --user --break-system-packages uv && cd ~/QMS/backend "
            "&& ~/.local/bin/uv sync -q && set -a && . ~/QMS/.env && set +a "
            "&& .venv/bin/python manage.py migrate -v 0 && .venv/bin/python manage.py seed_defect_data "
            "&& sudo cp ~/qms-backend.service /etc/systemd/system/ && sudo systemctl daemon-reload "
            "&& sudo systemctl enable -q --now qms-backend.service")
    make_export(box.root / "home/ubuntu/QMS/frontend/out", marker="guide")
    box.ssh("sudo chown -R ubuntu: ~/QMS/frontend/out && sleep 3 && curl -sf http://127.0.0.1:8000/api/health/")
    before = rows(box, "/home/ubuntu/QMS/backend/db.sqlite3")
    assert before >= 1

    stamp_export(box, "adopted")
    result = box.fab("setup", timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "adopted /home/ubuntu/QMS/backend/db.sqlite3" in result.stdout
    taken_over(box, before)
    assert box.ssh("test -d ~/QMS/frontend/out.before-releases", check=False).returncode == 0


def test_a_server_set_up_by_this_tools_release_before_releases_is_taken_over(box):
    old = box.tmp / "old-tool"
    old.mkdir()
    archived = subprocess.run(f"git -C {REPO} archive {BEFORE_RELEASES} | tar -x -C {old}", shell=True,
                              capture_output=True, text=True)
    assert archived.returncode == 0, f"this test needs the repository's history: {archived.stderr}"
    settings = yaml.safe_load((old / "conf/standin.yaml").read_text())
    settings["ssh_config_path"] = str(box.ssh_config)
    ours = yaml.safe_load(box.conf.read_text())["qms"]
    settings["qms"].update({key: ours[key] for key in ("env", "host", "app_dir", "secrets_file")})
    settings["qms"]["setup"]["superuser"] = ""
    conf = box.tmp / "old.yaml"
    conf.write_text(yaml.safe_dump(settings))
    stamp_export(box, "old tool")
    made = subprocess.run([project_exe("fab"), "-f", str(conf), "setup"], cwd=old, capture_output=True, text=True,
                          timeout=1800)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr
    assert box.ssh("systemctl is-active qms-backend.service").stdout.strip() == "active"
    before = rows(box, "/home/ubuntu/QMS/backend/db.sqlite3")
    assert before >= 1

    result = box.fab("setup", timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "adopted /home/ubuntu/QMS/backend/db.sqlite3" in result.stdout
    taken_over(box, before)
    assert box.ssh("systemctl cat qms-backend.socket", check=False).returncode != 0
