"""Re-make ``docs/images/dashboard.png``: the demo flow with its dashboard, in chromium.

    .venv/bin/python tests/support/dashboard_screenshot.py [docs/images/dashboard.png]

Runs the face-detection demo graph at 15 frames/s with a ``dashboard`` sink, opens the
page in headless chromium at 1440 px and saves a full-page PNG once 90 frames have been
shown (rates and latency percentiles have settled by then).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actorflow.dashboard import serve_dashboard
from actorflow.demo.face_detect import load_demo_graph, with_dashboard, write_input_video
from actorflow.runtime import Flow
from support.browser import Browser

SHOWN = "Number((document.querySelector('.tile .cap span:nth-of-type(3)') || {}).textContent"
SHOWN += "?.split(' ')[0].replace(',', '') || 0) >= 90"


async def main(target: Path) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        write_input_video(out / "astronaut.avi", 300, 15.0)
        flow = Flow(with_dashboard(load_demo_graph(out, 15.0), 15.0))
        async with serve_dashboard(flow, port=0) as url:
            await flow.run_async()
            async with Browser(1440, 900) as browser:
                await browser.goto(url)
                await browser.wait_for(SHOWN)
                png = await browser.screenshot()
            await flow.stop()
            await flow.wait()
    target.write_bytes(png)  # noqa: ASYNC240 (a script, the flow has ended)
    print(f"wrote {target}")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images/dashboard.png")))
