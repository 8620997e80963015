"""aiges ``types``: data type and status codes."""

from __future__ import annotations

from actorflow.wrapper._dto import DataAudio as DataAudio
from actorflow.wrapper._dto import DataBegin as DataBegin
from actorflow.wrapper._dto import DataContinue as DataContinue
from actorflow.wrapper._dto import DataEnd as DataEnd
from actorflow.wrapper._dto import DataImage as DataImage
from actorflow.wrapper._dto import DataOnce as DataOnce
from actorflow.wrapper._dto import DataText as DataText
from actorflow.wrapper._dto import DataVideo as DataVideo
from actorflow.wrapper._dto import Once as Once

STRING = 0
AUDIO = 1
IMAGE = 2
VIDEO = 3
THREAD_MODE = "thread"
PROCESS_MODE = "process"

__all__ = [
    "AUDIO",
    "IMAGE",
    "PROCESS_MODE",
    "STRING",
    "THREAD_MODE",
    "VIDEO",
    "DataAudio",
    "DataBegin",
    "DataContinue",
    "DataEnd",
    "DataImage",
    "DataOnce",
    "DataText",
    "DataVideo",
    "Once",
]
