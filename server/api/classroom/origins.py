"""Who may call this server from where: the Host and Origin allow-lists, and this machine's
own names and addresses.

`host_allowed` refuses DNS rebinding (a Host header this server is not); `origin_allowed`
refuses cross-site requests and websockets (an Origin that is not the page's own or one the
operator allowed). `lan_addresses` are the addresses students open (the teacher page, the
start-up banner).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from functools import lru_cache
from urllib.parse import urlsplit

from server.config import Settings, is_loopback


def _split_host(value: str) -> tuple[str, int | None]:
    """('host', port) from a Host header or netloc; IPv6 without brackets; lower case."""
    try:
        parts = urlsplit("//" + value)
        return (parts.hostname or "").lower(), parts.port
    except ValueError:
        return "", None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


@lru_cache(maxsize=1)
def _machine_names() -> frozenset[str]:
    names = {"localhost"}
    with contextlib.suppress(OSError):
        name = socket.gethostname().lower()
        names |= {name, name + ".local", socket.getfqdn().lower()}
    return frozenset(n for n in names if n)


def host_allowed(settings: Settings, host_header: str | None) -> bool:
    """Whether a Host header names this server (a DNS-rebinding page names its own domain).
    Ports are not compared: behind Docker or a proxy the outside port differs."""
    host, _ = _split_host(host_header or "")
    if not host:
        return False
    if host == settings.host.lower() or is_loopback(host):
        return True
    if settings.allowed_hosts:
        allowed = {h.lower() for h in settings.allowed_hosts}
        return "*" in allowed or host in allowed
    return _is_ip(host) or host in _machine_names()


def _default_port(scheme: str) -> int:
    return 443 if scheme in ("https", "wss") else 80


def origin_allowed(settings: Settings, origin: str | None, host_header: str | None,
                   scheme: str) -> bool:
    """No Origin (not a browser) or the page's own origin (same scheme, host and port as the
    request), or one of settings.allowed_origins. `null` (sandboxed pages, files) is refused."""
    if origin is None:
        return True
    origin = origin.strip().lower()
    if origin in settings.allowed_origins:
        return True
    parts = urlsplit(origin)
    if (parts.scheme not in ("http", "https") or parts.path or parts.query or parts.username
            or not parts.hostname):
        return False
    try:
        origin_port = parts.port or _default_port(parts.scheme)
    except ValueError:
        return False
    own_scheme = "https" if scheme in ("https", "wss") else "http"
    host, port = _split_host(host_header or "")
    return (parts.scheme == own_scheme and parts.hostname == host
            and origin_port == (port or _default_port(own_scheme)))


def lan_addresses() -> list[str]:
    """This machine's likely LAN addresses (no packet is sent: a UDP connect picks a route)."""
    found: list[str] = []
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("10.255.255.255", 1))
        found.append(s.getsockname()[0])
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.append(info[4][0])
    return [a for i, a in enumerate(found) if a not in found[:i] and not a.startswith("127.")]
