"""A tiny WebDriver client (httpx + chromedriver) for driving headless Chromium in tests.

It also reads Chromium's performance log (DevTools ``Network.*`` events) and console log, so a test
can check that a page made no network request and raised no Content-Security-Policy violation.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-default-apps", "--disable-extensions", "--window-size=1400,1000",
]


def chromium_paths() -> tuple[str, str] | None:
    """(chromium, chromedriver) when both are installed."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Browser:
    """One chromedriver process and one browser session."""

    def __init__(self, browser: str, driver: str, profile: Path) -> None:
        self.downloads = profile / "downloads"  # where the pages' downloads land (not the user's ~/Downloads)
        self.downloads.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        self.proc = subprocess.Popen(
            [driver, f"--port={port}", "--allowed-ips=127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120.0, trust_env=False)
        for _ in range(400):
            try:
                if self.http.get("/status").json()["value"]["ready"]:
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.05)
        caps = {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": browser,
                "args": [*FLAGS, f"--user-data-dir={profile}"],
                "perfLoggingPrefs": {"enableNetwork": True, "enablePage": False},
                "prefs": {"download.default_directory": str(self.downloads), "download.prompt_for_download": False},
            },
            "goog:loggingPrefs": {"performance": "ALL", "browser": "ALL"},
        }
        try:
            value = self._call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})
        except Exception:
            self.proc.kill()
            raise
        self.session = f"/session/{value['sessionId']}"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        resp = self.http.request(method, path, json=body if body is not None or method == "POST" else None)
        data = resp.json()
        if resp.status_code >= 400:
            raise RuntimeError(f"webdriver {method} {path}: {data.get('value')}")
        return data.get("value")

    def cmd(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call(method, self.session + path, body if body is not None else ({} if method == "POST" else None))

    # -- page ------------------------------------------------------------------------------
    def get(self, url: str) -> None:
        self.cmd("POST", "/url", {"url": url})

    def js(self, script: str, *args: Any) -> Any:
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def js_async(self, script: str, *args: Any) -> Any:
        """Run ``script`` as an async WebDriver script: it ends by calling ``done(value)``."""
        body = "const done = arguments[arguments.length - 1];\n" + script
        return self.cmd("POST", "/execute/async", {"script": body, "args": list(args)})

    def wait(self, script: str, *, tries: int = 3000) -> Any:
        """Poll a JS expression (``return ...``) until it is truthy."""
        for _ in range(tries):
            value = self.js(script)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"never became true: {script}")

    def find(self, css: str) -> str:
        return str(self.cmd("POST", "/element", {"using": "css selector", "value": css})[ELEMENT])

    def click(self, css: str) -> None:
        self.cmd("POST", f"/element/{self.find(css)}/click")

    def type(self, css: str, text: str) -> None:
        self.cmd("POST", f"/element/{self.find(css)}/value", {"text": text})

    def text(self, css: str) -> str:
        return str(self.cmd("GET", f"/element/{self.find(css)}/text"))

    def downloaded(self, name: str, *, tries: int = 400) -> Path:
        """The file ``name`` once the browser has finished downloading it."""
        path = self.downloads / name
        for _ in range(tries):
            if path.exists() and not (self.downloads / f"{name}.crdownload").exists():
                return path
            time.sleep(0.05)
        raise AssertionError(f"{name} was never downloaded: {sorted(p.name for p in self.downloads.iterdir())}")

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.cmd("GET", "/screenshot")))
        return path

    # -- logs ------------------------------------------------------------------------------
    def log(self, kind: str) -> list[dict[str, Any]]:
        return list(self.cmd("POST", "/se/log", {"type": kind}) or [])

    def requests(self) -> list[tuple[str, str]]:
        """(url, document url) of every request started (DevTools ``Network.requestWillBeSent``)."""
        out = []
        for entry in self.log("performance"):
            msg = json.loads(entry["message"])["message"]
            if msg.get("method") == "Network.requestWillBeSent":
                out.append((msg["params"]["request"]["url"], msg["params"].get("documentURL", "")))
        return out

    def close(self) -> None:
        try:
            self.cmd("DELETE", "")
        except Exception:
            pass
        finally:
            self.http.close()
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def session(profile: Path) -> Iterator[Browser]:
    """A browser for a test module (the body of its ``browser`` fixture); the module skips without Chromium."""
    paths = chromium_paths()
    assert paths is not None
    b = Browser(paths[0], paths[1], profile)
    try:
        yield b
    finally:
        b.close()


def save_screenshot(browser: Browser, tmp_path: Path, name: str) -> Path:
    """A screenshot in ``$EVALKIT_SCREENSHOTS`` (else ``tmp_path``); a blank page fails the test."""
    shots = os.environ.get("EVALKIT_SCREENSHOTS")
    out = (Path(shots) if shots else tmp_path) / name
    out.parent.mkdir(parents=True, exist_ok=True)
    browser.screenshot(out)
    assert out.stat().st_size > 10_000
    return out
