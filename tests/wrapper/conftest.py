"""Sample wrappers written to temporary files, shared by the wrapper tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

ECHO_WRAPPER = textwrap.dedent('''
    """A wrapper that echoes its request; error codes on demand."""

    import time

    from actorflow.wrapper import (
        AudioBodyField, BooleanParamField, DataText, IntegerParamField, JsonBodyField,
        NumberParamField, Response, ResponseData, StringBodyField, StringParamField,
        WrapperBase,
    )


    class UserRequest:
        mode = StringParamField("mode", enums=["music", "humming"], value="humming",
                                required=True)
        name = StringParamField("name", minLength=2, maxLength=8, value="abc")
        count = IntegerParamField("count", minimum=1, maximum=5, value=2)
        ratio = NumberParamField("ratio", minimum=0.0, maximum=1.0, value=0.5)
        loud = BooleanParamField("loud", value=False)
        sleep_ms = IntegerParamField("sleep_ms", minimum=0, maximum=1000, value=0)
        fail = IntegerParamField("fail", minimum=0, maximum=99999, value=0)
        data = AudioBodyField("data", path="test.wav")
        note = StringBodyField("note", value="hello", required=False)
        meta = JsonBodyField("meta", value={"k": 1}, required=False)


    class UserResponse:
        text = StringBodyField("output_text")
        raw = AudioBodyField("raw")


    class Wrapper(WrapperBase):
        """Echo service for tests."""

        serviceId = "echo"
        version = "1.2.3"
        requestCls = UserRequest()
        responseCls = UserResponse()
        config = {"prefix": "echo"}
        seen = []

        def wrapperInit(self, config):
            self.prefix = config["prefix"]
            return 0

        def wrapperOnceExec(self, params, reqData):
            if params["fail"]:
                return self.response_err(params["fail"])
            if params["sleep_ms"]:
                time.sleep(params["sleep_ms"] / 1000)
            node = reqData.get("data")
            Wrapper.seen.append(node.data)
            text = f"{self.prefix} {params['mode']} {params['count']} {node.len}"
            note = reqData.get("note")
            if note is not None:
                text += " " + str(note.data, "utf-8")
            return Response([
                ResponseData("output_text", text, len(text.encode()), DataText),
                ResponseData("raw", node.data, node.len, 1),
            ])

        def wrapperFini(self):
            print("fini called")
            return 0

        def wrapperError(self, code):
            return {3001: "Access Key不存在或错误", 4408: "upstream timed out"}.get(
                code, f"unknown error {code}")


    if __name__ == "__main__":
        m = Wrapper()
        m.schema()
        m.run()
''')

WAV_BYTES = b"RIFF\x24\x00\x00\x00WAVEfmt fake-audio"


@pytest.fixture
def echo_file(tmp_path: Path) -> Path:
    """The echo wrapper and its test file in a fresh directory."""
    (tmp_path / "test.wav").write_bytes(WAV_BYTES)
    path = tmp_path / "wrapper.py"
    path.write_text(ECHO_WRAPPER, encoding="utf-8")
    return path
