"""videoflow compatibility: ``videoflow.core`` → ``actorflow.compat.videoflow.core``.

The seed's example runs with only its imports changed::

    from actorflow.compat.videoflow.core import Flow
    from actorflow.compat.videoflow.producers import IntProducer
    from actorflow.compat.videoflow.processors import IdentityProcessor
    from actorflow.compat.videoflow.consumers import CommandlineConsumer
"""

from __future__ import annotations
