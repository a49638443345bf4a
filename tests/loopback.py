"""How the tests' stand-ins for remote parties (SMS vendors, OAuth vendors, hook and webhook
endpoints) listen: an aiohttp app on a free 127.0.0.1 port, served from a loop that runs in a
thread of its own, so a synchronous test can call the server under test meanwhile."""

from __future__ import annotations

import asyncio

from aiohttp import web


def listen(loop: asyncio.AbstractEventLoop, app: web.Application) -> tuple[web.AppRunner, int]:
    """Serve `app` from `loop` (already running in another thread); its runner and port."""
    async def boot() -> tuple[web.AppRunner, int]:
        # A stalled answer must not hold the test's teardown.
        runner = web.AppRunner(app, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]

    return asyncio.run_coroutine_threadsafe(boot(), loop).result(10)
