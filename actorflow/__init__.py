"""actorflow: an asyncio-native actor runtime for AI inference flow graphs."""

from __future__ import annotations

from actorflow._version import __version__ as __version__
