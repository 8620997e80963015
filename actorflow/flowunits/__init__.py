"""Built-in flowunits, one small module per unit family.

``BUILTINS`` maps registry names to ``"module:Class"``; the registry imports a module
only when a graph names one of its units, so ``import actorflow`` stays light.
"""

from __future__ import annotations

BUILTINS: dict[str, str] = {
    "http_sink": "actorflow.flowunits.sinks.http:HttpSink",
    "websocket_sink": "actorflow.flowunits.sinks.websocket:WebSocketSink",
}
