"""The aiohttp application of ``asr serve``: the static page and the WebSocket sessions.

One :class:`asr.Recognizer` (one model and graph load) is shared by all
sessions; each session gets its own stream.  Recognition runs in a small
thread pool (``workers``) so that the event loop keeps answering other
sessions while a chunk is decoded.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web

from asr.errors import AsrError
from asr.serve.config import ServeConfig
from asr.serve.protocol import (FrameError, control_message, error_message, final_message, partial_message,
                                pcm_samples)

log = logging.getLogger("asr.serve.app")

#: The page, its script and style (package data).
STATIC_DIR = Path(__file__).resolve().parent / "static"


@dataclass
class ServerState:
    """What the sessions share: the recognizer, the limits, the recognition threads."""

    recognizer: Any
    config: ServeConfig
    executor: ThreadPoolExecutor
    sessions: int = 0  # open sessions
    refused: int = 0  # sessions refused at the limit


STATE = web.AppKey("asr_serve_state", ServerState)


def create_app(recognizer: Any, config: ServeConfig) -> web.Application:
    """The web app: ``/`` (the page), ``/static/*`` and the WebSocket at ``/ws``."""
    app = web.Application(client_max_size=config.max_message_bytes)
    app[STATE] = ServerState(recognizer, config, ThreadPoolExecutor(config.workers, thread_name_prefix="asr-serve"))
    app.router.add_get("/", index)
    app.router.add_get("/ws", websocket)
    app.router.add_static("/static/", STATIC_DIR, show_index=False, follow_symlinks=False)
    app.on_cleanup.append(_stop_workers)
    return app


async def _stop_workers(app: web.Application) -> None:
    app[STATE].executor.shutdown(wait=False, cancel_futures=True)


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


def same_origin(request: web.Request) -> bool:
    """False when a browser page of another site opens the socket (its ``Origin`` names another host)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser (a script or a test client)
    return urlsplit(origin).netloc.lower() == request.host.lower()


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """One session; refused (an error message, then close) beyond ``max_sessions`` or from another site."""
    state = request.app[STATE]
    cfg = state.config
    # Frames up to twice the limit get an error message; aiohttp closes the socket on larger ones (1009).
    ws = web.WebSocketResponse(max_msg_size=2 * cfg.max_message_bytes)
    await ws.prepare(request)
    if not same_origin(request):
        return await refuse(ws, f"origin {request.headers['Origin']} may not use this server",
                            WSCloseCode.POLICY_VIOLATION)
    if state.sessions >= cfg.max_sessions:
        state.refused += 1
        return await refuse(ws, f"server busy: {cfg.max_sessions} sessions at most are open; try again later",
                            WSCloseCode.TRY_AGAIN_LATER)
    state.sessions += 1
    try:
        await Session(state, ws).run()
    finally:
        state.sessions -= 1
    return ws


async def refuse(ws: web.WebSocketResponse, message: str, code: int) -> web.WebSocketResponse:
    log.info("session refused: %s", message)
    await ws.send_json(error_message(message))
    await ws.close(code=code, message=message[:120].encode())
    return ws


def recognize_chunk(stream: Any, samples: Any, sample_rate: int) -> tuple[list, Any]:
    """Feeds one chunk (in a worker thread); returns the segments it ended and the new partial."""
    finals = stream.accept(samples, sample_rate)
    return finals, stream.partial()


class Session:
    """One WebSocket client and its recognition stream."""

    def __init__(self, state: ServerState, ws: web.WebSocketResponse):
        self.state = state
        self.cfg = state.config
        self.ws = ws
        self.rate = int(state.recognizer.sample_rate)
        self.stream: Any = None
        self.last_partial: str | None = None

    async def run(self) -> None:
        """Serves the session until ``end``, a close, an idle timeout or an internal error."""
        try:
            self.stream = await self._in_worker(self.state.recognizer.stream)
            await self.ws.send_json({"type": "ready", "sample_rate": self.rate,
                                     "chunk_seconds": self.cfg.chunk_seconds,
                                     "low_confidence": self.cfg.low_confidence,
                                     "max_message_bytes": self.cfg.max_message_bytes})
            while not self.ws.closed:
                if not await self._next_message():
                    break
        except ConnectionResetError:
            log.info("session closed by the client while the server was sending")
        except AsrError as e:  # e.g. a model that cannot stream
            await self.ws.send_json(error_message(str(e)))
            await self.ws.close(code=WSCloseCode.INTERNAL_ERROR)
        except Exception as e:  # a bug must end this session, not the server
            log.exception("session failed")
            if not self.ws.closed:
                await self.ws.send_json(error_message(f"internal error: {type(e).__name__}: {e}"))
                await self.ws.close(code=WSCloseCode.INTERNAL_ERROR)

    async def _next_message(self) -> bool:
        """Handles one message; False when the session is over."""
        try:
            msg = await self.ws.receive(timeout=self.cfg.idle_timeout)
        except asyncio.TimeoutError:
            await self.ws.send_json(error_message(f"no message for {self.cfg.idle_timeout:g} s; closing the session"))
            await self.ws.close(code=WSCloseCode.GOING_AWAY)
            return False
        if msg.type == WSMsgType.BINARY:
            await self._guarded(self._audio, msg.data)
            return True
        if msg.type == WSMsgType.TEXT:
            return not await self._guarded(self._control, msg.data)
        if msg.type == WSMsgType.ERROR:
            log.info("session closed: %s", self.ws.exception())
        return False  # CLOSE, CLOSING, CLOSED, ERROR

    async def _guarded(self, handler, data) -> bool:
        """Runs a handler; a refused frame gets an error message and the session goes on."""
        try:
            return bool(await handler(data))
        except AsrError as e:  # FrameError, or the stream's one-line AudioError
            await self.ws.send_json(error_message(str(e)))
            return False

    async def _audio(self, data: bytes) -> None:
        samples = pcm_samples(data, self.cfg.max_message_bytes)
        finals, partial = await self._in_worker(recognize_chunk, self.stream, samples, self.rate)
        await self._send_finals(finals)
        if partial.text != self.last_partial:
            self.last_partial = partial.text
            await self.ws.send_json(partial_message(partial, self.cfg.low_confidence))

    async def _control(self, text: str) -> bool:
        """``end``: flushes the stream, sends the last finals and ``done``, closes; True."""
        control_message(text, self.cfg.max_message_bytes)
        finals = await self._in_worker(self.stream.finish)
        await self._send_finals(finals)
        await self.ws.send_json({"type": "done"})
        await self.ws.close()
        return True

    async def _send_finals(self, finals: list) -> None:
        for seg in finals:
            await self.ws.send_json(final_message(seg, self.cfg.low_confidence))
        if finals:
            self.last_partial = None  # the next partial (maybe empty) replaces the old one on the page

    async def _in_worker(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.state.executor, fn, *args)
