"""What the stand-in tests and the benchmarks share (no pytest here): a settings file for a stand-in and the `fab` to
run."""
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import yaml

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "scripts" / "standin"
STATE = Path(os.environ.get("QMS_STANDIN_STATE", "/var/lib/qms-standin"))


def standin_settings(name: str, ssh_config: Optional[Path] = None, app_dir: Optional[Path] = None,
                     extra: str = "") -> str:
    """conf/standin.yaml pointed at stand-in `name`, its environment `standin` whatever the file is called;
    `extra` is YAML under qms:, merged into it key by key (so it may add to a section the file already has)."""
    data = yaml.safe_load((REPO / "conf" / "standin.yaml").read_text())
    data["ssh_config_path"] = str(ssh_config or STATE / name / "ssh_config")
    data["qms"].update(env="standin", host=name, app_dir=str(app_dir or REPO / "tests/example_app"))
    return more_settings(yaml.safe_dump(data, sort_keys=False), extra)


def more_settings(text: str, extra: str) -> str:
    """A settings file's text with `extra` (YAML under qms:) merged in key by key, so that it may change a section
    the file already has."""
    data = yaml.safe_load(text)
    merge(data["qms"], (yaml.safe_load("qms:\n" + extra) or {}).get("qms") or {})
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def merge(into: dict, more: dict) -> None:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value


def project_exe(name: str) -> str:
    """A program this project installs (`fab`, `inv`, `moto_server`): the one beside the running interpreter (a
    virtualenv), else the repo's .venv. Never PATH: whatever an earlier install left there would stand in for what
    scripts/install must provide (a fresh machine has none)."""
    for candidate in (Path(sys.executable).parent / name, REPO / ".venv" / "bin" / name):
        if candidate.exists():
            return str(candidate)
    raise FileNotFoundError(f"{name} is neither beside {sys.executable} nor in {REPO / '.venv/bin'}: "
                            "run scripts/install")


def standin_cmd(*args, check: bool = True) -> subprocess.CompletedProcess:
    """scripts/standin with these arguments, its output captured; a failure raises with that output."""
    result = subprocess.run([str(STANDIN), *map(str, args)], capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"scripts/standin {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}")
    return result
