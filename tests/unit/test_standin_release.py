"""The stand-in's Debian release: bookworm or trixie, from --release or QMS_STANDIN_RELEASE; anything else is a
one-line error before anything is built, booted or installed."""
import os
import subprocess
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader

import pytest

from tests.conftest import REPO


def run(*args, release=None, second=None):
    env = {k: v for k, v in os.environ.items() if k not in ("QMS_STANDIN_RELEASE", "QMS_SECOND_RELEASE")}
    if release is not None:
        env["QMS_STANDIN_RELEASE"] = release
    if second is not None:
        env["QMS_SECOND_RELEASE"] = second
    return subprocess.run([str(REPO / "scripts" / args[0]), *args[1:]], capture_output=True, text=True, env=env,
                          timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args, release", [(("build", "--release", "sid"), None), (("up", "--name", "x"), "sid")])
def test_an_unknown_release_is_refused_in_one_line(args, release):
    result = run("standin", *args, release=release)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == ("standin: error: unknown release 'sid' (from --release or QMS_STANDIN_RELEASE): use "
                             "bookworm or trixie\n")


def test_each_release_has_an_image_of_its_own():
    loader = SourceFileLoader("standin_script", str(REPO / "scripts" / "standin"))
    standin = module_from_spec(spec_from_loader(loader.name, loader))
    loader.exec_module(standin)
    paths = {release: standin.base_dir(release) for release in standin.RELEASES}
    assert set(paths) == {"bookworm", "trixie"} and standin.DEFAULT_RELEASE == "bookworm"
    for release, path in paths.items():
        assert path.name.startswith(f"rootfs-{release}-") and path.parent == standin.CACHE


@pytest.mark.skipif(os.geteuid() != 0, reason="scripts/test starts itself again under sudo when not root")
def test_scripts_test_refuses_an_unknown_release_before_installing():
    result = run("test", "-q", release="sid")
    assert result.returncode == 2 and result.stderr == "error: QMS_STANDIN_RELEASE=sid: use bookworm or trixie\n"
    second = run("test", "-q", release="bookworm", second="sid")
    assert second.returncode == 2 and second.stderr == "error: QMS_SECOND_RELEASE=sid: use bookworm, trixie or none\n"
