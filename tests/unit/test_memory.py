"""A frontend build on a small machine (guide section 2: `npm run build` on the 1 GB server hung): the machine's
usable memory read from /proc and the cgroup, and `build` refusing before npm starts."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tasks.core import memory
from tests.conftest import assert_one_line_error, fab
from tests.standin.harness import REPO, project_exe

MB = 1 << 20


def test_usable_memory_is_the_smaller_of_ram_and_every_cgroup_limit():
    assert memory.parse_meminfo_total("MemTotal:       24568304 kB\nMemFree: 1 kB\n") == 24568304 * 1024
    assert memory.parse_limit("9223372036854771712\n") is None        # v1's "no limit"
    assert memory.parse_limit("max\n") is None                        # v2's
    assert memory.parse_limit("1073741824\n") == 1024 * MB
    assert memory.usable(24 << 30, [None, 1024 * MB, 2048 * MB]) == 1024 * MB
    assert memory.usable(None, []) is None


def test_the_cgroup_of_this_process_and_its_ancestors_v1_and_v2():
    root = Path("/sys/fs/cgroup")
    v1 = "9:name=systemd:/\n4:memory:/process_api/15d9\n0::/\n"
    assert memory.cgroup_dirs(v1) == [root / "memory/process_api/15d9", root / "memory/process_api", root / "memory"]
    assert memory.cgroup_dirs("0::/user.slice/session-1.scope\n") == \
        [root / "user.slice/session-1.scope", root / "user.slice", root]
    assert memory.cgroup_dirs("4:memory:/\n") == [root / "memory"]     # a container's own namespace
    assert memory.cgroup_dirs("") == []


def memory_cgroup(name: str) -> Path:
    """A fresh memory cgroup of this machine (v1 or v2), as the stand-in makes its own."""
    for parent, limit_file in ((Path("/sys/fs/cgroup/memory"), "memory.limit_in_bytes"),
                               (Path("/sys/fs/cgroup"), "memory.max")):
        if (parent / "cgroup.procs").exists() and ((parent / limit_file).exists() or limit_file == "memory.max"
                                                   and (parent / "cgroup.subtree_control").exists()):
            group = parent / name
            group.mkdir(exist_ok=True)
            (group / limit_file).write_text(str(1024 * MB))
            return group
    pytest.skip("no memory cgroup controller here")


@pytest.mark.skipif(os.geteuid() != 0, reason="making a cgroup needs root")
def test_build_in_a_1_gb_machine_is_refused_before_npm_starts(tmp_path, write_conf):
    app = tmp_path / "app"
    shutil.copytree(REPO / "tests/example_app", app,
                    ignore=shutil.ignore_patterns("node_modules", ".next", "out", ".venv", "__pycache__"))
    # an npm that leaves a trace: had the build started, it would be there
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "npm").write_text(f"#!/bin/sh\ntouch {tmp_path}/npm-ran\nexit 1\n")
    (bin_dir / "npm").chmod(0o755)
    conf = write_conf(f"qms:\n  env: production\n  app_dir: {app}\n  domains: [qms.example.com]\n")
    group = memory_cgroup(f"qms-buildtest-{os.getpid()}")
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    try:
        # the tool runs inside the 1 GB cgroup, as it would on the guide's server
        inside = subprocess.run(["sh", "-c", f'echo $$ > {group}/cgroup.procs && exec "$0" "$@"',
                                 project_exe("fab"), "-f", str(conf), "build"],
                                cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, **env},
                                stdin=subprocess.DEVNULL)
    finally:
        group.rmdir()
    assert_one_line_error(inside, "this machine has 1024 MB of memory", "build on your own machine",
                          "qms.frontend.build_min_memory_mb: 0")
    assert not (tmp_path / "npm-ran").exists()
    # the same build outside the cgroup starts npm (and fails there: this npm only leaves its trace)
    outside = fab("-f", conf, "build", env=env, timeout=120)
    assert outside.returncode != 0 and (tmp_path / "npm-ran").exists(), outside.stderr
