"""Deadlines for slow clients, at the HTTP protocol level (before any ASGI code runs).

uvicorn closes a kept-alive connection that stays idle (`timeout_keep_alive`) and bounds the
size of a request's head (h11's `max_incomplete_event_size`), but it sets no deadline for a
request's headers or body: a client that opens a connection and sends a few header bytes now
and then ("slowloris") holds it for ever. `timed_protocol(header_s, body_s)` makes an h11
protocol class that also closes a connection whose request headers are not complete
`header_s` after the connection opened (or after the previous response), or whose body is not
complete `body_s` after its headers, answering 408 when no response has started.

What is not here: the connection cap (uvicorn's `limit_concurrency`, 503 past it) and the
options themselves, which `python -m server` (server/__main__.py) takes from the settings.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
             b"connection: close\r\ncontent-length: 42\r\n\r\n"
             b"The request took too long to arrive; retry.")


class TimedH11Protocol(H11Protocol):
    """H11Protocol with a deadline for each request's headers and for its body."""

    header_timeout = 10.0
    body_timeout = 120.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        self._phase: str | None = None
        super().connection_made(transport)
        self._follow()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._arm(None)
        super().connection_lost(exc)

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._arm(None)  # the websocket protocol takes the connection over
        self._phase = "upgraded"
        super().handle_websocket_upgrade(event)

    def _follow(self) -> None:
        """Arm the deadline that matches where the request is: waiting for its head, reading
        its body, or none while the application answers."""
        if self._phase == "upgraded" or self.transport.is_closing():
            self._arm(None)
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            phase = "headers"
        elif state is h11.SEND_BODY:
            phase = "body"
        else:
            phase = None
        if phase != self._phase:
            self._phase = phase
            self._arm({"headers": self.header_timeout, "body": self.body_timeout}.get(phase))

    def _arm(self, seconds: float | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if seconds is not None:
            self._deadline = self.loop.call_later(seconds, self._expired)

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete or not self.cycle.response_started:
            self.transport.write(TIMED_OUT)
        self.transport.close()


def timed_protocol(header_timeout: float, body_timeout: float) -> type[TimedH11Protocol]:
    """An h11 protocol class for uvicorn's `http=` option with these deadlines (seconds)."""
    return type("TimedH11Protocol", (TimedH11Protocol,),
                {"header_timeout": header_timeout, "body_timeout": body_timeout})
