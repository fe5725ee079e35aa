"""``cnnkit serve [RUN_OR_MODEL] [--port 8000] [--host 127.0.0.1]``: the explorer in the browser."""
from __future__ import annotations

import ipaddress
import re
import socket
import sys

from . import CLIError, parse_size

__all__ = ["register"]

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
                       r"[A-Za-z0-9])?)*$")
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]


def check_host(host: str) -> str:
    """``--host`` as given, if it is an IP address or a host name; a CLIError naming it otherwise."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if not _HOSTNAME.match(host):
        raise CLIError(f"--host must be an IP address or a host name (e.g. 127.0.0.1, 0.0.0.0), got {host!r}")
    return host


def check_port(port: int) -> int:
    if not 0 <= port <= 65535:
        raise CLIError(f"--port must be in 1..65535 (0: any free port), got {port}")
    return port


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or a CLIError saying why not (in use, no such address)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CLIError(f"--host {host!r} cannot be resolved: {exc.strerror}") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        why = "is already in use" if exc.errno in (98, 48, 10048) else f"cannot be used ({exc.strerror})"
        raise CLIError(f"--port {port} on {host} {why}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def cmd_serve(args) -> int:
    host, port = check_host(args.host), check_port(args.port)
    from ..serve.backend import open_explorer
    explorer = open_explorer(args.target, input_size=parse_size(args.input))
    sock = bind(host, port)
    explorer.warm_up()
    import uvicorn

    from ..serve.app import create_app
    loopback = host in LOOPBACK_NAMES or (host.replace(".", "").isdigit() and ipaddress.ip_address(host).is_loopback)
    app = create_app(explorer, allowed_hosts=["127.0.0.1", "localhost", "[::1]", "::1"] if loopback else None)
    actual = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"cnnkit serve: {explorer.title} at http://{shown}:{actual}/  (Ctrl-C stops)", file=sys.stderr, flush=True)
    if not loopback:
        print(f"cnnkit serve: listening on {host}: other machines can reach it", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def register(sub) -> None:
    p = sub.add_parser("serve", help="the explorer in the browser: layers, activations, w·x + b, predictions",
                       description="Serve the explorer for a `cnnkit train` run directory or a zoo model "
                                   "(untrained: random weights).")
    p.add_argument("target", nargs="?", metavar="RUN_OR_MODEL",
                   help="a run directory (runs/lenet5-mnist-5k) or a zoo model name (default: runs/lenet5-mnist-5k or "
                        "runs/lenet5-digits if one exists, else an untrained lenet5)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--input", help="input size C,H,W of a zoo model (default: the model's)")
    p.set_defaults(func=cmd_serve)
