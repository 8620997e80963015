# ruff: noqa: E501, RUF001 - the seed's wrapper is kept verbatim: long lines, full-width punctuation
"""Seed 002's third-party-API wrapper through ``actorflow.compat.aiges``.

The wrapper below is the seed's example assembled as written (HMAC-SHA1 signing, a
``requests.post`` with a timeout, error codes through ``wrapperError``); the only
edits are the import prefix (``aiges.`` -> ``actorflow.compat.aiges.``) and the
placeholders the seed leaves to the user: the ``config`` values and the test file
path. It runs against a fake recognition API served by aiohttp on 127.0.0.1, both
as a local debug run (``python wrapper.py``) and served over HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from actorflow.wrapper import build_app

pytestmark = pytest.mark.anyio

SEED_WRAPPER = textwrap.dedent("""
    import base64
    import hashlib
    import hmac
    import logging
    import re
    import time

    import requests

    from actorflow.compat.aiges.sdk import WrapperBase, StringParamField, AudioBodyField, \\
        StringBodyField

    try:
        from aiges_embed import ResponseData, Response, DataListNode, DataListCls
    except:
        from actorflow.compat.aiges.dto import Response, ResponseData, DataListNode, DataListCls


    class UserRequest(object):
        params1 = StringParamField(key="mode", enums=["music", "humming"], value='humming')

        input1 = AudioBodyField(key="data", path="@TEST_FILE@")


    class UserResponse(object):
        accept1 = StringBodyField(key="ouput_text")


    class Wrapper(WrapperBase):
        requestCls = UserRequest()
        responseCls = UserResponse()

        requrl, http_method, http_uri = None, None, None
        # music
        access_key_music, access_secret_music = None, None
        # humming
        access_key_humming, access_secret_humming = None, None

        config = {}
        config = {
            "requrl": "@REQURL@",
            "http_method": "POST",
            "http_uri": "/v1/identify",
            "access_key_music": "music-key",
            "access_secret_music": "@SECRET_MUSIC@",
            "access_key_humming": "humming-key",
            "access_secret_humming": "humming-secret",
        }

        def wrapperInit(cls, config: {}) -> int:
            print("Initializing ..")
            config = config

            Wrapper.requrl, Wrapper.http_method, Wrapper.http_uri = config['requrl'], config['http_method'], config['http_uri']
            Wrapper.access_key_music, Wrapper.access_secret_music = config['access_key_music'], config['access_secret_music']
            Wrapper.access_key_humming, Wrapper.access_secret_humming = config['access_key_humming'], config['access_secret_humming']

            print('----------Finish Init--------------')

            return 0

        def wrapperError(cls, ret: int) -> str:
            if ret == 1001:
                return "识别无结果"
            elif ret == 2000:
                return "录音失败，可能是设备权限问题"
            elif ret == 2001:
                return "初始化错误或者初始化超时"
            elif ret == 2002:
                return "处理metadata错误"
            elif ret == 2004:
                return "无法生成指纹（有可能是静音）"
            elif ret == 2005:
                return "超时"
            elif ret == 3000:
                return "服务端错误"
            elif ret == 3001:
                return "Access Key不存在或错误"
            elif ret == 3002:
                return "HTTP内容非法"
            elif ret == 3003:
                return "请求数超出限制（需要升级账号）"
            elif ret == 3006:
                return "参数非法"
            elif ret == 3014:
                return "签名非法"
            elif ret == 3015:
                return "QPS超出限制（需要升级账号）"
            else:
                return f"User Defined Error: {ret}"

        def wrapperFini() -> int:
            logging.info('Wrapper finished.')
            return 0

        def wrapperOnceExec(self, params: {}, reqData: DataListCls) -> Response:
            data_mode = params['mode']

            access_key = Wrapper.access_key_music if data_mode == 'music' else Wrapper.access_key_humming
            access_secret = Wrapper.access_secret_music if data_mode == 'music' else Wrapper.access_secret_humming

            src = reqData.list[0].data  # binary files
            sample_bytes = reqData.list[0].len
            signature_version, data_type = '1', 'audio'

            timestamp = time.time()
            res = Response()

            string_to_sign = Wrapper.http_method + '\\n' \\
                + Wrapper.http_uri + '\\n' \\
                + access_key + '\\n' \\
                + data_type + '\\n' \\
                + signature_version + '\\n' \\
                + str(timestamp)
            sign = base64.b64encode(hmac.new(access_secret.encode('ascii'), string_to_sign.encode('ascii'), digestmod=hashlib.sha1).digest()).decode('ascii')

            if sign is None:
                return res.response_err(5014)

            files = {'sample': src}
            data = {
                'access_key': access_key,
                'sample_bytes': sample_bytes,
                'timestamp': str(timestamp),
                'signature': sign,
                'data_type': data_type,
                'signature_version': signature_version
            }

            try:
                r = requests.post(Wrapper.requrl, files=files, data=data, timeout=5)
            except requests.exceptions.ConnectTimeout:
                return res.response_err(4408)
            if r is None:
                return res.response_err(4003)

            if r.status_code != 200:
                return res.response_err(4000 + r.status_code)

            pattern = re.compile('"code":\\\\d+')
            error_code = re.findall(pattern, r.text)
            error_code = error_code[0].split(':')[-1]

            if int(error_code):
                return self.response_err(int(error_code))
            else:
                r.encoding = 'utf-8'
                l = ResponseData()

                l.key = "output_text"
                l.type = 0
                l.status = 3
                l.data = r.text
                l.len = len(r.text.encode())
                res.list = [l]
            return res


    if __name__ == '__main__':
        m = Wrapper()
        m.schema()
        m.run()
