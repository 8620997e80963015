"""Run code written for the aiges Python SDK with only its import prefix changed.

``from aiges.sdk import WrapperBase, StringParamField`` becomes
``from actorflow.compat.aiges.sdk import WrapperBase, StringParamField``;
``from aiges.dto import Response, ResponseData, DataListCls`` becomes
``from actorflow.compat.aiges.dto import ...``. The modules keep aiges's layout
(``sdk``, ``dto``, ``types``, ``core.types``, ``utils.log``) and its signatures and
defaults; underneath they are thin adapters over ``actorflow.wrapper``, so such a
wrapper also runs in graphs and behind ``actorflow serve wrapper.py``.
"""

from __future__ import annotations
