"""A minimal headless-Chromium driver over the DevTools protocol (no Playwright needed):
open a page, wait until texts are visible, read the visible text, take a screenshot."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from websockets.sync.client import connect


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# the visible text, plus the cells of data grids (drawn on a canvas; their accessible copy is
# in the DOM but not in innerText)
_TEXT_JS = """
(() => {
  if (!document.body) return '';
  const grids = Array.from(document.querySelectorAll('[data-testid="stDataFrame"]'))
    .map(e => e.textContent).join('\\n');
  return document.body.innerText + '\\n' + grids;
})()
"""


class Browser:
    def __init__(self, chromium: str, width: int = 1440, height: int = 1800):
        port = free_port()
        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--disable-dev-shm-usage", "--no-first-run", f"--remote-debugging-port={port}",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.time() + 120
        ws_url = None
        while time.time() < deadline and ws_url is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    pages = [p for p in json.load(r) if p.get("type") == "page"]
                ws_url = pages[0]["webSocketDebuggerUrl"] if pages else None
            except OSError:
                time.sleep(0.3)
        if ws_url is None:
            self.close()
            raise RuntimeError("headless Chromium did not open its DevTools port")
        self.ws = connect(ws_url, max_size=None, open_timeout=10)
        self._id = 0
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width, height=height, deviceScaleFactor=1, mobile=False,
        )  # fmt: skip

    def call(self, method: str, **params) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=120))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def goto(self, url: str) -> None:
        """Open ``url`` from a blank page, so no text of the previous page is read."""
        self.call("Page.navigate", url="about:blank")
        self.call("Page.navigate", url=url)

    def text(self) -> str:
        res = self.call("Runtime.evaluate", expression=_TEXT_JS, returnByValue=True)
        return res.get("result", {}).get("value") or ""

    def wait_for(self, texts: list[str], timeout: float = 180.0, settle: float = 1.5) -> str:
        """Poll the visible text until every one of ``texts`` shows (or the timeout), then let
        charts draw for ``settle`` seconds; returns the last text read."""
        deadline = time.time() + timeout
        text = ""
        while time.time() < deadline:
            text = self.text()
            if all(t in text for t in texts):
                time.sleep(settle)
                return self.text()
            time.sleep(0.4)
        return text

    def screenshot(self, path: Path) -> int:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        raw = base64.b64decode(data)
        path.write_bytes(raw)
        return len(raw)

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
