"""The command line: `python -m server` starts the playground.

Options override PLAYGROUND_* environment variables; a bad value stops start-up with a message
that names it.
"""

from __future__ import annotations

import argparse
import sys

from server.config import SettingsError, settings_from_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8000)")
    parser.add_argument(
        "--data-dir", help="where jobs, checkpoints and uploads live (default data/)"
    )
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="training device")
    args = parser.parse_args(argv)
    try:
        settings = settings_from_env(
            host=args.host, port=args.port, data_dir=args.data_dir, device=args.device
        )
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    import uvicorn

    from server.main import create_app

    app = create_app(settings)
    print(
        f"Playground on http://{settings.host}:{settings.port}/  (data in {settings.data_dir})",
        flush=True,
    )
    # Per-message deflate costs ~5x CPU per frame for binary snapshots (DESIGN.md): off.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        ws_per_message_deflate=False,
        log_level="warning",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
