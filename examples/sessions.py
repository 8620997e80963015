"""Many sessions through one running graph, each getting exactly its own results.

A graph with an ``input`` and an ``output`` node is a service: every session is a
stream of its own (an HTTP request, a camera, a user), and sessions share the
graph's actors and batches.

    python examples/sessions.py
"""

from __future__ import annotations

import asyncio

import anyio

import actorflow as af


@af.flowunit
async def square(x: int) -> int:
    await asyncio.sleep(0.001)  # pretend work
    return x * x


GRAPH = {
    "name": "squares",
    "nodes": {
        "input": {"type": "input"},
        "square": {"flowunit": "square", "replicas": 4},  # 4 actors, order still kept
        "output": {"type": "output"},
    },
    "edges": ["input -> square", "square -> output"],
}


async def client(flow: af.Flow, k: int) -> list[int]:
    """One session: send five numbers, close, read results until end of stream."""
    async with flow.session() as session:
        for i in range(5):
            await session.send("input", k * 10 + i)
    return [result.data async for result in session]


async def main() -> dict[int, list[int]]:
    results: dict[int, list[int]] = {}
    async with af.Flow(GRAPH) as flow:

        async def run(k: int) -> None:
            results[k] = await client(flow, k)

        async with anyio.create_task_group() as tg:
            for k in range(20):
                tg.start_soon(run, k)
    for k in (0, 1, 19):
        print(f"session {k}: {results[k]}")
    return results


if __name__ == "__main__":
    asyncio.run(main())
