"""CLI: run the fake (or the cassette recorder) as its own process.

Prints ``FAKE_CLAUDE_URL=http://127.0.0.1:PORT`` on the first stdout line so a parent
process that asked for ``--port 0`` can find it; stops cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from ._http import BaseFakeServer
from .cassette import CassetteRecorder
from .server import FakeClaude


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m airflow_claude.testing.fake_claude", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = pick a free port (printed on stdout)")
    p.add_argument("--script", type=Path, help="JSON script file (list of rules or {'rules': [...]})")
    p.add_argument("--cassette", type=Path, help="replay this cassette instead of scripting")
    p.add_argument("--unordered", action="store_true", help="replay: match any unused interaction")
    p.add_argument("--record-to", type=Path, help="record mode: write the cassette here")
    p.add_argument("--upstream", default="https://api.anthropic.com", help="record mode: real API base URL")
    p.add_argument("--api-key", help="scripted mode: require this x-api-key")
    p.add_argument("--url-file", type=Path, help="also write the base URL to this file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    server: BaseFakeServer
    if args.record_to:
        key = os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            print("record mode needs ANTHROPIC_API_KEY in the environment", file=sys.stderr)
            return 2
        server = CassetteRecorder(args.upstream, args.record_to, api_key=key, host=args.host, port=args.port)
    else:
        fake = FakeClaude(host=args.host, port=args.port, api_key=args.api_key)
        if args.script:
            fake.load_script(args.script)
        if args.cassette:
            fake.load_cassette(args.cassette, ordered=not args.unordered)
        server = fake

    def _stop(signum: int, frame: FrameType | None) -> None:
        server.request_stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server.start()
    if args.url_file:
        args.url_file.write_text(server.url + "\n", encoding="utf-8")
    print(f"FAKE_CLAUDE_URL={server.url}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
