"""Facts are data: recorded command output in, state out; operations follow from the difference."""
from pathlib import Path

import pytest

from tasks.core import facts
from tasks.core.facts import PathState


def test_parse_missing_and_present_paths():
    assert facts.parse_path_state("missing\n") is None
    state = facts.parse_path_state("directory|750|ubuntu|ubuntu|4096\n")
    assert state == PathState("directory", 0o750, "ubuntu", "ubuntu", 4096) and state.is_dir
    f = facts.parse_path_state("regular file|600|root|root|12\n" + "ab" * 32 + "  /x/.env\n")
    assert f.is_file and f.mode == 0o600 and f.sha256 == "ab" * 32


def test_dir_commands_only_for_differences():
    want = ("/srv/x", 0o755, "ubuntu", "ubuntu")
    assert facts.dir_commands(None, *want) == ["install -d -m 0755 -o ubuntu -g ubuntu -- /srv/x"]
    assert facts.dir_commands(PathState("directory", 0o755, "ubuntu", "ubuntu", 0), *want) == []
    assert facts.dir_commands(PathState("directory", 0o700, "root", "root", 0), *want) == [
        "chown ubuntu:ubuntu -- /srv/x", "chmod 0755 -- /srv/x"]
    with pytest.raises(ValueError, match="is a regular file, not a directory"):
        facts.dir_commands(PathState("regular file", 0o644, "u", "u", 1), *want)


def test_paths_with_spaces_are_quoted():
    assert "'/srv/my app'" in facts.path_state_command("/srv/my app")
    assert facts.dir_commands(None, "/srv/a b", 0o755, "u", "g")[0].endswith("-- '/srv/a b'")


def test_text_diff_and_binary_summary():
    diff = facts.text_diff(b"a\nb\n", b"a\nc\n", "/etc/x")
    assert "-b\n" in diff and "+c\n" in diff and "/etc/x (server)" in diff
    assert facts.text_diff(b"\xff\x00", b"\xfe", "/bin/x") == "binary content differs (2 -> 1 bytes)\n"


def test_key_values_and_status_command():
    assert facts.parse_key_values("os=Debian GNU/Linux 12\nnoise\nnginx=active\n") == {
        "os": "Debian GNU/Linux 12", "nginx": "active"}
    command = facts.server_status_command("/home/ubuntu/QMS", "qms-backend")
    assert "readlink /home/ubuntu/QMS/current" in command and 'systemctl is-active qms-backend@"$release"' in command


def test_installed_packages_from_dpkg_query():
    from tasks.core.facts import installed_packages_command, parse_installed_packages
    output = "nginx ii \ncertbot ii \njq un \nlibc6:amd64 ii \ncurl rc \n"
    assert parse_installed_packages(output) == {"nginx", "certbot", "libc6"}
    assert "'jq'" not in installed_packages_command(["jq"]) and installed_packages_command(["a b"]).endswith(
        "'a b' 2>/dev/null")


# SOFTWARE_COMMAND's output as recorded on the stand-in's two Debian releases (the images of 2026-12)
BOOKWORM_SOFTWARE = """os=Debian GNU/Linux 12 (bookworm)
nginx=nginx version: nginx/1.22.1
python3=Python 3.11.2
systemd=systemd 252 (252.39-1~deb12u2)
OpenSSH=OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.20 7 Apr 2026
certbot=certbot 2.1.0
sqlite3=3.40.1 2022-12-28 14:03:47 df5c253c0b3dd24916e4ec7cf77d3db5294cc9fd45ae7b9c5e82ad8197f3alt1
"""
TRIXIE_SOFTWARE = """os=Debian GNU/Linux 13 (trixie)
nginx=nginx version: nginx/1.26.3
python3=Python 3.13.5
systemd=systemd 257 (257.13-1~deb13u1)
OpenSSH=OpenSSH_10.0p2 Debian-7+deb13u4, OpenSSL 3.5.9 29 Sep 2026
certbot=certbot 4.0.0
sqlite3=3.46.1 2024-08-13 09:16:08 c9c2ab54ba1f5f46360f1b4f35d849cd3f080e6fc2b6c60e91b16c63f69aalt1 (64-bit)
"""


