"""``asr serve``: a live web demo of streaming recognition (a static page and a WebSocket).

The page (``static/``) records the microphone, downsamples it to the
model's rate and sends 16-bit PCM frames; the server feeds them to one
stream per session and sends partial and final results back
(:mod:`asr.serve.protocol`).  Needs the ``serve`` extra (aiohttp).
"""

from asr.serve.config import ServeConfig, serve_config

__all__ = ["ServeConfig", "serve_config"]
