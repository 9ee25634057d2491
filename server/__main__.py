"""The command line: `python -m server` starts the playground.

Options override PLAYGROUND_* environment variables; a bad value stops start-up with a message
that names it.
"""

from __future__ import annotations

import argparse
import sys

from server.config import Settings, SettingsError, settings_from_env
from server.http_timeouts import timed_protocol
from server.ws_protocol import StreamProtocol


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8000)")
    parser.add_argument(
        "--data-dir", help="where jobs, checkpoints and uploads live (default data/)"
    )
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="training device")
    parser.add_argument("--ray", metavar="ADDRESS",
                        help="train on the Ray cluster at ADDRESS (host:port; docs/CLUSTER.md)")
    args = parser.parse_args(argv)
    try:
        settings = settings_from_env(
            host=args.host, port=args.port, data_dir=args.data_dir, device=args.device,
            ray_address=args.ray,
        )
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    if settings.ray_address:  # issue 15: an unreachable cluster stops the start, with why
        from server.cluster.connect import ClusterUnreachable, connect

        try:
            connect(settings.ray_address)
        except ClusterUnreachable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"Training on the Ray cluster at {settings.ray_address}", flush=True)

    import uvicorn

    from server.main import create_app

    app = create_app(settings)
    print(
        f"Playground on http://{settings.host}:{settings.port}/  (data in {settings.data_dir})",
        flush=True,
    )
    # Per-message deflate costs ~5x CPU per frame for binary snapshots (DESIGN.md): off.
    uvicorn.run(app, **server_options(settings), log_level="warning")
    return 0


def server_options(settings: Settings) -> dict:
    """uvicorn's options from the settings: slow clients are cut off (header, body and idle
    deadlines, server/http_timeouts.py), connections are capped (503 past the cap), and
    X-Forwarded-* headers are believed from settings.trusted_proxies only."""
    _raise_file_limit(settings.max_connections + 256)
    return {
        "host": settings.host,
        "port": settings.port,
        "ws_per_message_deflate": False,
        # H3: a backstop under the stream's own cap (1009 with a sentence, server/stream/limits.py)
        "ws_max_size": max(4 * settings.stream_max_message_bytes, 1 << 20),
        "ws": StreamProtocol,  # H3: a rule-breaking client's backlog is not parsed
        "http": timed_protocol(settings.header_timeout_seconds, settings.body_timeout_seconds),
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "timeout_keep_alive": settings.keep_alive_seconds,
        "limit_concurrency": settings.max_connections,
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies) or None,
    }


def _raise_file_limit(wanted: int) -> None:
    """Room for max_connections sockets: raise the soft open-file limit toward the hard one."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ImportError, ValueError, OSError):  # not on this system: keep what there is
        pass


if __name__ == "__main__":
    sys.exit(main())
