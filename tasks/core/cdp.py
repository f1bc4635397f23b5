"""A small Chrome DevTools Protocol client: start the machine's own Chromium headless, open pages in it, and record
what each page did (requests, answers, failures, CORS rejections, console errors). Never downloads a browser.

Needs the optional `browser` extra (websocket-client): pip install 'qms-deploy[browser]'.
"""
from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .errors import UserError

MAC_PATHS = ("/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
             "/Applications/Chromium.app/Contents/MacOS/Chromium")


def known_paths(environ) -> list[str]:
    """Where browsers live when they are not on PATH: Chrome for all users or only this one (%LOCALAPPDATA%, no
    admin rights needed), and Edge, which every Windows 10/11 has; then macOS."""
    roots = [r for r in (environ.get(name) for name in ("PROGRAMFILES", "PROGRAMFILES(X86)", "LOCALAPPDATA")) if r]
    windows = [(root, sub) for sub in (r"Google\Chrome\Application\chrome.exe",
                                       r"Microsoft\Edge\Application\msedge.exe") for root in roots]
    return [f"{root}\\{sub}" for root, sub in windows] + list(MAC_PATHS)


NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_browser(configured: Optional[str], environ=os.environ, which=shutil.which,
                 is_file=lambda p: Path(p).is_file()) -> str:
    if configured:
        if not is_file(configured):
            raise UserError(f"qms.browser.path {configured} does not exist: set it to your Chromium, Chrome or Edge")
        return configured
    found = next((p for p in (which(n) for n in NAMES) if p), None) or next(
        (p for p in known_paths(environ) if is_file(p)), None)
    if not found:
        raise UserError("no Chromium, Chrome or Edge found: install one (Debian/Ubuntu: sudo apt-get install "
                        "chromium; macOS: Google Chrome; Windows has Edge) or set qms.browser.path")
    return found


@dataclass
class Request:
    url: str
    status: Optional[int] = None
    error: str = ""                 # net::ERR_... when it failed
    cors: str = ""                  # Chromium's CORS error, when the browser refused the answer


@dataclass
class PageLog:
    url: str
    requests: list = field(default_factory=list)
    console_errors: list = field(default_factory=list)
    navigation_error: str = ""


class Browser:
    def __init__(self, path: str, resolver_rules: str = "", insecure_tls: bool = False):
        try:
            import websocket   # the optional extra
        except ImportError:
            raise UserError("browser-check needs the browser extra: pip install 'qms-deploy[browser]'") from None
        self._websocket = websocket
        self.profile = tempfile.mkdtemp(prefix="qms-browser-")
        args = [path, "--headless=new", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
                "--disable-sync", "--disable-extensions", "--no-proxy-server", "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}", "--window-size=1280,900"]
        if getattr(os, "geteuid", lambda: 1)() == 0:
            args.append("--no-sandbox")    # Chromium refuses to run as root with its sandbox
        if resolver_rules:
            args.append(f"--host-resolver-rules={resolver_rules}")
        if insecure_tls:
            args.append("--ignore-certificate-errors")
        self.process = subprocess.Popen(args + ["about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        stdin=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and len(port_file.read_text(encoding="utf-8").split()) >= 2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise UserError(f"{path} did not start (exit {self.process.returncode}): run it by hand with "
                                "--headless=new to see why")
            time.sleep(0.1)
        port, ws_path = port_file.read_text(encoding="utf-8").split()[:2]
        self.socket = websocket.create_connection(f"ws://127.0.0.1:{port}{ws_path}", timeout=60,
                                                  suppress_origin=True)
        self.ids = itertools.count(1)

    # -- protocol ------------------------------------------------------------------------------------------
    def send(self, method: str, params: Optional[dict] = None, session: Optional[str] = None) -> int:
        message = {"id": next(self.ids), "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.socket.send(json.dumps(message))
        return message["id"]

    def call(self, method: str, params: Optional[dict] = None, session: Optional[str] = None,
             on_event=None) -> dict:
        wanted = self.send(method, params, session)
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == wanted:
                if "error" in message:
                    raise UserError(f"the browser refused {method}: {message['error'].get('message')}")
                return message.get("result", {})
            if on_event and "method" in message:
                on_event(message)

    # -- pages ---------------------------------------------------------------------------------------------
    def visit(self, url: str, timeout: float = 20.0, screenshot: Optional[Path] = None) -> PageLog:
        """Open `url` in a new tab, let its scripts run until the network is quiet for a second, and record."""
        log, requests, pending = PageLog(url), {}, set()
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        state = {"loaded": False, "quiet_since": time.monotonic()}

        def on_event(message: dict) -> None:
            if message.get("sessionId") != session:
                return
            method, p = message["method"], message.get("params", {})
            rid = p.get("requestId")
            if method == "Network.requestWillBeSent":
                if p.get("redirectResponse") and requests.get(rid):   # each hop of a redirect is a request of its own
                    requests[rid].status = p["redirectResponse"].get("status")
                requests[rid] = Request(p["request"]["url"])
                log.requests.append(requests[rid])
                pending.add(rid)
            elif method == "Network.responseReceived" and requests.get(rid):
                requests[rid].status = p["response"].get("status")
            elif method == "Network.loadingFinished":
                pending.discard(rid)
            elif method == "Network.loadingFailed":
                pending.discard(rid)
                if requests.get(rid):
                    requests[rid].error = p.get("errorText", "")
                    requests[rid].cors = (p.get("corsErrorStatus") or {}).get("corsError", "") or (
                        p.get("blockedReason", "") if "cors" in p.get("blockedReason", "").lower() else "")
            elif method == "Runtime.exceptionThrown":
                details = p.get("exceptionDetails", {})
                log.console_errors.append((details.get("exception") or {}).get("description") or details.get("text"))
            elif method == "Runtime.consoleAPICalled" and p.get("type") == "error":
                log.console_errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
            elif method == "Page.loadEventFired":
                state["loaded"] = True
            else:
                return
            state["quiet_since"] = time.monotonic()

        for domain in ("Network", "Runtime", "Page"):
            self.call(f"{domain}.enable", session=session, on_event=on_event)
        navigated = self.call("Page.navigate", {"url": url}, session=session, on_event=on_event)
        log.navigation_error = navigated.get("errorText", "")
        deadline = time.monotonic() + timeout
        self.socket.settimeout(0.2)
        try:
            while time.monotonic() < deadline:
                if (state["loaded"] or log.navigation_error) and not pending and \
                        time.monotonic() - state["quiet_since"] > 1.0:
                    break
                try:
                    on_event(json.loads(self.socket.recv()))
                except self._websocket.WebSocketTimeoutException:
                    pass
        finally:
            self.socket.settimeout(60)
        if screenshot:
            shot = self.call("Page.captureScreenshot", {"format": "png"}, session=session, on_event=on_event)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        self.call("Target.closeTarget", {"targetId": target}, on_event=on_event)
        return log

    def close(self) -> None:
        try:
            if getattr(self, "socket", None):
                self.socket.close()
        finally:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
