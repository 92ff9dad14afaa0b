"""``asr serve``: the live web demo (a page that streams the microphone to a WebSocket)."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger("asr.commands.serve")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="live transcription in the browser (web page + WebSocket)",
        description="Serve a page at http://HOST:PORT/ that records the microphone and shows partial and final "
        "results of streaming recognition, low-confidence words marked. One model load is shared by all "
        "sessions; limits (sessions, frame size, idle time) come from --serve-config. Localhost only by "
        "default. Needs the serve extra: pip install 'asr[serve]'.",
    )
    p.add_argument("--model-dir", required=True, help="a streaming-capable model dir (type: lstm or tdnn)")
    p.add_argument("--graph-dir", help="use this HLG.pt instead of the model dir's graph/")
    p.add_argument("--config", default=None, help="decoder settings (default: the model dir's decode.yaml if it has one, else the one "
                   "shipped in asr/conf)")
    p.add_argument("--serve-config", help="server limits (default: the shipped asr/serve/serve.yaml)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: as asr transcribe)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asr.errors import ConfigError
    from asr.recognizer import Recognizer
    from asr.serve.config import serve_config
    from asr.threads import set_torch_threads

    try:
        from aiohttp import web

        from asr.serve.app import create_app
    except ModuleNotFoundError as e:
        if e.name not in ("aiohttp", "multidict", "yarl"):
            raise
        raise ConfigError(f"asr serve needs {e.name}: pip install 'asr[serve]'") from None
    cfg = serve_config(args.serve_config)
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: must be in 0..65535")
    set_torch_threads(args.threads, what="serve")
    recognizer = Recognizer.from_dir(args.model_dir, args.graph_dir, args.config)
    recognizer.stream()  # a model that cannot stream (BLSTM, too much look-ahead) fails here, not per session
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s: anyone who reaches this address can use the recognizer", args.host)
    log.info("serving on http://%s:%d/ (%d sessions at most)", args.host, args.port, cfg.max_sessions)
    web.run_app(create_app(recognizer, cfg), host=args.host, port=args.port, print=None, access_log=None)
    return 0