""")

SAMPLE = b"RIFF\x10\x00\x00\x00WAVEhumming-sample"
SECRETS = {"music-key": "music-secret", "humming-key": "humming-secret"}


def _compact(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


class FakeRecognitionApi:
    """A signed-upload recognition API in the style the seed calls (ACRCloud-like)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_status: int | None = None

    async def identify(self, request: web.Request) -> web.Response:
        if self.fail_status is not None:
            return web.Response(status=self.fail_status, text="unavailable")
        form = await request.post()
        sample = form["sample"]
        assert isinstance(sample, web.FileField)
        audio = sample.file.read()
        fields = {k: str(v) for k, v in form.items() if k != "sample"}
        self.requests.append({**fields, "audio": audio})
        secret = SECRETS.get(fields["access_key"])
        if secret is None:
            return web.Response(text=_compact({"status": {"msg": "bad key", "code": 3001}}))
        to_sign = "\n".join(
            [
                "POST",
                "/v1/identify",
                fields["access_key"],
                fields["data_type"],
                fields["signature_version"],
                fields["timestamp"],
            ]
        )
        expected = base64.b64encode(
            hmac.new(secret.encode(), to_sign.encode(), hashlib.sha1).digest()
        ).decode()
        if not hmac.compare_digest(expected, fields["signature"]):
            return web.Response(text=_compact({"status": {"msg": "bad signature", "code": 3014}}))
        if int(fields["sample_bytes"]) != len(audio):
            return web.Response(text=_compact({"status": {"msg": "bad length", "code": 3006}}))
        return web.Response(
            text=_compact(
                {
                    "status": {"msg": "Success", "code": 0},
                    "metadata": {"humming": [{"title": "阳光总在风雨后"}]},
                }
            )
        )


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeRecognitionApi, str]]:
    fake = FakeRecognitionApi()
    app = web.Application()
    app.router.add_post("/v1/identify", fake.identify)
    async with TestServer(app, host="127.0.0.1") as server:
        yield fake, str(server.make_url("/v1/identify"))


def _write_wrapper(folder: Path, url: str, secret_music: str = "music-secret") -> Path:
    (folder / "test.wav").write_bytes(SAMPLE)
    text = (
        SEED_WRAPPER.replace("@REQURL@", url)
        .replace("@TEST_FILE@", "test.wav")
        .replace("@SECRET_MUSIC@", secret_music)
    )
    path = folder / "wrapper.py"
    path.write_text(text, encoding="utf-8")
    return path


def test_only_the_import_prefix_differs_from_aiges() -> None:
    imports = [line.strip() for line in SEED_WRAPPER.splitlines() if "aiges" in line]
    assert imports == [
        "from actorflow.compat.aiges.sdk import WrapperBase, StringParamField, AudioBodyField, \\",
        "from aiges_embed import ResponseData, Response, DataListNode, DataListCls",
        "from actorflow.compat.aiges.dto import Response, ResponseData, DataListNode, DataListCls",
    ]