@pytest.mark.parametrize("output, expected", [
    (BOOKWORM_SOFTWARE, ("Debian GNU/Linux 12 (bookworm)", ["1.22.1", "3.11.2", "252", "9.2p1", "2.1.0", "3.40.1"])),
    (TRIXIE_SOFTWARE, ("Debian GNU/Linux 13 (trixie)", ["1.26.3", "3.13.5", "257", "10.0p2", "4.0.0", "3.46.1"])),
    # the real target, as Ubuntu 24.04 prints it
    ("os=Ubuntu 24.04.1 LTS\nnginx=nginx version: nginx/1.24.0 (Ubuntu)\npython3=Python 3.12.3\n"
     "systemd=systemd 255 (255.4-1ubuntu8.4)\nOpenSSH=OpenSSH_9.6p1 Ubuntu-3ubuntu13.5, OpenSSL 3.0.13 30 Jan 2024\n"
     "certbot=certbot 2.9.0\nsqlite3=3.45.1 2024-01-30 16:01:20 e876e51a0ed5c5b3126f52e532044363a014bc594cfefa87ffb5b82257ccalt1 (64-bit)\n",
     ("Ubuntu 24.04.1 LTS", ["1.24.0", "3.12.3", "255", "9.6p1", "2.9.0", "3.45.1"])),
])
def test_software_versions_of_each_release(output, expected):
    found = facts.parse_software(output)
    assert (found.os, list(found.versions.values())) == expected
    assert list(found.versions) == ["nginx", "python3", "systemd", "OpenSSH", "certbot", "sqlite3"]


def test_missing_programs_and_os_release():
    # `line 1` in bash's complaint must not pass for version 1
    output = ("os=\nnginx=nginx version: nginx/1.24.0 (Ubuntu)\ncertbot=bash: line 1: certbot: command not found\n"
              "sqlite3=sudo: sqlite3: command not found\n")
    found = facts.parse_software(output)
    assert found.os == "unknown"
    assert found.versions == {"nginx": "1.24.0", "python3": None, "systemd": None, "OpenSSH": None, "certbot": None,
                              "sqlite3": None}
    assert found.describe() == ("unknown: nginx 1.24.0, python3 missing, systemd missing, OpenSSH missing, "
                                "certbot missing, sqlite3 missing")


def test_software_command_asks_each_program():
    for program in ("nginx -v", "python3 --version", "systemctl --version", "ssh -V", "certbot --version",
                    "sqlite3 --version", "/etc/os-release"):
        assert program in facts.SOFTWARE_COMMAND


def test_a_backend_instances_state_in_one_round_trip():
    command = facts.instance_state_command("qms-backend@r1", "/run/qms-backend/r1.sock", "/api/health/")
    assert "systemctl is-active qms-backend@r1.service" in command
    assert "--unix-socket /run/qms-backend/r1.sock" in command and "http://127.0.0.1/api/health/" in command
    # captured on the stand-in: running, two workers, healthy
    up = facts.parse_instance_state("active=active\nworkers=4012 4013 \nhealth=200\n")
    assert up == facts.InstanceState("active", frozenset({"4012", "4013"}), "200")
    # starting: no main process yet, curl could not connect
    starting = facts.parse_instance_state("active=activating\nworkers=\nhealth=000\n")
    assert starting.active == "activating" and not starting.workers and starting.health == ""
    assert facts.parse_instance_state("").active == "unknown"


def test_live_instances_from_systemctl_list_units():
    # captured on the stand-in during a deploy's start: the served release, and the new one activating
    captured = (Path(__file__).parent / "captured" / "systemctl-instances.txt").read_text()
    assert facts.parse_live_instances(captured, "qms-backend") == {"20261202-043635-f237a41", "20261202-043814-b0f6a50"}
    # a failed or stopped instance holds nothing; another app's template is not ours
    assert facts.parse_live_instances(
        "qms-backend@r1.service loaded failed failed QMS backend release r1\n"
        "qms-backend@r2.socket loaded inactive dead QMS backend socket of release r2\n"
        "qms-backend-other@r3.service loaded active running other\n"
        "qms-backend@r4.socket loaded active listening QMS backend socket of release r4\n", "qms-backend") == {"r4"}
    assert facts.parse_live_instances("", "qms-backend") == set()
    assert facts.instances_command("qms-backend") == \
        "systemctl list-units --plain --no-legend --full --all 'qms-backend@*'"


def test_a_standby_started_before_the_env_changed_is_not_warm():
    assert facts.parse_started_after("after\n") is True
    assert facts.parse_started_after("before\n") is False
    assert facts.parse_started_after("unknown\n") is None and facts.parse_started_after("") is None
    command = facts.started_after_command("qms-backend@r1", "/home/ubuntu/My QMS/shared/.env")
    assert "'/home/ubuntu/My QMS/shared/.env'" in command and "--value qms-backend@r1.service)" in command
