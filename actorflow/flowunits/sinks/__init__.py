"""Built-in sinks: network delivery (HTTP, WebSocket) that never drops silently."""
