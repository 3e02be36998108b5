"""The real-time engine: the WebSocket endpoint, rooms, presence and the relay between nodes."""
