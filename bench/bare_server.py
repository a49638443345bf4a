"""The ceiling for non-bcrypt endpoints: a bare aiohttp server answering a small JSON body.

    python -m bench.bare_server --port 18000

Same framework, same interpreter, one process, no middlewares, no database: whatever a
gotrue-lite endpoint achieves is compared with what this achieves under the same load.
"""

from __future__ import annotations

import argparse

from aiohttp import web

BODY = {"id": "00000000-0000-0000-0000-000000000000", "aud": "authenticated", "role": "authenticated"}


async def handle(request: web.Request) -> web.Response:
    return web.json_response(BODY)


def build_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", handle)
    app.router.add_get("/health", handle)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    web.run_app(build_app(), host=args.host, port=args.port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
