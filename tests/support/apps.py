from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI
from parley_cli.local.ports import free_port


@contextlib.asynccontextmanager
async def running_app(app: FastAPI) -> AsyncIterator[FastAPI]:
    """Run an app's lifespan (migrations, topics, broker) in this event loop."""
    async with app.router.lifespan_context(app):
        yield app


@contextlib.asynccontextmanager
async def serve_http(app: FastAPI, port: int | None = None) -> AsyncIterator[str]:
    """Serve an ASGI app on a loopback port (a free one unless given); yields its base URL.
    Runs the lifespan too."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(300):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        else:
            raise TimeoutError(f"the app did not start serving on port {port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)
