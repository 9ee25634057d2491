"""uvicorn's websocket protocol, with a short close for clients that broke the stream limits.

After a server sends a close frame, uvicorn reads on until the client answers it, for up to
10 s. A client that floods tiny messages has megabytes waiting in the kernel's buffers by
then, queued before its answer, and uvicorn parses every frame of them (measured: about 80,000
frames, over a second of the event loop's time, per flooding connection), time the training
thread then waits for. `StreamProtocol` stops reading instead when the close is one of
`QUICK_CLOSE_CODES` (1008 too many bad or too fast messages, 1009 a message too big, 4429 too
many new streams) and drops the connection `GRACE_SECONDS` later: the close frame with its
code and reason has gone out; the backlog is never parsed.

Used by `python -m server` (server/__main__.py); under another ASGI server the limits still
hold, with that server's close behaviour.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

QUICK_CLOSE_CODES = frozenset({1008, 1009, 4429})
GRACE_SECONDS = 1.0  # for the close frame to reach the client before the connection ends


class StreamProtocol(WebSocketsSansIOProtocol):
    """WebSocketsSansIOProtocol that does not read a rule-breaking client's backlog."""

    async def send(self, message) -> None:
        quick = (message.get("type") == "websocket.close"
                 and message.get("code") in QUICK_CLOSE_CODES and not self.close_sent)
        await super().send(message)
        if quick and self.close_sent and not self.transport.is_closing():
            if not self.read_paused:
                self.read_paused = True
                self.transport.pause_reading()
            if self.close_timer is not None:
                self.close_timer.cancel()
            self.close_timer = self.loop.call_later(GRACE_SECONDS, self.transport.close)
