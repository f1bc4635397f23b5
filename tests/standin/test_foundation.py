"""The foundation end to end on the stand-in: reaching it, host keys, --dry, the host layer's operations."""
import os
import shutil
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, assert_one_line_error, fab
from tests.standin.conftest import STATE, make_standin, standin_cmd

pytestmark = pytest.mark.standin


def test_status_with_ssh_config_and_host_flags(standin):
    result = fab("-S", standin.ssh_config, "-H", standin.name, "status")
    assert result.returncode == 0, result.stderr
    pretty = next(line.split("=", 1)[1].strip('"') for line in
                  (standin.root / "etc/os-release").read_text().splitlines() if line.startswith("PRETTY_NAME="))
    assert pretty.startswith("Debian GNU/Linux 1") and pretty in result.stdout and "nginx" in result.stdout


def test_status_through_an_ssh_config_proxycommand(standin, tmp_path):
    # a jump host or a bastion reaches the server through a ProxyCommand: a pipe, not a socket, on this side
    config = tmp_path / "ssh_config"
    config.write_text(standin.ssh_config.read_text().rstrip("\n")
                      + f"\n  ProxyCommand {sys.executable} {REPO / 'bench/delay_relay.py'} %h %p 0\n")
    result = fab("-S", config, "-H", standin.name, "status")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "nginx" in result.stdout


def test_status_takes_the_host_from_the_settings_file(standin):
    result = standin.fab("status")
    assert result.returncode == 0, result.stderr
    assert f"{standin.name} (" in result.stdout


def test_unknown_host_is_refused_until_trusted(standin, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("")
    conf = tmp_path / "strict.yaml"
    conf.write_text(standin.conf.read_text().replace("qms:\n", f"qms:\n  ssh:\n    known_hosts: {known}\n"))
    assert_one_line_error(fab("-f", conf, "status"), "is not in known_hosts", "trust-host")

    wrong = "SHA256:" + "A" * 43
    assert_one_line_error(fab("-f", conf, "trust-host", "--fingerprint", wrong), f"not {wrong}", "not trusted")
    assert known.read_text() == ""

    real = subprocess.run(["ssh-keygen", "-lf", standin.root / "etc/ssh/ssh_host_ed25519_key.pub"],
                          capture_output=True, text=True, check=True).stdout.split()[1]
    trusted = fab("-f", conf, "trust-host", "--fingerprint", real)
    assert trusted.returncode == 0, trusted.stderr
    assert real in trusted.stdout and standin.address in known.read_text()
    assert fab("-f", conf, "status").returncode == 0
    again = fab("-f", conf, "trust-host")
    assert again.returncode == 0 and "already trusted" in again.stdout


def test_accepting_new_host_keys_is_an_explicit_setting_that_says_what_it_did(standin, tmp_path):
    known = tmp_path / "known_hosts"
    conf = tmp_path / "accept.yaml"
    conf.write_text(standin.conf.read_text().replace(
        "qms:\n", f"qms:\n  ssh:\n    known_hosts: {known}\n    new_host_keys: accept\n"))
    result = fab("-f", conf, "status")
    assert result.returncode == 0, result.stderr
    assert "host key ssh-" in result.stdout and "recorded in" in result.stdout
    assert standin.address in known.read_text()


def test_a_changed_host_key_is_refused(standin, tmp_path):
    known = tmp_path / "known_hosts"
    other = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", tmp_path / "other"],
                           capture_output=True)
    assert other.returncode == 0
    kind, key = (tmp_path / "other.pub").read_text().split()[:2]
    known.write_text(f"{standin.address} {kind} {key}\n")
    conf = tmp_path / "changed.yaml"
    conf.write_text(standin.conf.read_text().replace("qms:\n", f"qms:\n  ssh:\n    known_hosts: {known}\n"))
    assert_one_line_error(fab("-f", conf, "status"), "CHANGED")


def test_dry_run_leaves_the_server_untouched_and_prints_every_write(standin):
    before = standin.snapshot()
    result = standin.fab("--dry", "prepare")
    after = standin.snapshot()
    assert result.returncode == 0, result.stderr
    assert "would run sudo install -d -m 0755" in result.stdout
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert changed == []


def test_prepare_makes_the_layout_once(standin):
    first = standin.fab("prepare")
    assert first.returncode == 0, first.stderr
    modes = standin.ssh("cd /home/ubuntu/QMS && stat -c '%n %a %U' . releases shared shared/db shared/media .deploy "
                        "backups").stdout.split("\n")
    assert modes[:7] == [". 755 ubuntu", "releases 755 ubuntu", "shared 755 ubuntu", "shared/db 700 qms",
                         "shared/media 750 qms", ".deploy 750 ubuntu", "backups 700 ubuntu"]
    # the app's own user: a system account without a shell or a home, and no sudo
    assert standin.ssh("getent passwd qms | cut -d: -f6,7").stdout.strip() == "/nonexistent:/usr/sbin/nologin"
    second = standin.fab("prepare")
    assert second.returncode == 0 and "nothing changed" in second.stdout
    assert "changed " not in second.stdout


def test_sudo_runs_a_compound_command_entirely_as_root(standin):
    host = standin.host()
    host.sudo("id -un > /root/qms-sudo-test && id -u >> /root/qms-sudo-test | cat && echo done >> /root/qms-sudo-test")
    assert standin.ssh("sudo cat /root/qms-sudo-test").stdout.split() == ["root", "0", "done"]


