#!/usr/bin/python3
"""Run the v1 reference service.

    /usr/bin/python3 tests/v1ref/server.py --data-dir DIR [--host 127.0.0.1]
        [--port 0] [--test-endpoints] [--unchecked-names] [--port-file FILE]

--port 0 lets the OS pick a free port.  Once the server accepts requests it
prints "v1ref listening port=N" on stdout and, with --port-file, writes N to
FILE (atomically).  SIGTERM / SIGINT shut it down cleanly (exit status 0).
Access logs are off (log level warning).  One process, one event loop, every
handler synchronous inside it, like v1.

Use Debian's /usr/bin/python3 (FastAPI 0.92, pydantic 1.10, uvicorn 0.17,
GitPython, PyYAML).
"""

import argparse
import os
import socket
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import uvicorn  # noqa: E402

from app import create_app  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="v1 reference block API")
    p.add_argument("--data-dir", required=True, help="root of the per-user git repositories")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0: let the OS choose")
    p.add_argument("--test-endpoints", action="store_true",
                   help="enable the /_test/... routes that emulate v1's background agents")
    p.add_argument("--unchecked-names", action="store_true",
                   help="join every user id, label and diff id to the data dir unchecked, as the "
                        "real v1 does (for tests of shadowgate's own guard; use a scratch dir)")
    p.add_argument("--port-file", help="write the bound port number to this file once ready")
    p.add_argument("--workers", type=int, default=1,
                   help="accepted for compatibility; only 1 is supported (v1 runs one process)")
    return p.parse_args(argv)


class _Server(uvicorn.Server):
    def __init__(self, config, port, port_file):
        super().__init__(config)
        self._port = port
        self._port_file = port_file

    async def startup(self, sockets=None):
        await super().startup(sockets=sockets)
        if self.should_exit:
            return
        if self._port_file:
            tmp = f"{self._port_file}.tmp{os.getpid()}"
            with open(tmp, "w") as f:
                f.write(f"{self._port}\n")
            os.replace(tmp, self._port_file)
        print(f"v1ref listening port={self._port}", flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.workers != 1:
        print("v1ref: only --workers 1 is supported", file=sys.stderr)
        return 2
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted
    # sockets whose proto is TCP (otherwise keep-alive requests stall ~40 ms)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]

    app = create_app(str(data_dir), test_endpoints=args.test_endpoints,
                     check_names=not args.unchecked_names)
    config = uvicorn.Config(app, log_level="warning", access_log=False,
                            lifespan="on", timeout_keep_alive=5)
    server = _Server(config, port, args.port_file)
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
