#!/usr/bin/env python3
"""Benchmark: qms-deploy's `upload` against `scp -r` and `rsync -a` of the same export to a stand-in, same run.

    sudo python3 bench/upload.py            (from the repo root; root is needed to boot the stand-in)

It boots a fresh stand-in named `bench` and sets the example app up on it with `fab setup` (a small made-up export
stamped with the app's commit, so nothing is built; plain HTTP; not measured): `upload` needs a set-up server,
since it makes a whole new release that keeps the served backend commit. It generates a Next.js-shaped export of
about 3,000 files / 30 MB (a share of it compressible text, as a real export has) in a second working copy of the
same commit, and measures for each tool the first upload (for ours: while the served release holds the small
export, so every file travels; for rsync and scp: into an empty directory) and a one-file change: wall time, and
bytes this machine sent to the stand-in (the host side of its veth link). For ours it also reads the `upload`
step's own seconds from the summary table: the rest of `fab upload` is the release around the files (git archive,
venv, collectstatic, starting and checking the release's backend, switch, smoke checks). Each figure is the median
of 3 runs. It prints a table and the ratios against the aims of the issue, then powers the stand-in off. A
benchmark reports; it exits 0 whether the aims are met or not.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))   # run as a script from anywhere: the repo's own modules are importable

from tests.export_fixture import make_export, restamp   # noqa: E402
from tests.standin.harness import STATE as STATES, project_exe, standin_cmd, standin_settings   # noqa: E402

NAME = "bench"                            # the only stand-in this benchmark touches
STATE = STATES / NAME
HOME = "/home/ubuntu"
RUNS = [3]   # --runs
RTT = [0.0]  # --rtt

# The export: ~3,000 files / ~30 MB. A real Next.js export is mostly JS/CSS/HTML text (gzip shrinks it 3-5x)
# plus images and fonts that do not compress. make_export's assets are random bytes: they stand for the images.
ASSETS, ASSET_BYTES = 1000, 12_000_000    # incompressible (images, fonts)
TEXTS, TEXT_BYTES = 2000, 18_000_000      # compressible (JS chunks, CSS, HTML)

AIM_FIRST_VS_RSYNC = 1.5     # first upload: ours within 1.5x of rsync's time
AIM_SCP_VS_OURS = 5.0        # first upload: at least 5x faster than scp -r
AIM_CHANGE_BYTES = 2.0       # one-file change: under 2x rsync's bytes


# -- the export ----------------------------------------------------------------------------------------------
WORDS = ("function", "return", "const", "let", "var", "if", "else", "for", "while", "new", "this", "null",
         "undefined", "true", "false", "typeof", "async", "await", "export", "import", "default", "class",
         "props", "state", "children", "className", "useState", "useEffect", "createElement", "jsx", "fetch",
         "then", "catch", "length", "push", "map", "filter", "Object", "Array", "Promise", "document", "window")
PUNCT = ("(", ")", "{", "}", "[", "]", ";", ",", ".", "=", "=>", "===", "!==", "&&", "||", "?", ":", "+", "!")


def js_like(rng: random.Random, size: int) -> str:
    """Minified-JS-looking text: keywords, short mangled names and punctuation, in phrases that recur within a
    file (as `function(e,t,n){` and friends do in real chunks), with noise, string literals and numbers between.
    gzip shrinks it about 3x at level 1 and 3.3x at level 6, like a real chunk; random tokens alone would
    compress under 2x, repeated text 10x or more."""
    names = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$", k=rng.randint(1, 3)))
             for _ in range(200)]

    def token() -> str:
        r = rng.random()
        return rng.choice(WORDS) if r < 0.3 else rng.choice(names) if r < 0.6 else rng.choice(PUNCT)

    phrases = ["".join(token() for _ in range(rng.randint(4, 14))) for _ in range(150)]
    out, n = [], 0
    while n < size:
        parts = rng.choices(phrases, k=20) + [token() for _ in range(10)] + \
            [f'"{rng.choice(names)}-{rng.randrange(1 << 24):x}"', str(rng.randrange(100000))]
        rng.shuffle(parts)
        chunk = "".join(parts)
        out.append(chunk)
        n += len(chunk)
    return "".join(out)[:size]


def generate_export(out: Path, git_sha: str) -> None:
    """make_export's pages, hashed chunks and random assets (as built from commit `git_sha`), then the
    compressible text files, then build-info.json re-stamped over the whole tree (its manifest must cover every
    file)."""
    make_export(out, marker="bench", extra_files=ASSETS, extra_bytes=ASSET_BYTES, seed=1, git_sha=git_sha)
    rng = random.Random(2)
    kinds = (("_next/static/chunks", ".js"), ("_next/static/css", ".css"), ("docs", ".html"))
    for i in range(TEXTS):
        folder, suffix = kinds[0] if i % 10 < 7 else kinds[1] if i % 10 < 9 else kinds[2]
        path = out / folder / f"{i // 100:02d}" / f"part-{i:05d}-{rng.randrange(1 << 32):08x}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        # sizes vary like real chunks: many small, a few large
        size = int(rng.lognormvariate(0, 0.8) * TEXT_BYTES / TEXTS / 1.377)   # 1.377: mean of lognormal(0, 0.8)
        path.write_text(js_like(rng, max(size, 200)))
    restamp(out)


def change_one_file(out: Path, n: int) -> None:
    """A typical small edit: one page's text changes; then build-info.json is re-stamped, as `build` would."""
    page = out / "index.html"
    page.write_text(page.read_text().replace("</body>", f"<p>change {n}</p></body>", 1))
    restamp(out)


