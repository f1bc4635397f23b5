"""Damaged releases on a stand-in of their own (issue 16, item 4). Releases share the export's unchanged files by hard
links, so a file edited in place in one release is edited in every release that links it, and a file deleted from
the served one is missing from every upload that would link it. Damage is repaired, not fatal: the next upload sends
such files again (fresh inodes, not links), `releases --verify` names every damaged release, and a rollback to a
damaged one refuses, naming the nearest sound one."""
import json
import time

import pytest

from tests.conftest import assert_one_line_error, fab
from tests.standin.conftest import example_app_module, get, served, stamp_export

pytestmark = pytest.mark.standin

APP = "/home/ubuntu/QMS"


box = example_app_module("qmsdamage", "box")


def upload(box):
    started = time.monotonic()
    result = fab("-f", box.conf, "upload", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    print(f"upload took {time.monotonic() - started:.1f} s")
    return result


def chunk(info: dict, page: str) -> str:
    """The export's path of a page's chunk (its name holds a hash of its content)."""
    return next(rel for rel in info["manifest"] if rel.startswith(f"_next/static/chunks/pages/{page}-"))


def inode(box, rid: str, rel: str) -> str:
    return box.ssh(f"stat -c %i {APP}/releases/{rid}/frontend/out/{rel}").stdout.strip()


@pytest.fixture(scope="module")
def history(box):
    """Releases A (setup's), B (an upload, then damaged while served) and C (the upload that repairs it)."""
    a = served(box)
    second = stamp_export(box, "second")
    upload(box)
    b = served(box)
    login_chunk, index = chunk(second, "login"), "index.html"
    # The login chunk is A's inode, linked into B: deleting B's name leaves A whole. index.html is B's own (its
    # marker is new): flipping its first byte in place keeps the size, so only a hash finds it.
    assert inode(box, a, login_chunk) == inode(box, b, login_chunk)
    box.ssh(f"rm {APP}/releases/{b}/frontend/out/{login_chunk} && printf X | "
            f"dd of={APP}/releases/{b}/frontend/out/{index} bs=1 seek=0 conv=notrunc status=none")
    # The new export keeps both damaged files as they were and adds one file: planned against B, both would be
    # linked from it.
    third = stamp_export(box, "second", extra_files=1, extra_bytes=100)
    repaired = upload(box)
    c = served(box)
    return {"a": a, "b": b, "c": c, "info": third, "upload": repaired.stdout, "index": index, "chunk": login_chunk}


def test_an_upload_sends_the_served_releases_damaged_files_again_and_serves_them_whole(box, history):
    assert history["c"] != history["b"], history["upload"]
    assert f"repaired 2 damaged files of release {history['b']}" in history["upload"], history["upload"]
    local = box.app / "frontend" / "out"
    pages = [rel for rel in sorted(history["info"]["manifest"]) if not rel.endswith(".bin")]   # text: pages, chunks
    assert history["index"] in pages and history["chunk"] in pages
    for rel in pages:   # through nginx, as built
        code, body = get(box, "/" + rel)
        assert code == 200 and body == (local / rel).read_text(), (rel, code, body[:200])
    assert get(box, "/")[1] == (local / "index.html").read_text()
    # fresh inodes in C, not links to B's damaged index.html
    assert inode(box, history["c"], history["index"]) != inode(box, history["b"], history["index"])


def test_releases_verify_names_the_damaged_release_and_fails(box, history):
    started = time.monotonic()
    listed = fab("-f", box.conf, "releases")
    print(f"releases took {time.monotonic() - started:.1f} s")
    assert listed.returncode == 0 and history["b"] in listed.stdout, listed.stdout + listed.stderr
    started = time.monotonic()
    result = fab("-f", box.conf, "releases", "--verify")
    print(f"releases --verify took {time.monotonic() - started:.1f} s")
    assert_one_line_error(result, "1 release of 3 damaged")
    lines = [line for line in result.stdout.splitlines() if "damaged" in line]
    assert len(lines) == 1 and lines[0].startswith(f"{history['b']}: damaged, 2 files: "), result.stdout
    assert f"missing frontend/out/{history['chunk']}" in lines[0] and "differs frontend/out/index.html" in lines[0]


def test_rollback_to_a_damaged_release_refuses_naming_the_nearest_sound_one(box, history):
    for args in (("--to", history["b"]), ()):   # named, and the default (the release before the served one)
        started = time.monotonic()
        result = fab("-f", box.conf, "rollback", *args)
        print(f"refused rollback {args} took {time.monotonic() - started:.1f} s")
        assert_one_line_error(result, f"release {history['b']} is damaged", f"rollback --to {history['a']}")
        assert served(box) == history["c"]


def test_damaged_backend_code_is_found_too_and_with_nothing_sound_left_rollback_says_deploy(box, history):
    a = history["a"]
    manifest = json.loads(box.ssh(f"cat {APP}/releases/{a}/release.json").stdout)["backend_manifest"]
    assert "backend/manage.py" in manifest and not any(".venv/" in p or "__pycache__" in p for p in manifest)
    box.ssh(f"echo '# edited on the server' | sudo tee -a {APP}/releases/{a}/backend/manage.py >/dev/null")
    result = fab("-f", box.conf, "releases", "--verify")
    assert_one_line_error(result, "2 releases of 3 damaged")
    assert f"{a}: damaged, 1 file: differs backend/manage.py" in result.stdout, result.stdout
    assert_one_line_error(fab("-f", box.conf, "rollback", "--to", a), f"release {a} is damaged",
                          "no other kept release is sound: deploy again")
    assert served(box) == history["c"]
    sound = fab("-f", box.conf, "releases", "--verify")
    assert sound.returncode != 0 and history["c"] not in sound.stdout   # the repaired release is whole
