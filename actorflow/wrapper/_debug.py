"""The local debug run: ``python wrapper.py`` with ``m = Wrapper(); m.schema(); m.run()``.

It calls the hooks the way the server does (init -> once-exec -> fini) with the test
values of the field declarations (``value=`` for parameters and text, the file named
by ``path=`` for binary fields), prints the response and the time, and turns a
non-zero error code into its ``wrapperError`` message and exit status 1.
"""

from __future__ import annotations

import inspect
import json
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from actorflow.wrapper._dto import TYPE_NAMES, DataListCls, Response
from actorflow.wrapper._errors import WrapperExecError, WrapperRequestError
from actorflow.wrapper._fields import BodyField, JsonBodyField

if TYPE_CHECKING:
    from actorflow.wrapper._base import WrapperBase


@dataclass
class DebugReport:
    """What one local debug run did."""

    params: dict[str, Any] = field(default_factory=dict)
    request: DataListCls | None = None
    response: Response | None = None
    error_code: int = 0
    """Non-zero: init or exec returned this code (``-1``: a hook raised)."""
    message: str = ""
    """The ``wrapperError`` text for ``error_code``, or the exception."""
    init_s: float = 0.0
    exec_s: float = 0.0
    fini_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether init, exec and fini all succeeded."""
        return self.error_code == 0


def test_request(wrapper: WrapperBase) -> tuple[dict[str, Any], DataListCls]:
    """Build the request of the debug run from the declared test values.

    Raises:
        WrapperRequestError: a test value breaks its own declaration, or a required
            field has no test value, or a ``path`` does not exist.
    """
    cls = type(wrapper)
    params = {f.key: f.test_value for f in cls.param_fields() if f.test_value is not None}
    payload: dict[str, Any] = {}
    for body in cls.body_fields():
        data = _test_data(cls, body)
        if data is not None:
            payload[body.key] = data
        elif body.required:
            msg = (
                f"body field {body.key!r} has no test value; declare "
                f"{'path=' if body.binary else 'value= or path='} so the debug run can "
                "send one"
            )
            raise WrapperRequestError(msg, field=body.key, reason="missing")
    return wrapper.check_request(params, payload)


def run_once(wrapper: WrapperBase) -> DebugReport:
    """Run init -> once-exec -> fini with the test values; never prints, never exits.

    Exceptions from hooks are reported with ``error_code = -1``; fini runs whenever
    init succeeded.
    """
    report = DebugReport()
    start = time.perf_counter()
    try:
        wrapper.init()
    except WrapperExecError as exc:
        report.error_code, report.message = exc.code, exc.message
        return report
    except Exception as exc:
        report.error_code, report.message = -1, _describe(exc)
        return report
    finally:
        report.init_s = time.perf_counter() - start
    try:
        report.params, report.request = test_request(wrapper)
        start = time.perf_counter()
        try:
            report.response = wrapper.exec(report.params, report.request)
        finally:
            report.exec_s = time.perf_counter() - start
        if report.response.error_code:
            report.error_code = report.response.error_code
            report.message = wrapper.error_message(report.error_code)
    except WrapperRequestError as exc:
        report.error_code, report.message = -1, f"invalid test request: {exc}"
    except Exception as exc:
        report.error_code, report.message = -1, _describe(exc)
    finally:
        start = time.perf_counter()
        try:
            code = wrapper.fini()
            if code and not report.error_code:
                report.error_code, report.message = code, wrapper.error_message(code)
        except Exception as exc:
            if not report.error_code:
                report.error_code, report.message = -1, _describe(exc)
        report.fini_s = time.perf_counter() - start
    return report


def run_and_print(wrapper: WrapperBase, out: TextIO | None = None) -> DebugReport:
    """``run_once`` and print the report; exit status 1 (``SystemExit``) on failure."""
    out = out or sys.stdout
    name = type(wrapper).service_name()
    print(f"== {name}: local debug run (init -> once-exec -> fini)", file=out)
    report = run_once(wrapper)
    if report.request is not None:
        print(f"params: {json.dumps(report.params, ensure_ascii=False)}", file=out)
        for node in report.request.list:
            print(
                f"request {node.key}: {TYPE_NAMES.get(node.type, node.type)}, {node.len} bytes",
                file=out,
            )
    if report.response is not None and not report.response.error_code:
        print(f"response ({len(report.response.list)} item(s)):", file=out)
        for item in report.response.list:
            print(
                f"  {item.key}: type={TYPE_NAMES.get(item.type, item.type)} "
                f"status={item.status} len={item.len} data={_preview(item.data)}",
                file=out,
            )
    print(
        f"time: init {report.init_s * 1e3:.2f} ms, exec {report.exec_s * 1e3:.2f} ms, "
        f"fini {report.fini_s * 1e3:.2f} ms",
        file=out,
    )
    out.flush()
    if not report.ok:
        print(f"error {report.error_code}: {report.message}", file=sys.stderr)
        sys.stderr.flush()
        raise SystemExit(1)
    print("ok", file=out)
    return report


def _test_data(cls: type[WrapperBase], body: BodyField) -> bytes | None:
    if body.path:
        return _resolve(cls, body).read_bytes()
    if body.value is None:
        return None
    if isinstance(body.value, bytes):
        return body.value
    if isinstance(body, JsonBodyField) and not isinstance(body.value, str):
        return json.dumps(body.value, ensure_ascii=False).encode()
    return str(body.value).encode()


def _resolve(cls: type[WrapperBase], body: BodyField) -> Path:
    path = Path(str(body.path)).expanduser()
    if path.is_absolute():
        candidates = [path]
    else:
        candidates = [base / path for base in (_class_dir(cls), Path.cwd()) if base]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    msg = (
        f"body field {body.key!r}: test file {body.path!r} not found (tried {tried}); "
        "fix path= in the request class"
    )
    raise WrapperRequestError(msg, field=body.key, reason="missing")


def _class_dir(cls: type) -> Path | None:
    try:
        return Path(inspect.getfile(cls)).resolve().parent
    except (TypeError, OSError):
        return None


def _preview(data: Any) -> str:
    if isinstance(data, bytes | bytearray | memoryview):
        return f"<{memoryview(data).nbytes} bytes>"
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, default=str)
    return repr(text if len(text) <= 200 else text[:200] + "...")


def _describe(exc: BaseException) -> str:
    frames = traceback.format_exception(exc)
    return "".join(frames).rstrip()