async def test_seed_wrapper_debug_run_against_fake_api(
    api: tuple[FakeRecognitionApi, str], tmp_path: Path
) -> None:
    fake, url = api
    path = _write_wrapper(tmp_path, url)
    with anyio.fail_after(30):
        result = await anyio.run_process([sys.executable, str(path)], cwd=tmp_path, check=False)
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, err
    assert "Initializing .." in out
    assert '"openapi": "3.1.0"' in out  # m.schema() prints the document
    assert "output_text: type=text status=3" in out
    assert "阳光总在风雨后" in out
    assert "time: init " in out
    (call,) = fake.requests
    assert call["access_key"] == "humming-key"
    assert call["audio"] == SAMPLE
    assert call["sample_bytes"] == str(len(SAMPLE))


async def test_seed_wrapper_debug_run_maps_api_error_to_message(
    api: tuple[FakeRecognitionApi, str], tmp_path: Path
) -> None:
    _, url = api
    path = _write_wrapper(tmp_path, url)
    text = path.read_text(encoding="utf-8").replace("value='humming'", "value='music'")
    path.write_text(text.replace('"music-secret"', '"wrong"'), encoding="utf-8")
    with anyio.fail_after(30):
        result = await anyio.run_process([sys.executable, str(path)], cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert result.stderr.decode().strip() == "error 3014: 签名非法"


@pytest.fixture
async def served(
    api: tuple[FakeRecognitionApi, str], tmp_path: Path
) -> AsyncIterator[tuple[FakeRecognitionApi, TestClient[Any, Any]]]:
    fake, url = api
    app = build_app(_write_wrapper(tmp_path, url, secret_music="not-the-secret"))
    async with TestServer(app, host="127.0.0.1") as server, TestClient(server) as client:
        yield fake, client


async def test_seed_wrapper_served_over_http(
    served: tuple[FakeRecognitionApi, TestClient[Any, Any]],
) -> None:
    fake, client = served
    form = aiohttp.FormData()
    form.add_field("mode", "humming")
    form.add_field("data", SAMPLE, filename="song.wav", content_type="audio/wav")
    response = await client.post("/v1/infer", data=form)
    assert response.status == 200, await response.text()
    body = await response.json()
    item = body["payload"]["output_text"]
    assert json.loads(item["data"])["metadata"]["humming"][0]["title"] == "阳光总在风雨后"
    assert fake.requests[-1]["audio"] == SAMPLE


async def test_seed_wrapper_served_signature_error_is_json_error(
    served: tuple[FakeRecognitionApi, TestClient[Any, Any]],
) -> None:
    _, client = served  # the music secret was set wrong
    request = {
        "parameter": {"mode": "music"},
        "payload": {"data": base64.b64encode(SAMPLE).decode()},
    }
    response = await client.post("/v1/infer", json=request)
    assert response.status == 500
    assert await response.json() == {
        "code": 3014,
        "message": "签名非法",
        "error": "签名非法",
        "reason": "wrapper_error",
        "status": 500,
    }


async def test_seed_wrapper_served_upstream_status_becomes_error_code(
    served: tuple[FakeRecognitionApi, TestClient[Any, Any]],
) -> None:
    fake, client = served
    fake.fail_status = 503
    request = {
        "parameter": {"mode": "humming"},
        "payload": {"data": base64.b64encode(SAMPLE).decode()},
    }
    response = await client.post("/v1/infer", json=request)
    assert response.status == 500
    assert (await response.json())["message"] == "User Defined Error: 4503"


async def test_seed_wrapper_served_rejects_bad_enum(
    served: tuple[FakeRecognitionApi, TestClient[Any, Any]],
) -> None:
    fake, client = served
    request = {
        "parameter": {"mode": "jazz"},
        "payload": {"data": base64.b64encode(SAMPLE).decode()},
    }
    response = await client.post("/v1/infer", json=request)
    assert response.status == 400
    assert (await response.json())["field"] == "mode"
    assert fake.requests == []


def test_compat_modules_keep_aiges_layout_and_signatures() -> None:
    from actorflow.compat.aiges import dto, sdk, types
    from actorflow.compat.aiges.core import types as core_types
    from actorflow.compat.aiges.utils.log import log

    data = dto.ResponseData("k", b"xy", 2)
    assert (data.key, data.len, data.type, data.status) == ("k", 2, types.DataText, types.Once)
    assert dto.Response().response_err(7).error_code == 7
    field = sdk.StringParamField("s")
    assert (field.min_length, field.max_length, field.required) == (0, 50, False)
    number = sdk.IntegerParamField("n")
    assert (number.minimum, number.maximum, number.value) == (0, 100, 0)
    assert sdk.BooleanParamField("b", True).value is True
    assert core_types.DataEnd == 2
    assert log.name == "aiges"
