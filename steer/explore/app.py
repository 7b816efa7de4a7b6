"""`steer explore`: a local web app to steer one maze at a time and watch its vector field change.

    steer explore [--host 127.0.0.1] [--port 8765] [--checkpoint NAME|PATH] [--vectors DIR]

This module is the web side: the routes, the guards and starting the server. The checkpoint is loaded once,
into an `Explorer` (steer/explore/state.py: the caches, the request checks and the computation of a view).
The page (one template, its script and styles inline) asks the server for a view, `POST /api/field` with the
parameters of an `apply` spec for one seed, and draws the arrows it returns on canvases; a bad value gets the
message a spec file would, with a 400. "Save as spec" (`POST /api/spec`) gives YAML that `steer apply`
reproduces.

Safety: the server binds 127.0.0.1 unless told otherwise, answers 403 to a Host (or Origin) header that is
not this local address (DNS rebinding: a web page must not reach the explorer through a name it controls),
reads vector files only under the working folder or `--vectors DIR`, and never sends a traceback: a user
error is its one-paragraph message, anything else a short note while the traceback goes to the console.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from steer.errors import SteerError, excerpt
from steer.explore.state import Explorer
from steer.report.html import environment

log = logging.getLogger("steer.explore.app")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")
MAX_BODY_BYTES = 64 * 1024  # a request is a few hundred bytes; this bounds what a client can make us parse
# Content-Security-Policy: the page runs only its own inline script, talks only to this server, and shows
# only inline images; nothing can frame it.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def allowed_hosts(host: str, port: int | None) -> frozenset[str]:
    """Host header values the server answers: the local names with the port (and `host` itself if not local).

    `port` None allows the local names on any port (for an app not yet bound, e.g. in tests).
    """
    names = {*LOCAL_NAMES, f"[{host}]" if ":" in host and not host.startswith("[") else host}
    names.discard("0.0.0.0")
    if port is None:
        return frozenset(names)
    return frozenset(f"{n}:{port}" for n in names)


class LocalOnly:
    """ASGI middleware: 403 unless the Host header is an allowed local address, and any Origin matches it."""

    def __init__(self, app: Callable[..., Awaitable[None]], hosts: frozenset[str], any_port: bool = False) -> None:
        self.app, self.hosts, self.any_port = app, hosts, any_port

    def _host_ok(self, host: str) -> bool:
        if host in self.hosts:
            return True
        if self.any_port:
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            return name in self.hosts
        return False

    async def __call__(
        self, scope: MutableMapping[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            host = headers.get("host", "").lower()
            origin = headers.get("origin")
            problem = None
            if not self._host_ok(host):
                problem = (
                    f"Host {excerpt(host, 60)} is not this explorer's local address; open it as "
                    f"http://127.0.0.1:PORT/ (requests through other names are refused)."
                )
            elif origin is not None and origin.lower() != f"http://{host}":
                problem = f"requests from the page at {excerpt(origin, 60)} are refused; use the explorer's own page."
            if problem is not None:
                await PlainTextResponse(f"forbidden: {problem}", status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read_json(request: Request) -> Any:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise SteerError(
                f"request: the body is larger than {MAX_BODY_BYTES // 1024} KiB; a view's parameters "
                "take a few hundred bytes."
            )
    try:
        return json.loads(body or b"null")
    except ValueError as e:
        raise SteerError(f"request: the body is not valid JSON ({excerpt(str(e), 80)}).") from None


def _guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """User errors as 400 with their message; anything else as 500 with a short note, the traceback logged."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except SteerError as e:
            return _error(str(e))
        except Exception:
            log.exception("steer explore: unexpected error on %s", request.url.path)
            return _error(
                "internal error: the explorer failed on this request (a bug, not your input). The "
                "console running `steer explore` shows the details.",
                500,
            )

    return wrapped


def create_app(explorer: Explorer, host: str = DEFAULT_HOST, port: int | None = None) -> Starlette:
    """The web app around `explorer`, answering only requests addressed to `host`/the local names at `port`."""
    page_html = environment().get_template("explore.html.j2").render(config=explorer.page_config())

    async def page(request: Request) -> Response:
        return HTMLResponse(page_html, headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"})

    async def field(request: Request) -> Response:
        data = await _read_json(request)
        return JSONResponse(await run_in_threadpool(explorer.view, data))

    async def retarget(request: Request) -> Response:
        data = await _read_json(request)
        return JSONResponse(await run_in_threadpool(explorer.retarget, data))

    async def spec(request: Request) -> Response:
        data = await _read_json(request)
        name, text = await run_in_threadpool(explorer.spec_yaml, data)
        return PlainTextResponse(
            text, media_type="application/x-yaml", headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )

    async def vector_files(request: Request) -> Response:
        return JSONResponse({"files": await run_in_threadpool(explorer.vector_files)})

    routes = [
        Route("/", page),
        Route("/api/field", _guarded(field), methods=["POST"]),
        Route("/api/retarget", _guarded(retarget), methods=["POST"]),
        Route("/api/spec", _guarded(spec), methods=["POST"]),
        Route("/api/vectors", _guarded(vector_files)),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(LocalOnly, hosts=allowed_hosts(host, port), any_port=port is None)
    return app


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host.strip("[]"), 0))
        return int(s.getsockname()[1])


def check_port(host: str, port: int) -> None:
    """Fail early, with one message, when the address cannot be listened on (in use, or not this machine's)."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.bind((host.strip("[]"), port))
    except OSError as e:
        raise SteerError(
            f"--port: cannot listen on {host}:{port} ({e.strerror or e}). Choose another port with "
            "--port N (or --port 0 for a free one), or stop what uses it."
        ) from None


def url_for(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{f'[{shown}]' if ':' in shown and not shown.startswith('[') else shown}:{port}/"


def _server(explorer: Explorer, host: str, port: int) -> Any:
    import uvicorn  # imported here: only the explorer needs it, and it is slow to import

    config = uvicorn.Config(
        create_app(explorer, host, port),
        host=host.strip("[]"),
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    return uvicorn.Server(config)


def serve(explorer: Explorer, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Run the explorer until Ctrl-C."""
    _server(explorer, host, port).run()


class Running:
    """An explorer server on a background thread (tests and the benchmark): `with Running(explorer) as url:`."""

    def __init__(self, explorer: Explorer, host: str = DEFAULT_HOST, port: int = 0) -> None:
        self.port = port or free_port(host)
        self.url = url_for(host, self.port)
        self.server = _server(explorer, host, self.port)
        self.thread = threading.Thread(target=self.server.run, name="steer-explore", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the explorer server did not start on {self.url}")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
