"""Roboflow-style workflow dynamic blocks: what block code may import from actorflow.

``BlockResult`` is also pre-injected into every block's namespace, as Roboflow does::

    def run(self, prediction, url) -> BlockResult:
        return {"message": "...", "status_code": 200}

Blocks run as units made by ``actorflow.unit.block_unit_class``, scoped to the
workflow that defines them. They are remote code execution by design: refused unless
custom code is enabled (``allow_custom_code=True`` or ``ACTORFLOW_ALLOW_CUSTOM_CODE=1``).
"""

from __future__ import annotations

from actorflow.unit import BlockResult, DynamicBlock

__all__ = ["BlockResult", "DynamicBlock"]
