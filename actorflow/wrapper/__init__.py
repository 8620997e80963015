"""The wrapper SDK (aiges-style): a service as a class with four hooks and declared fields.

Write a ``WrapperBase`` subclass, run it locally with ``Wrapper().run()``, put it in a
graph as a ``wrapper`` node (``WrapperUnit``), or serve it over HTTP with
``actorflow serve wrapper.py`` (``build_app``). ``actorflow.compat.aiges`` runs code
written for the aiges SDK with only its imports changed.

``build_app`` is ``actorflow.serve._wrapper.build_wrapper_app`` (a wrapper served is a
one-node graph on the app of ``actorflow serve``); it, and aiohttp with it, is imported
on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actorflow.wrapper._base import WrapperBase as WrapperBase
from actorflow.wrapper._debug import DebugReport as DebugReport
from actorflow.wrapper._debug import run_once as run_once
from actorflow.wrapper._dto import DataAudio as DataAudio
from actorflow.wrapper._dto import DataBegin as DataBegin
from actorflow.wrapper._dto import DataContinue as DataContinue
from actorflow.wrapper._dto import DataEnd as DataEnd
from actorflow.wrapper._dto import DataImage as DataImage
from actorflow.wrapper._dto import DataListCls as DataListCls
from actorflow.wrapper._dto import DataListNode as DataListNode
from actorflow.wrapper._dto import DataOnce as DataOnce
from actorflow.wrapper._dto import DataText as DataText
from actorflow.wrapper._dto import DataVideo as DataVideo
from actorflow.wrapper._dto import Once as Once
from actorflow.wrapper._dto import Response as Response
from actorflow.wrapper._dto import ResponseData as ResponseData
from actorflow.wrapper._dto import SessionCreateResponse as SessionCreateResponse
from actorflow.wrapper._dto import response_err as response_err
from actorflow.wrapper._errors import WrapperExecError as WrapperExecError
from actorflow.wrapper._errors import WrapperLoadError as WrapperLoadError
from actorflow.wrapper._errors import WrapperRequestError as WrapperRequestError
from actorflow.wrapper._fields import AudioBodyField as AudioBodyField
from actorflow.wrapper._fields import BodyField as BodyField
from actorflow.wrapper._fields import BooleanParamField as BooleanParamField
from actorflow.wrapper._fields import Field as Field
from actorflow.wrapper._fields import ImageBodyField as ImageBodyField
from actorflow.wrapper._fields import IntegerParamField as IntegerParamField
from actorflow.wrapper._fields import JsonBodyField as JsonBodyField
from actorflow.wrapper._fields import NumberParamField as NumberParamField
from actorflow.wrapper._fields import ParamField as ParamField
from actorflow.wrapper._fields import StringBodyField as StringBodyField
from actorflow.wrapper._fields import StringParamField as StringParamField
from actorflow.wrapper._fields import VideoBodyField as VideoBodyField
from actorflow.wrapper._load import load_wrapper as load_wrapper

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "AudioBodyField",
    "BodyField",
    "BooleanParamField",
    "DataAudio",
    "DataBegin",
    "DataContinue",
    "DataEnd",
    "DataImage",
    "DataListCls",
    "DataListNode",
    "DataOnce",
    "DataText",
    "DataVideo",
    "DebugReport",
    "Field",
    "ImageBodyField",
    "IntegerParamField",
    "JsonBodyField",
    "NumberParamField",
    "Once",
    "ParamField",
    "Response",
    "ResponseData",
    "SessionCreateResponse",
    "StringBodyField",
    "StringParamField",
    "VideoBodyField",
    "WrapperBase",
    "WrapperExecError",
    "WrapperLoadError",
    "WrapperRequestError",
    "WrapperUnit",
    "build_app",
    "load_wrapper",
    "response_err",
    "run_once",
]


def build_app(path: Any, **opts: Any) -> web.Application:
    """Serve the wrapper in file ``path`` over HTTP; see ``actorflow.serve._wrapper``."""
    from actorflow.serve._wrapper import build_wrapper_app

    return build_wrapper_app(path, **opts)


def __getattr__(name: str) -> Any:
    if name == "WrapperUnit":
        from actorflow.wrapper._unit import WrapperUnit

        return WrapperUnit
    msg = f"module 'actorflow.wrapper' has no attribute {name!r}"
    raise AttributeError(msg)
