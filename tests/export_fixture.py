"""A Next.js-shaped static export made in milliseconds, for the tests that do not need a real `next build`."""
import hashlib
import random
from pathlib import Path

from tasks.core import bundle

PAGES = ("index", "login", "404", "admin/users")


def make_export(root: Path, *, api_url: str = "https://qms.test/api", env: str = "standin", marker: str = "v1",
                extra_files: int = 0, extra_bytes: int = 0, seed: int = 0, git_sha: str = "") -> dict:
    """Write an export like Next's into `root` (pages, hashed chunks that inline the API URL, a 404 page) plus
    `extra_files` random assets of `extra_bytes` in total; stamp build-info.json (as built from commit `git_sha`:
    a deploy of that commit then ships it without building). Returns the build info."""
    root.mkdir(parents=True, exist_ok=True)
    for page in PAGES:
        chunk = f'"use strict";let n="{api_url}";async function a(e){{return fetch(n+e)}}/*{page}*/'
        name = hashlib.sha256(chunk.encode()).hexdigest()[:16]
        js = root / "_next" / "static" / "chunks" / "pages" / f"{page}-{name}.js"
        js.parent.mkdir(parents=True, exist_ok=True)
        js.write_text(chunk)
        html = root / f"{page}.html"
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(f"<!DOCTYPE html><html><head><title>QMS</title></head><body><h1>QMS frontend {marker}</h1>"
                        f"<p>{page}</p><script src=\"/_next/static/chunks/pages/{page}-{name}.js\"></script>"
                        "</body></html>\n")
    rng = random.Random(seed)
    for i in range(extra_files):
        asset = root / "_next" / "static" / "media" / f"{i // 100:02d}" / f"asset-{i:05d}.bin"
        asset.parent.mkdir(parents=True, exist_ok=True)
        asset.write_bytes(rng.randbytes(extra_bytes // extra_files))
    info = bundle.build_info(root, env=env, api_url=api_url, git_sha=git_sha or hashlib.sha1(marker.encode()).hexdigest(),
                             dirty=False, built_at="2026-01-01T00:00:00Z")
    bundle.write_build_info(root, info)
    return info


def restamp(root: Path, env: str = "standin") -> None:
    """Re-write build-info.json after a test edited the export by hand."""
    info = bundle.read_build_info(root) or {}
    bundle.write_build_info(root, bundle.build_info(root, env=env, api_url=info.get("api_url", ""),
                                                    git_sha=info.get("git_sha", "0" * 40), dirty=False,
                                                    built_at=info.get("built_at", "")))