def test_put_writes_only_when_content_or_attributes_differ(standin):
    host = standin.host()
    path = "/etc/qms-put-test/secret file.env"
    host.ensure_dir("/etc/qms-put-test", 0o755, "root")
    data = b"SECRET_KEY='a$b \"c\" #d'\n\x00binary\xff\n"
    assert host.put(path, data, 0o600, "root") is True
    assert standin.ssh(f"sudo stat -c '%a %U %G' '{path}'").stdout.strip() == "600 root root"
    assert (standin.root / path.lstrip("/")).read_bytes() == data
    assert host.put(path, data, 0o600, "root") is False
    assert host.put(path, data, 0o640, "root", "www-data") is True
    assert standin.ssh(f"sudo stat -c '%a %U %G' '{path}'").stdout.strip() == "640 root www-data"
    assert host.put(path, b"new\n", 0o640, "root", "www-data") is True
    assert (standin.root / path.lstrip("/")).read_bytes() == b"new\n"
    assert standin.ssh("ls /tmp | grep -c qms-put", check=False).stdout.strip() == "0"


def test_dry_put_and_append_transfer_nothing(standin, capsys):
    host = standin.host(dry=True)
    assert host.put("/etc/qms-dry-test.conf", "listen 80;\n", 0o644, "root") is True
    assert host.append_line("/etc/qms-dry-test.conf", "x") is True
    assert host.ensure_dir("/etc/qms-dry-dir", 0o755, "root") is True
    out = capsys.readouterr().out
    assert "+listen 80;" in out and "would change" in out
    assert standin.ssh("ls /etc/qms-dry-test.conf /etc/qms-dry-dir", check=False).returncode != 0
    assert standin.ssh("ls /tmp | grep -c qms-put", check=False).stdout.strip() == "0"


def test_append_line_adds_once(standin):
    host = standin.host()
    path = "/home/ubuntu/qms-append-test"
    assert host.append_line(path, "/.deploy/") is True
    assert host.append_line(path, "/.deploy/") is False
    assert host.append_line(path, "/backups/") is True
    assert standin.ssh(f"cat {path}").stdout == "/.deploy/\n/backups/\n"


def test_secrets_are_masked_in_command_output(standin, tmp_path):
    secret = "s3cret-Value-for-masking"
    script = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from tasks.core.secrets import Masker, install_masking
from tests.standin.conftest import Standin
from pathlib import Path
install_masking(Masker([{secret!r}]))
s = Standin({standin.name!r}, Path({str(standin.dir)!r}), Path({str(standin.conf)!r}))
host = s.host()
host.echo = True
host.run("echo SECRET_KEY={secret}", hide=False)
print("local {secret}")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert secret not in result.stdout + result.stderr
    assert result.stdout.count("********") == 3   # echoed command, its output, a local print


def test_the_standin_clones_and_pulls_the_example_app_from_the_git_remote(standin, tmp_path):
    app = tmp_path / "app"
    shutil.copytree(REPO / "tests" / "example_app", app)
    standin_cmd("publish", app, "--repo", "clonetest", "--name", standin.name)
    standin.ssh("rm -rf /tmp/clonetest && git clone -q git://standin-host/clonetest.git /tmp/clonetest")
    assert standin.ssh("ls /tmp/clonetest/backend/manage.py /tmp/clonetest/frontend/package.json").returncode == 0
    (app / "frontend" / "NEW.txt").write_text("second commit\n")
    standin_cmd("publish", app, "--repo", "clonetest", "--name", standin.name, "--message", "second commit")
    standin.ssh("git -C /tmp/clonetest pull -q --ff-only")
    assert standin.ssh("cat /tmp/clonetest/frontend/NEW.txt").stdout == "second commit\n"


def test_standin_up_twice_then_down_leaves_nothing(tmp_path):
    started = time.monotonic()
    name = make_standin("qmsdown", tmp_path).name
    print(f"standin up --fresh from the cache: {time.monotonic() - started:.1f} s")
    again = standin_cmd("up", "--name", name)
    assert "already running" in again.stdout
    # its changes lie over one release's image: the other release, or one that does not exist, is refused
    release = os.environ.get("QMS_STANDIN_RELEASE") or "bookworm"
    other = {"bookworm": "trixie", "trixie": "bookworm"}[release]
    refused = standin_cmd("up", "--name", name, "--release", other, check=False)
    assert refused.returncode == 1 and refused.stderr == (
        f"standin: error: stand-in {name} was made from {release}, not {other}: add --fresh to remake it from "
        f"{other} (or pass --release {release})\n")
    unknown = standin_cmd("up", "--name", name, "--release", "sid", check=False)
    assert unknown.returncode == 1 and "unknown release 'sid'" in unknown.stderr and "bookworm or trixie" in unknown.stderr
    assert standin_cmd("status", "--name", name).returncode == 0
    pid = int((STATE / name / "nspawn.pid").read_text())
    standin_cmd("down", "--name", name)
    assert subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0
    assert f"qms-{name}" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert str(STATE / name / "root") not in open("/proc/mounts").read()
    assert "qms-" not in "".join(l for l in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True)
                                 .stdout.splitlines() if name in l)
    leftover = subprocess.run(["pgrep", "-f", f"{STATE / name}"], capture_output=True, text=True).stdout
    assert leftover == ""
    status = standin_cmd("status", "--name", name, check=False)
    assert status.returncode == 3 and "down" in status.stdout and "leftovers" not in status.stdout
    shutil.rmtree(STATE / name, ignore_errors=True)
