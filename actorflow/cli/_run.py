"""``actorflow run FILE``: run a graph to its end, with progress and per-node statistics."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import signal
import sys
import threading
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from actorflow.cli._common import (
    add_file_arguments,
    add_override_arguments,
    load_checked,
    problems_of,
)
from actorflow.errors import FlowFailed, GraphError, UnitConfigError
from actorflow.graph import Graph
from actorflow.runtime import Flow, FlowStatistics, Status

EXIT_OK, EXIT_FAILED, EXIT_TIMEOUT = 0, 1, 3
_COUNT_PARAMS = ("count", "limit", "max_frames", "frames")
"""Source parameters that say how many items a finite source will produce."""


def register(subparsers: Any) -> None:
    """Add the ``run`` subcommand."""
    parser = subparsers.add_parser(
        "run",
        help="run a graph until its sources end",
        description="Run a graph whose data comes from source units (video files, image "
        "directories, generators) until every source has ended, showing "
        "progress; then print per-node statistics. Ctrl-C stops gracefully "
        "(in-flight items drain), a second Ctrl-C cancels.",
    )
    add_file_arguments(parser)
    add_override_arguments(parser)
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        default=None,
        help="stop the flow after S seconds (exit code 3)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the statistics as one JSON object on stdout (and log JSON lines to "
        "stderr unless --log-format says otherwise)",
    )
    parser.add_argument(
        "--trace",
        metavar="FILE",
        default=None,
        help="record every actor call and save a Chrome trace to FILE (open it in "
        "https://ui.perfetto.dev or chrome://tracing)",
    )
    parser.add_argument(
        "--dashboard",
        metavar="[HOST:]PORT",
        type=_address,
        default=None,
        help="serve the live dashboard page at http://HOST:PORT/dashboard while the flow "
        "runs (HOST defaults to 127.0.0.1; PORT 0 picks a free port); the URL is printed "
        "to stderr",
    )
    parser.add_argument(
        "--ray",
        metavar="ADDRESS",
        default=None,
        help="the Ray cluster for nodes with placement=ray (e.g. ray://head:10001 or "
        "head:6379); without it, a local Ray is started when the graph needs one",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Load, check and run ``args.file``; return the exit code."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        graph = load_checked(
            args.file,
            allow_custom_code=args.allow_custom_code,
            overrides=args.overrides,
            input_path=args.input,
        )
    except GraphError as exc:
        for problem in problems_of(exc):
            err.print(f"{args.file}: {problem}", markup=False)
        return EXIT_FAILED
    if graph.inputs:
        names = ", ".join(repr(n) for n in graph.inputs)
        err.print(
            f"{args.file}: graph {graph.name!r} is fed through its input nodes ({names}) "
            "by a program; 'actorflow run' needs a graph whose data comes from source "
            "units. Feed it from Python with flow.create_external_data_map(), or "
            "serve it over HTTP.",
            markup=False,
        )
        return EXIT_FAILED
    flow = Flow(graph, trace=bool(args.trace), ray_address=args.ray)
    try:
        flow.build()
    except (GraphError, UnitConfigError) as exc:
        err.print(f"{args.file}: {exc}", markup=False)
        return EXIT_FAILED
    try:
        status = asyncio.run(_run(flow, graph, args))
    except FlowFailed:  # a node failed to open: the flow never ran
        status = Status.FAULT
    except OSError as exc:  # the dashboard's port: the flow never ran
        if args.dashboard is None or isinstance(exc, BrokenPipeError):
            raise  # not the dashboard's (a closed stdout is handled by main)
        host, port = args.dashboard
        err.print(
            f"cannot serve the dashboard on {host}:{port}: {exc.strerror or exc}; "
            "pick another port (--dashboard 0 picks a free one)",
            markup=False,
        )
        return EXIT_FAILED
    stats = flow.statistics()
    if args.trace:
        err.print(f"trace written to {flow.write_trace(args.trace)}", markup=False)
    if args.json:
        print(json.dumps(_stats_json(stats, status), default=str))
    else:
        out = Console(highlight=False)
        if not out.is_terminal:
            out = Console(highlight=False, width=120)  # pipes and CI logs: do not squeeze
        out.print(_table(stats))
    if status is Status.FAULT:
        err.print(f"[bold red]failed:[/] {flow.exception}")
        return EXIT_FAILED
    if status is Status.TIMEOUT:
        err.print(f"stopped after --timeout {args.timeout:g} s")
        return EXIT_TIMEOUT
    return EXIT_OK


async def _run(flow: Flow, graph: Graph, args: argparse.Namespace) -> Status:
    """Start the flow (and its dashboard, when asked), then show progress until it ends."""
    total = _expected_items(graph)
    async with contextlib.AsyncExitStack() as stack:
        if args.dashboard is not None:  # bound before the flow starts: a busy port stops here
            from actorflow.dashboard import serve_dashboard

            host, port = args.dashboard
            url = await stack.enter_async_context(serve_dashboard(flow, host, port))
            print(f"dashboard: {url}", file=sys.stderr, flush=True)
        stdout = stack.enter_context(_stdout_guard(flow))  # before any unit can print
        await flow.run_async()
        status = await _progress(flow, graph, args, total)
    if stdout.reader_gone:
        raise BrokenPipeError  # the command line ends quietly (exit 141)
    return status


async def _progress(
    flow: Flow, graph: Graph, args: argparse.Namespace, total: int | None
) -> Status:
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("items"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=args.json,
    )
    with progress, _interrupts(flow):
        task = progress.add_task(graph.name, total=total)
        ticker = asyncio.get_running_loop().create_task(_tick(flow, progress, task))
        try:
            status = await flow.wait(args.timeout)
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        progress.update(task, completed=_produced(flow.statistics(), graph))
    return status


async def _tick(flow: Flow, progress: Progress, task: Any) -> None:
    graph = flow.graph
    assert graph is not None
    while True:
        progress.update(task, completed=_produced(flow.statistics(), graph))
        await asyncio.sleep(0.1)  # a UI refresh rate, not synchronisation


@contextlib.contextmanager
def _interrupts(flow: Flow) -> Any:
    """First Ctrl-C: stop gracefully; second: cancel (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    presses = 0
    tasks: set[asyncio.Task[None]] = set()

    def on_sigint() -> None:
        nonlocal presses
        presses += 1
        grace = None if presses == 1 else 0.0
        print("\nstopping..." if presses == 1 else "\ncancelling...", file=sys.stderr)
        tasks.add(loop.create_task(flow.stop(grace)))

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def _address(text: str) -> tuple[str, int]:
    from actorflow.dashboard import parse_address

    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _GuardedStdout(io.TextIOBase):
    """``sys.stdout`` while a flow runs, surviving the departure of its reader.

    When the reader goes away (``| head``), the flow is asked to stop once and later
    writes are discarded, so that units printing results do not fail packet after packet.
    """

    def __init__(self, stream: Any, on_gone: Any) -> None:
        self._stream, self._on_gone = stream, on_gone
        self.reader_gone = False

    def write(self, text: str) -> int:
        return int(self._guard(self._stream.write, text, len(text)))

    def flush(self) -> None:
        self._guard(self._stream.flush, None, None)

    def _guard(self, call: Any, arg: Any, default: Any) -> Any:
        if self.reader_gone:
            return default
        try:
            return call() if arg is None else call(arg)
        except BrokenPipeError:
            self.reader_gone = True
            self._on_gone()
            return default

    def fileno(self) -> int:
        return int(self._stream.fileno())

    def isatty(self) -> bool:
        return bool(self._stream.isatty())


@contextlib.contextmanager
def _stdout_guard(flow: Flow) -> Any:
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    def stop() -> None:  # from any thread: units may print on executor threads
        loop.call_soon_threadsafe(lambda: tasks.add(loop.create_task(flow.stop())))

    guarded = _GuardedStdout(sys.stdout, stop)
    real, sys.stdout = sys.stdout, guarded
    try:
        yield guarded
    finally:
        sys.stdout = real


def _sources(graph: Graph) -> list[str]:
    fed = {edge.dst.node for edge in graph.edges}
    return [n.id for n in graph.nodes if n.kind == "unit" and n.id not in fed]


def _expected_items(graph: Graph) -> int | None:
    """How many items the sources will produce, when every source says so."""
    total = 0
    for node_id in _sources(graph):
        params = graph.node(node_id).params
        count = next((params[p] for p in _COUNT_PARAMS if isinstance(params.get(p), int)), None)
        if count is None:
            return None  # an open-ended source: the bar shows a count, not a fraction
        total += count
    return total


def _produced(stats: FlowStatistics, graph: Graph) -> int:
    return sum(stats.nodes[n].emitted for n in _sources(graph) if n in stats.nodes)


def _table(stats: FlowStatistics) -> Table:
    table = Table(
        title=f"{stats.name}: {stats.state} after {stats.elapsed_s:.2f} s",
        caption="in: received, done: processed, out: emitted, rst: restarts, "
        "queue: mailbox used/size",
    )
    table.add_column("node", no_wrap=True)
    table.add_column("unit", no_wrap=True)
    for column in ("rep", "in", "done", "out", "drop", "fail", "rst", "queue", "busy s"):
        table.add_column(column, justify="right", no_wrap=True)
    for node in stats.nodes.values():
        table.add_row(
            node.node,
            node.unit,
            str(node.replicas),
            str(node.received),
            str(node.processed),
            str(node.emitted),
            str(node.dropped),
            str(node.failed),
            str(node.restarts),
            f"{node.mailbox_used}/{node.mailbox_size}",
            f"{node.busy_s:.3f}",
        )
    return table


def _stats_json(stats: FlowStatistics, status: Status) -> dict[str, Any]:
    return {
        "flow": stats.name,
        "status": status.name,
        "state": stats.state,
        "elapsed_s": round(stats.elapsed_s, 6),
        "nodes": {name: asdict(node) for name, node in stats.nodes.items()},
        "edges": {name: asdict(edge) for name, edge in stats.edges.items()},
    }
