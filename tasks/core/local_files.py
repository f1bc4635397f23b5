"""Text on the machine the tool runs on, in UTF-8 whatever the code page: a Korean Windows reads and writes
cp949 by default, which garbles what git, the server and our own files hold (UTF-8), and writes CRLF line ends.
Everything the tool reads or writes locally as text goes through here, or states its encoding where it is."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional

import yaml
from invoke.config import Config

from .errors import UserError

UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def decode(data: bytes, path) -> str:
    """A file's bytes as text: UTF-8, with or without a BOM (Notepad writes one). UTF-16 (PowerShell 5.1's `>`)
    and other encodings are refused with the fix."""
    if data.startswith(UTF16_BOMS) or b"\x00" in data[:200]:
        raise UserError(f"{path} is UTF-16 (what PowerShell 5.1's > writes): save it as UTF-8 (Set-Content "
                        "-Encoding utf8, or your editor's Save with Encoding)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not UTF-8 (byte {e.start}): save it as UTF-8") from None


def read_text(path: Path) -> str:
    return decode(Path(path).read_bytes(), path)


def write_text(path: Path, text: str) -> None:
    """UTF-8 and \\n line ends on every system: these files go to servers and to git."""
    Path(path).write_text(text, encoding="utf-8", newline="\n")


def local_git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    """git in the app's checkout (here, not on the server), its output read as UTF-8: git writes paths and commit
    messages in UTF-8 whatever the locale."""
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, encoding="utf-8", errors="replace")


def utf8_settings_files() -> None:
    """Invoke reads a -f settings file with a plain open(), in the code page: read it as UTF-8 instead, so that a
    Korean comment or value means the same on every machine (called once, before Invoke loads the file)."""
    def load(self, path):
        stream = io.StringIO(read_text(path))
        stream.name = str(path)   # YAML's errors name the file
        return yaml.safe_load(stream)

    Config._load_yaml = Config._load_yml = load


def tolerant_output() -> None:
    """Output piped to a file or another program is written in the code page, which has no room for much of what a
    server prints (an emoji in a log line): write a ? there instead of dying in Invoke's output thread."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")


def find_npm(which: Callable[[str], Optional[str]] = shutil.which, windows: bool = os.name == "nt") -> str:
    """npm as the system can start it: on Windows npm.cmd (Node's extension-less `npm` is a shell script that
    CreateProcess cannot run: WinError 193)."""
    found = (which("npm.cmd") if windows else None) or (None if windows else which("npm"))
    if not found:
        raise UserError("npm not found: install Node.js 18 or newer (it brings npm), then run build again")
    return found


def remove_tree(path: Path) -> None:
    """Remove a build's output folder; on Windows a file held open by an editor, a dev server or Explorer cannot
    be removed (WinError 32): say so instead of a traceback."""
    try:
        shutil.rmtree(path)
    except PermissionError as e:
        raise UserError(f"cannot remove {path}: {e.filename or 'a file in it'} is in use (a dev server, an editor "
                        "or Explorer?): close it and build again") from None
