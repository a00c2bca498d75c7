"""A real headless Chromium for the tests, driven over the DevTools protocol (aiohttp's
websocket client): open a page, run JavaScript in it, take a screenshot. Chromium comes from
Debian (`apt-get install chromium`) when missing; ``install`` says why it cannot be.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import apt_packages


def install() -> str | None:
    """Install Chromium when missing; return why not, or None."""
    if binary():
        return None
    return apt_packages.install(["chromium"], ["chromium"])


def binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, width: int = 1400, height: int = 1000):
        self.size = (width, height)
        self.loop = asyncio.new_event_loop()
        self.ids = 0

    def __enter__(self):
        self.profile = tempfile.mkdtemp(prefix="zflow-chromium-")
        self.proc = subprocess.Popen(
            [binary(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             f"--window-size={self.size[0]},{self.size[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.time() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("Chromium did not start its DevTools endpoint")
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        self.loop.run_until_complete(self._connect(port))
        return self

    def __exit__(self, *exc):
        self.loop.run_until_complete(self._close())
        self.loop.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)

    async def _connect(self, port: int) -> None:
        import aiohttp

        self.session = aiohttp.ClientSession()
        async with self.session.get(f"http://127.0.0.1:{port}/json/list") as r:
            targets = await r.json()
        page = next(t for t in targets if t["type"] == "page")
        self.ws = await self.session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)

    async def _close(self) -> None:
        await self.ws.close()
        await self.session.close()

    async def _call(self, method: str, params: dict | None = None) -> dict:
        self.ids += 1
        await self.ws.send_str(json.dumps({"id": self.ids, "method": method, "params": params or {}}))
        while True:
            msg = json.loads((await self.ws.receive(timeout=120)).data)
            if msg.get("id") == self.ids:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def call(self, method: str, params: dict | None = None) -> dict:
        return self.loop.run_until_complete(self._call(method, params))

    def open(self, url: str) -> None:
        self.call("Page.enable")
        self.call("Page.navigate", {"url": url})
        self.wait("document.readyState === 'complete'")

    def js(self, expression: str):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression[:80]}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, condition: str, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while not self.js(f"Boolean({condition})"):
            if time.time() > deadline:
                raise TimeoutError(f"page never satisfied: {condition}")
            time.sleep(0.25)

    def text(self) -> str:
        """The rendered page's text, iframes included (their documents are pierced), without the
        text of script and style elements."""
        root = self.call("DOM.getDocument", {"depth": -1, "pierce": True})["root"]
        out: list[str] = []

        def walk(node: dict) -> None:
            if node.get("nodeName") in ("SCRIPT", "STYLE"):
                return
            if node.get("nodeType") == 3:
                out.append(node["nodeValue"])
            for child in node.get("children", []):
                walk(child)
            if "contentDocument" in node:
                walk(node["contentDocument"])

        walk(root)
        return " ".join(out)

    def click_text(self, text: str) -> bool:
        """Click the innermost element whose whole visible text is ``text``."""
        return self.js(
            "(t => { const m = Array.from(document.querySelectorAll('a, button, li, div, span'))"
            ".filter(x => x.innerText && x.innerText.trim() === t);"
            " if (!m.length) return false; m[m.length - 1].click(); return true; })("
            + json.dumps(text) + ")")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        Path(path).write_bytes(base64.b64decode(data))
