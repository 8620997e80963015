"""``videoflow.core.node``: subclass these to write your own nodes."""

from __future__ import annotations

from actorflow.compat.videoflow._nodes import ConsumerNode as ConsumerNode
from actorflow.compat.videoflow._nodes import Node as Node
from actorflow.compat.videoflow._nodes import OneTaskProcessorNode as OneTaskProcessorNode
from actorflow.compat.videoflow._nodes import ProcessorNode as ProcessorNode
from actorflow.compat.videoflow._nodes import ProducerNode as ProducerNode

__all__ = ["ConsumerNode", "Node", "OneTaskProcessorNode", "ProcessorNode", "ProducerNode"]
