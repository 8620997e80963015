"""The local debug run: ``python wrapper.py`` in a subprocess, output and exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from actorflow.wrapper import load_wrapper, run_once


def _run(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(path)],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


def test_debug_run_prints_response_and_time(echo_file: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = _run(echo_file, cwd=elsewhere)  # path= resolves from the wrapper's folder
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "== echo: local debug run (init -> once-exec -> fini)" in out
    assert 'params: {"mode": "humming", "name": "abc", "count": 2' in out
    assert "request data: audio, 26 bytes" in out
    assert "output_text: type=text status=3 len=23 data='echo humming 2 26 hello'" in out
    assert "raw: type=audio status=3 len=26 data=<26 bytes>" in out
    assert "fini called" in out
    assert "time: init " in out
    assert " ms, exec " in out
    assert out.rstrip().endswith("ok")
    assert result.stderr == ""


def test_debug_run_turns_error_code_into_message_and_exit_status(
    echo_file: Path, tmp_path: Path
) -> None:
    echo_file.write_text(
        echo_file.read_text(encoding="utf-8").replace(
            'IntegerParamField("fail", minimum=0, maximum=99999, value=0)',
            'IntegerParamField("fail", minimum=0, maximum=99999, value=3001)',
        ),
        encoding="utf-8",
    )
    result = _run(echo_file, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "error 3001: Access Key不存在或错误"
    assert "fini called" in result.stdout  # fini still runs after a failed exec


def test_debug_run_reports_a_missing_test_file(echo_file: Path, tmp_path: Path) -> None:
    (tmp_path / "test.wav").unlink()
    result = _run(echo_file, cwd=tmp_path)
    assert result.returncode == 1
    assert "body field 'data': test file 'test.wav' not found (tried " in result.stderr
    assert "fix path= in the request class" in result.stderr


def test_debug_run_reports_a_missing_hook(tmp_path: Path) -> None:
    path = tmp_path / "w.py"
    path.write_text(
        "from actorflow.wrapper import WrapperBase\n"
        "class Wrapper(WrapperBase):\n"
        "    def wrapperInit(self, config):\n"
        "        return 0\n"
        "if __name__ == '__main__':\n"
        "    Wrapper().run()\n",
        encoding="utf-8",
    )
    result = _run(path, cwd=tmp_path)
    assert result.returncode == 1
    assert "Wrapper does not implement wrapperOnceExec(params, reqData)" in result.stderr


def test_debug_run_reports_a_failed_init(tmp_path: Path) -> None:
    path = tmp_path / "w.py"
    path.write_text(
        "from actorflow.wrapper import WrapperBase\n"
        "class Wrapper(WrapperBase):\n"
        "    def wrapperInit(self, config):\n"
        "        return 2001\n"
        "    def wrapperError(self, code):\n"
        "        return 'init timed out'\n"
        "if __name__ == '__main__':\n"
        "    Wrapper().run()\n",
        encoding="utf-8",
    )
    result = _run(path, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "error 2001: init timed out"


def test_run_once_hands_the_file_bytes_to_the_wrapper(echo_file: Path) -> None:
    cls = load_wrapper(echo_file)
    report = run_once(cls())
    assert report.ok, report.message
    assert report.response is not None
    assert [item.key for item in report.response.list] == ["output_text", "raw"]
    (seen,) = cls.seen  # type: ignore[attr-defined]
    assert seen is report.request.list[0].data  # type: ignore[union-attr]
    assert report.exec_s >= 0
    json.dumps(report.params)
