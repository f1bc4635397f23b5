"""A new release shares the served release's venv when their dependency files are the same: the command run by a
real shell here, on a releases tree made in a temporary directory."""
import os
import subprocess

from tasks.core import backend_plan as plan
from tasks.core.settings import defaults, resolve


def release(root, rid: str, lock: str = "lock v1"):
    """releases/<rid>/backend with a uv.lock, a pyproject.toml and (for r1) a venv like uv's."""
    backend = root / "releases" / rid / "backend"
    backend.mkdir(parents=True)
    (backend / "uv.lock").write_text(lock)
    (backend / "pyproject.toml").write_text("[project]\nname = 'app'\n")
    return backend


def venv(backend):
    bin_dir = backend / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to("/usr/bin/python3")
    (bin_dir / "uvicorn").write_text(f"#!{backend}/.venv/bin/python\nimport uvicorn\n")
    site = backend / ".venv" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (site / "_virtualenv.pth").write_text("import _virtualenv\n")
    (site / "django.py").write_text("VERSION = 5\n")
    return site


def run(root, old="r1", new="r2") -> str:
    s = resolve([], {**defaults(), "app_root": str(root)}, None)
    return subprocess.run(["bash", "-c", plan.reuse_venv_command(s, old, new)], capture_output=True,
                          text=True).stdout.strip()


def test_the_same_dependencies_share_the_venv_and_scripts_point_at_their_own(tmp_path):
    old, new = release(tmp_path, "r1"), release(tmp_path, "r2")
    site = venv(old)
    assert run(tmp_path) == "reused"
    copied = new / ".venv/lib/python3.11/site-packages/django.py"
    assert os.stat(copied).st_ino == os.stat(site / "django.py").st_ino          # shared, not copied
    assert (new / ".venv/bin/uvicorn").read_text().startswith(f"#!{new}/.venv/bin/python\n")
    assert (old / ".venv/bin/uvicorn").read_text().startswith(f"#!{old}/.venv/bin/python\n")   # left as it was


def test_other_dependencies_or_an_editable_install_of_the_old_release_get_a_venv_of_their_own(tmp_path):
    old = release(tmp_path, "r1")
    site = venv(old)
    release(tmp_path, "r2", lock="lock v2")
    assert run(tmp_path) == "not reused: uv.lock differs"
    release(tmp_path, "r3")
    (site / "__editable__.app-0.1.pth").write_text(f"{old}\n")
    assert run(tmp_path, new="r3") == "not reused: a .pth file names release r1"
    assert not (tmp_path / "releases/r3/backend/.venv").exists()
