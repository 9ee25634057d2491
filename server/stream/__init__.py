"""The live stream: the hub that fans engine events out to websocket clients (hub), each
client's message budget (limits) and the binary snapshot frame format (wire)."""
