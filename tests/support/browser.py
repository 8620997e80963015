"""Drive Debian's headless ``chromium`` over the DevTools protocol (aiohttp, no download).

``async with Browser() as browser`` starts ``/usr/bin/chromium --headless`` with a
throw-away profile, talks to its page over one WebSocket, and ends the process on
exit. ``make test`` installs ``chromium`` where missing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import shutil
import tempfile
from typing import Any

import aiohttp

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)

WAIT_FOR = """
new Promise((resolve) => {
  const ok = () => { try { return Boolean(%s); } catch (e) { return false; } };
  const done = () => requestAnimationFrame(() => requestAnimationFrame(() => resolve(true)));
  if (ok()) return done();
  const check = () => { if (ok()) { observer.disconnect();
    document.removeEventListener("load", check, true); done(); } };
  const observer = new MutationObserver(check);
  observer.observe(document, {subtree: true, childList: true, attributes: true,
                              characterData: true});
  document.addEventListener("load", check, true);
})
"""


class Browser:
    """One headless chromium with one page."""

    def __init__(self, width: int = 1400, height: int = 1000) -> None:
        self.width, self.height = width, height
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._profile = tempfile.TemporaryDirectory(prefix="actorflow-chromium-")
        self._proc: asyncio.subprocess.Process | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.console: list[str] = []
        """Page errors and console messages (``Runtime`` events)."""

    async def __aenter__(self) -> Browser:
        self._proc = await asyncio.create_subprocess_exec(
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={self._profile.name}",
            f"--window-size={self.width},{self.height}",
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self._proc.stderr is not None
        port = None
        while port is None:  # chromium prints its DevTools address once it listens
            line = (await self._proc.stderr.readline()).decode(errors="replace")
            if not line:
                msg = f"chromium exited before listening (code {await self._proc.wait()})"
                raise RuntimeError(msg)
            found = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            port = int(found.group(1)) if found else None
        self._tasks.append(asyncio.create_task(self._drain(self._proc.stderr)))
        self._http = aiohttp.ClientSession()
        async with self._http.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json()
        page = next(t for t in targets if t["type"] == "page")
        self._ws = await self._http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        self._tasks.append(asyncio.create_task(self._read()))
        await self.send("Runtime.enable")
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=self.height,
            deviceScaleFactor=1,
            mobile=False,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            if self._ws is not None and not self._ws.closed:
                await asyncio.wait_for(self.send("Browser.close"), 5)
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()
        if self._proc is not None:
            if self._proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self._proc.kill()
            await self._proc.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._profile.cleanup()

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        while await stream.readline():
            pass

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            doc = json.loads(msg.data)
            waiter = self._pending.pop(doc.get("id", -1), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(doc)
            elif doc.get("method") in ("Runtime.exceptionThrown", "Runtime.consoleAPICalled"):
                self.console.append(json.dumps(doc["params"])[:500])
        for waiter in self._pending.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError("chromium closed the DevTools socket"))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; returns its ``result`` (raises on a protocol error)."""
        assert self._ws is not None
        ident = next(self._ids)
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ident] = waiter
        await self._ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        doc = await waiter
        if "error" in doc:
            msg = f"{method}: {doc['error']}"
            raise RuntimeError(msg)
        result: dict[str, Any] = doc.get("result", {})
        return result

    async def goto(self, url: str) -> None:
        """Open ``url`` and wait for its ``load`` event."""
        await self.send("Page.enable")
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'")

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` in the page (promises awaited)."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            msg = f"page error: {result['exceptionDetails']}"
            raise RuntimeError(msg)
        return result["result"].get("value")

    async def wait_for(self, condition: str) -> None:
        """Wait until the JavaScript ``condition`` holds (DOM changes and loads re-check it)."""
        await self.evaluate(WAIT_FOR % condition)

    async def screenshot(self, *, full_page: bool = True) -> bytes:
        """A PNG of the page (the whole scroll height when ``full_page``)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = await self.send("Page.getLayoutMetrics")
            size = metrics["cssContentSize"]
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": self.width,
                "height": min(int(size["height"]), 4000),
                "scale": 1,
            }
            params["captureBeyondViewport"] = True
        return base64.b64decode((await self.send("Page.captureScreenshot", **params))["data"])