def tree_size(out: Path) -> tuple[int, int]:
    files = [p for p in out.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


# -- the stand-in --------------------------------------------------------------------------------------------
RELAYED_CONFIG: list[Path] = []   # set by --rtt: the ssh config whose connections go through bench/delay_relay.py


def ssh_config() -> Path:
    """The ssh config the measured tools use (with --rtt, one that adds latency to every connection)."""
    return RELAYED_CONFIG[0] if RELAYED_CONFIG else STATE / "ssh_config"


def relayed_ssh_config(work: Path, rtt_ms: float) -> Path:
    """The stand-in's ssh config plus a ProxyCommand that delays each direction by half the round trip."""
    relay = Path(__file__).resolve().parent / "delay_relay.py"
    text = (STATE / "ssh_config").read_text().rstrip("\n")
    path = work / "ssh_config"
    path.write_text(f"{text}\n  ProxyCommand {sys.executable} {relay} %h %p {rtt_ms / 2}\n")
    return path


def on_standin(command: str) -> None:
    """Set-up and clean-up between runs, never inside a measurement."""
    subprocess.run(["ssh", "-F", str(STATE / "ssh_config"), NAME, command], check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL)


# Creating a file on the stand-in's overlay file system costs far more, and varies far more with what else the
# machine is doing, than on a VPS's ext4; on a first upload rsync and ours both pay it once per file. So each round
# also times just that, on its own, to show how much of the figures is the file system rather than the tool.
CALIBRATE = ("import os,shutil,time; d='%s/fs-calibrate'; shutil.rmtree(d,True); os.mkdir(d); t=time.monotonic()\n"
             "for i in range(3000):\n  open(f'{d}/f{i}','wb').write(b'x'*10000)\n"
             "print(time.monotonic()-t); shutil.rmtree(d)" % HOME)


def file_system_seconds() -> float:
    result = subprocess.run(["ssh", "-F", str(STATE / "ssh_config"), NAME, f"python3 -c {shlex.quote(CALIBRATE)}"],
                            check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return float(result.stdout)


def veth() -> Path:
    """The host side of the stand-in's link: its tx counts what this machine sends the stand-in, rx what comes
    back; everything (ssh handshake, protocol chatter, payload) the way a network bill would count it."""
    index = json.loads((STATE / "info.json").read_text())["index"]
    return Path(f"/sys/class/net/qms{index}h/statistics")


def counters() -> tuple[int, int]:
    stats = veth()
    return int((stats / "tx_bytes").read_text()), int((stats / "rx_bytes").read_text())


def settings_file(work: Path, app_dir: Path, name: str, ssh: Path) -> Path:
    """Settings for the stand-in with this working copy and ssh config; plain HTTP (no TLS email, so no
    certificate), no superuser; one secrets file for all (the `env` step of every release writes it)."""
    secrets_file = work / "standin.env"
    if not secrets_file.exists():
        secrets_file.write_text(f"SECRET_KEY=bench-only-{secrets.token_urlsafe(40)}\n")
        secrets_file.chmod(0o600)
    conf = work / f"{name}.yaml"
    conf.write_text(standin_settings(NAME, ssh, app_dir, extra=f"  secrets_file: {secrets_file}\n"
                                                                "  setup:\n    superuser: ''\n")
                    .replace("    email: admin@qms.test\n", ""))
    return conf


def head_of(app: Path) -> str:
    return subprocess.run(["git", "-C", str(app), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def set_up(work: Path) -> tuple[Path, Path]:
    """The example app set up on the stand-in by `fab setup` from a working copy with a small made-up export of its
    commit; returns that working copy's settings (uploading its export again makes the served release one that
    holds none of the big export's files) and the big export's working copy (the same commit)."""
    small = work / "app-small"
    shutil.copytree(REPO / "tests/example_app", small, ignore=shutil.ignore_patterns("node_modules", ".next", "out"))
    standin_cmd("publish", small, "--name", NAME, "--message", "example app for bench/upload.py")
    make_export(small / "frontend" / "out", marker="bench-small", git_sha=head_of(small))
    conf = settings_file(work, small, "small", STATE / "ssh_config")
    started = time.monotonic()
    result = subprocess.run([project_exe("fab"), "-f", str(conf), "setup"], cwd=REPO, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=1800)
    if result.returncode != 0:
        raise SystemExit(f"bench: fab setup failed ({result.returncode}):\n"
                         f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    print(f"bench: fab setup in {time.monotonic() - started:.1f} s", flush=True)
    big = work / "app"
    shutil.copytree(small, big, ignore=shutil.ignore_patterns("out"))
    return conf, big


# -- measuring -----------------------------------------------------------------------------------------------
@dataclass
class Sample:
    seconds: float
    sent: int
    received: int
    step: Optional[float] = None   # ours: the `upload` step's seconds, from the summary table


def checked(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv[:3])} ... failed ({result.returncode}):\n"
                         f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result


def upload_step(output: str) -> Optional[float]:
    """The `upload` step's time from the summary table `fab upload` prints (rich's box characters)."""
    found = re.findall(r"^\s*[│|┃]\s*upload\s*[│|┃]\s*([\d.]+) s\b", output, re.M)
    return float(found[-1]) if found else None


def measure(argv: list[str], cwd: Path) -> Sample:
    """Run one transfer: wall time and the link's byte counters around it. A failed run is not a figure."""
    tx0, rx0 = counters()
    started = time.monotonic()
    result = checked(argv, cwd)
    seconds = time.monotonic() - started
    tx1, rx1 = counters()
    return Sample(seconds, tx1 - tx0, rx1 - rx0, upload_step(result.stdout))


@dataclass
class Tool:
    name: str
    command: list[str]
    forget: Callable[[], None]     # empties the target for a first upload
    cwd: Path
    first: list[Sample] = field(default_factory=list)
    change: list[Sample] = field(default_factory=list)


def tools(conf: Path, app_dir: Path, small_conf: Path) -> list[Tool]:
    """Ours through its real command line; the baselines over the same ssh config, as people run them. Ours
    forgets by serving the small export again (a release of its own: the served release then holds none of the
    big export's files, and an upload sends only what the served release lacks)."""
    ssh = f"ssh -F {ssh_config()}"
    frontend = app_dir / "frontend"
    return [
        Tool("qms-deploy upload", [project_exe("fab"), "-f", str(conf), "upload"],
             lambda: checked([project_exe("fab"), "-f", str(small_conf), "upload"], REPO) and None, REPO),
        Tool("rsync -a", ["rsync", "-a", "-e", ssh, "out/", f"{NAME}:{HOME}/rsync-target/"],
             lambda: on_standin(f"rm -rf {HOME}/rsync-target"), frontend),
        Tool("scp -r", ["scp", "-r", "-q", "-F", str(ssh_config()), "out", f"{NAME}:{HOME}/scp-target/"],
             lambda: on_standin(f"rm -rf {HOME}/scp-target && mkdir {HOME}/scp-target"), frontend),
    ]


def run_benchmark(all_tools: list[Tool], out: Path) -> list[float]:
    """Returns the file-system calibration of each round."""
    calibration = []
    # Interleaved, and the order rotated each round, so that a slow moment of the machine hits all tools alike;
    # `sync` after each clean-up, so that no tool pays for flushing what the one before it wrote or deleted.
    for run in range(RUNS[0]):
        calibration.append(file_system_seconds())
        print(f"  round {run + 1}/{RUNS[0]}: the stand-in creates 3,000 files of 10 KB in {calibration[-1]:.2f} s",
              flush=True)
        for tool in all_tools[run:] + all_tools[:run]:
            tool.forget()
            on_standin("sync")
            tool.first.append(measure(tool.command, tool.cwd))
            print(f"  first upload  {run + 1}/{RUNS[0]}  {tool.name:<18} {tool.first[-1].seconds:6.2f} s "
                  f"{tool.first[-1].sent:>12,} B", flush=True)
    # Every target now holds the export; each round edits one file and each tool brings its target up to date
    # (scp knows no "changed files": it copies the whole tree again, which is what people do with it).
    for run in range(RUNS[0]):
        change_one_file(out, run)
        on_standin("sync")
        for tool in all_tools[run:] + all_tools[:run]:
            tool.change.append(measure(tool.command, tool.cwd))
            print(f"  one-file change {run + 1}/{RUNS[0]}  {tool.name:<18} {tool.change[-1].seconds:6.2f} s "
                  f"{tool.change[-1].sent:>12,} B", flush=True)
    return calibration


# -- the report ----------------------------------------------------------------------------------------------
def median(samples: list[Sample], what: str) -> float:
    return statistics.median(getattr(s, what) for s in samples)


def report(all_tools: list[Tool], calibration: list[float], files: int, size: int, total: float) -> None:
    ours, rsync, scp = all_tools
    print(f"\nupload of a generated export, {files:,} files / {size / 1e6:.1f} MB, to stand-in `{NAME}`"
          f"{f' over a {RTT[0]:g} ms round trip' if RTT[0] else ' (no added latency)'}; "
          f"median of {RUNS[0]} runs\n")
    header = ("tool", "first upload (s)", "of it the files (s)", "bytes sent", "one-file change (s)",
              "of it the files (s)", "bytes sent")
    step = lambda samples: (f"{statistics.median(s.step for s in samples):.2f}"   # noqa: E731
                            if all(s.step is not None for s in samples) else "-")
    rows = [(t.name, f"{median(t.first, 'seconds'):.2f}", step(t.first), f"{median(t.first, 'sent'):,.0f}",
             f"{median(t.change, 'seconds'):.2f}", step(t.change), f"{median(t.change, 'sent'):,.0f}")
            for t in all_tools]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)   # noqa: E731
                                       for i, (c, w) in enumerate(zip(r, widths))) + " |"
    print(line(header))
    print("|" + "|".join(("-" * (w + 1) + ":") if i else "-" * (w + 2) for i, w in enumerate(widths)) + "|")
    for r in rows:
        print(line(r))
    print("\nbytes back from the stand-in (rx), median: " + ", ".join(
        f"{t.name} {median(t.first, 'received'):,.0f} / {median(t.change, 'received'):,.0f}" for t in all_tools)
        + " (first upload / one-file change)")
    print(f"stand-in file system: creating 3,000 files of 10 KB alone took {statistics.median(calibration):.2f} s "
          f"(median; {min(calibration):.2f}-{max(calibration):.2f} s), paid by every first upload")

    print("of it the files: ours' `upload` step alone (its summary table), the transfer that rsync and scp do; the "
          "rest of `fab upload` makes, starts and checks the release around the files")
    first_ratio = median(ours.first, "seconds") / median(rsync.first, "seconds")
    scp_ratio = median(scp.first, "seconds") / median(ours.first, "seconds")
    bytes_ratio = median(ours.change, "sent") / median(rsync.change, "sent")
    print("\naims:")
    for label, value, aim, ok in (
            ("first upload, ours / rsync time", first_ratio, f"<= {AIM_FIRST_VS_RSYNC}x",
             first_ratio <= AIM_FIRST_VS_RSYNC),
            ("first upload, scp / ours time", scp_ratio, f">= {AIM_SCP_VS_OURS}x", scp_ratio >= AIM_SCP_VS_OURS),
            ("one-file change, ours / rsync bytes sent", bytes_ratio, f"< {AIM_CHANGE_BYTES}x",
             bytes_ratio < AIM_CHANGE_BYTES)):
        print(f"  {label:<42} {value:6.2f}x  (aim {aim:<7}) {'PASS' if ok else 'MISS'}")
    if all(s.step is not None for s in ours.first):
        files_ratio = statistics.median(s.step for s in ours.first) / median(rsync.first, "seconds")
        print(f"  {'first upload, ours (upload step) / rsync':<42} {files_ratio:6.2f}x  (not an aim: the files alone)")
    print(f"\ntotal run time {total:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", action="store_true", help="leave the stand-in running afterwards")
    parser.add_argument("--rtt", type=float, default=0,
                        help="add this many ms of round-trip time to every connection, as on a link to a VPS")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement (default 3)")
    args = parser.parse_args()
    RUNS[0], RTT[0] = args.runs, args.rtt
    for tool in ("rsync", "scp", "ssh"):
        if not shutil.which(tool):
            raise SystemExit(f"bench: {tool} is missing (apt-get install rsync openssh-client)")
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="qms-bench-"))
    try:
        print(f"bench: booting a fresh stand-in `{NAME}` and setting the example app up on it", flush=True)
        standin_cmd("up", "--fresh", "--name", NAME)
        small_conf, app_dir = set_up(work)
        out = app_dir / "frontend" / "out"
        print(f"bench: generating the export in {out}", flush=True)
        generate_export(out, head_of(app_dir))
        files, size = tree_size(out)
        print(f"bench: {files:,} files, {size / 1e6:.1f} MB", flush=True)
        if args.rtt:
            RELAYED_CONFIG.append(relayed_ssh_config(work, args.rtt))
            print(f"bench: every measured connection goes through a relay adding {args.rtt:g} ms of round trip",
                  flush=True)
        conf = settings_file(work, app_dir, "bench", ssh_config())
        all_tools = tools(conf, app_dir, small_conf)
        calibration = run_benchmark(all_tools, out)
        report(all_tools, calibration, files, size, time.monotonic() - started)
    finally:
        if not args.keep:
            standin_cmd("down", "--name", NAME, check=False)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
