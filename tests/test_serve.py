"""``asr serve`` (issue 17): the WebSocket protocol with a Python client, and the page in a real headless Chromium.

The server runs in-process on a free localhost port.  The model streams
through ``Recognizer.stream()``: the yesno recipe's TDNN (0.2 s of
look-ahead) retrained for a few epochs on sliding-CMVN features of the
recipe's data and alignments (``--cmvn sliding``, what streaming normalises
with), decoded with the recipe's graph.
The browser test feeds a yesno wav to Chromium's fake microphone and reads
the transcript off the page; with ``ASR_SCREENSHOT=docs/img/serve.png`` it
also saves a screenshot.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from decode_fixtures import ASR, REPO, YESNO_CORPUS, yesno, yesno_run  # noqa: F401

aiohttp = pytest.importorskip("aiohttp", reason="asr serve needs aiohttp (pip install 'asr[serve]')")
from aiohttp import WSCloseCode, WSMsgType, web  # noqa: E402

from asr.errors import ConfigError  # noqa: E402
from asr.serve.config import ServeConfig, packaged_serve_config, serve_config  # noqa: E402
from asr.serve.protocol import FrameError, control_message, pcm_samples  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
#: A test utterance that the yesno model gets right offline.
UTT = "0_0_1_0_1_0_0_1"
WAV = YESNO_CORPUS / f"{UTT}.wav"


# --- the pieces without a server ------------------------------------------------------------------------------


def test_pcm_frames_are_checked_and_scaled() -> None:
    frame = np.array([0, 16384, -32768, 32767], dtype="<i2").tobytes()
    assert pcm_samples(frame, 100).tolist() == pytest.approx([0.0, 0.5, -1.0, 32767 / 32768])
    for data, expected in [(b"", "empty binary frame"), (b"\x00\x01\x02", "needs an even number of bytes"),
                           (bytes(102), "102 bytes exceeds the limit of 100 bytes")]:
        with pytest.raises(FrameError, match=expected):
            pcm_samples(data, 100)


@pytest.mark.parametrize("text,expected", [
    ("{not json", "text frame is not JSON"), ("[1, 2]", "must be a JSON object, got list"),
    ('{"type": "stop"}', "unknown message type 'stop'"), ('{"kind": "end"}', "unknown message type None"),
    ('{"type": "end", "pad": "' + "x" * 200 + '"}', "exceeds the limit of 100 bytes"),
])
def test_control_messages_other_than_end_are_refused(text: str, expected: str) -> None:
    assert control_message('{"type": "end"}', 100) == "end"
    with pytest.raises(FrameError, match=expected):
        control_message(text, 100)


def test_shipped_serve_config_holds_the_defaults_and_typos_name_file_and_key(tmp_path: Path) -> None:
    assert serve_config() == ServeConfig()
    assert serve_config(packaged_serve_config()) == ServeConfig()
    bad = tmp_path / "serve.yaml"
    bad.write_text("max_sesions: 2\n")
    with pytest.raises(ConfigError, match=rf"^{bad}: unknown key 'max_sesions' \(did you mean 'max_sessions'\?\)$"):
        serve_config(bad)
    bad.write_text("low_confidence: 2\n")
    with pytest.raises(ConfigError, match=rf"^{bad}: 'low_confidence' must be in \[0, 1\], got 2.0$"):
        serve_config(bad)


# --- a live server --------------------------------------------------------------------------------------------


def asr(*args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run([str(ASR), *args], capture_output=True, text=True, cwd=cwd, timeout=600)
    assert proc.returncode == 0, f"asr {args[0]} failed:\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def stream_model(yesno, tmp_path_factory) -> Path:  # noqa: F811
    """A streaming yesno model dir: CE on sliding-CMVN features, on the recipe's flat-start alignments."""
    work = tmp_path_factory.mktemp("serve_model")
    train = work / "train"
    train.mkdir()
    for name in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2dur"):
        (train / name).write_bytes((yesno.data / "train" / name).read_bytes())
    asr("compute-feats", str(train), str(work / "fbank"), "--config", str(REPO / "conf/yesno/fbank.yaml"),
        "--cmvn", "sliding")
    asr("train", "--config", str(REPO / "conf/yesno/ce.yaml"), "--data", str(train), "--lang",
        str(yesno.data / "lang"), "--out", str(work / "exp"), "--ali-dir", str(yesno.workdir / "exp/flat/ali"),
        "--graph-dir", str(yesno.graph_dir), "--epochs", "4", "--threads", "1")
    return work / "exp"


@pytest.fixture(scope="module")
def recognizer(stream_model, yesno):  # noqa: F811
    from asr.recognizer import Recognizer

    return Recognizer.from_dir(stream_model, yesno.graph_dir)


@pytest.fixture(scope="module")
def offline_words(stream_model, yesno) -> list[str]:  # noqa: F811
    """What ``asr transcribe`` prints for WAV with the same model and graph."""
    out = asr("transcribe", "--model-dir", str(stream_model), "--graph-dir", str(yesno.graph_dir), str(WAV))
    path, _, text = out.strip().partition("\t")
    assert path == str(WAV)
    words = text.split()
    assert words == ["YES" if c == "1" else "NO" for c in UTT.split("_")], "the offline model must get UTT right"
    return words


class LiveServer:
    """The app on a free localhost port, served by an event loop in a thread of its own."""

    def __init__(self, recognizer, config: ServeConfig):
        from asr.serve.app import create_app

        self.app = create_app(recognizer, config)
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(self.app)
        self.port = 0
        started = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(started,), daemon=True)
        self.thread.start()
        assert started.wait(30), "server did not start"

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = self.runner.addresses[0][1]
        started.set()
        self.loop.run_forever()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


@pytest.fixture
def server_factory(recognizer):
    servers: list[LiveServer] = []

    def make(**limits) -> LiveServer:
        servers.append(LiveServer(recognizer, ServeConfig(**limits)))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def pcm_chunks(path: Path, seconds: float, silence: float = 0.0) -> list[bytes]:
    """A wav, then ``silence`` seconds of zeros, as 16-bit little-endian PCM frames of ``seconds`` each."""
    samples, rate = sf.read(path, dtype="int16")
    samples = np.concatenate([samples, np.zeros(int(rate * silence), np.int16)])
    step = int(rate * seconds)
    return [samples[i:i + step].astype("<i2").tobytes() for i in range(0, len(samples), step)]


async def receive_json(ws, timeout: float = 30.0) -> dict:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == WSMsgType.TEXT, f"expected a JSON message, got {msg.type} {msg.data!r} {msg.extra!r}"
    return json.loads(msg.data)


async def stream_file(ws, path: Path, seconds: float = 0.1, silence: float = 0.0) -> list[dict]:
    """Sends a file in frames, then ``end``; returns every message up to ``done``."""
    messages = []
    reader = asyncio.ensure_future(_read_until_done(ws, messages))
    for frame in pcm_chunks(path, seconds, silence):
        await ws.send_bytes(frame)
    await ws.send_str(json.dumps({"type": "end"}))
    await asyncio.wait_for(reader, 120)
    return messages


async def _read_until_done(ws, messages: list[dict]) -> None:
    while not messages or messages[-1]["type"] != "done":
        messages.append(await receive_json(ws, 120))


def final_words(messages: list[dict]) -> list[str]:
    return [w["word"] for m in messages if m["type"] == "final" for w in m["words"]]


def test_streamed_file_gives_partials_then_the_words_of_asr_transcribe(server_factory, offline_words) -> None:
    server = server_factory(low_confidence=0.9)

    async def session() -> list[dict]:
        async with aiohttp.ClientSession() as http, http.ws_connect(f"{server.url}/ws") as ws:
            ready = await receive_json(ws)
            assert ready == {"type": "ready", "sample_rate": 8000, "chunk_seconds": 0.1, "low_confidence": 0.9,
                             "max_message_bytes": 64000}
            messages = await stream_file(ws, WAV, silence=2.5)
            closed = await ws.receive(timeout=10)
            assert closed.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
            return messages

    messages = asyncio.run(session())
    kinds = [m["type"] for m in messages]
    assert kinds[-1] == "done" and "error" not in kinds
    partials = [m for m in messages if m["type"] == "partial" and m["text"]]
    assert len(partials) >= 2, "partial results must arrive while the audio does"
    assert kinds.index("partial") < kinds.index("final")
    assert final_words(messages) == offline_words
    # streaming, not one decode at the end: the words' segment was cut by an endpoint rule in the silence
    finals = [m for m in messages if m["type"] == "final"]
    assert finals[0]["words"] and finals[0]["endpoint"] in ("rule2", "rule3", "rule4")
    assert all(not m["words"] for m in finals[1:])  # then silence only
    words = [w for m in messages if m["type"] == "final" for w in m["words"]]
    assert all(w["low"] == (w["confidence"] < 0.9) for w in words)
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and 0 <= starts[0] < starts[-1] < sf.info(WAV).duration


def test_concurrent_sessions_share_the_model_but_not_their_streams(server_factory, offline_words) -> None:
    server = server_factory(workers=2)
    other = YESNO_CORPUS / "1_1_1_0_0_1_0_1.wav"

    async def one(path: Path) -> list[str]:
        async with aiohttp.ClientSession() as http, http.ws_connect(f"{server.url}/ws") as ws:
            await receive_json(ws)
            return final_words(await stream_file(ws, path))

    async def both() -> list[list[str]]:
        return list(await asyncio.gather(one(WAV), one(other)))

    mine, theirs = asyncio.run(both())
    assert mine == offline_words
    assert theirs == ["YES" if c == "1" else "NO" for c in other.stem.split("_")]


def test_bad_frames_get_an_error_message_and_the_session_goes_on(server_factory, offline_words) -> None:
    server = server_factory(max_message_bytes=4000)
    bad = [(b"\x01\x02\x03", "3 bytes: 16-bit PCM needs an even number of bytes"),
           (b"", "empty binary frame"),
           (bytes(4002), "4002 bytes exceeds the limit of 4000 bytes"),
           ("garbage", "text frame is not JSON"),
           ("42", "must be a JSON object, got int"),
           ('{"type": "start"}', "unknown message type 'start'")]

    async def session() -> tuple[list[str], list[dict]]:
        async with aiohttp.ClientSession() as http, http.ws_connect(f"{server.url}/ws") as ws:
            await receive_json(ws)
            errors = []
            for data, _ in bad:
                await (ws.send_bytes(data) if isinstance(data, bytes) else ws.send_str(data))
                errors.append((await receive_json(ws))["message"])
            return errors, await stream_file(ws, WAV)

    errors, messages = asyncio.run(session())
    for message, (_, expected) in zip(errors, bad):
        assert expected in message
    assert final_words(messages) == offline_words  # the same session still decodes


def test_huge_frame_closes_only_its_session(server_factory) -> None:
    server = server_factory(max_message_bytes=4000)

    async def run() -> tuple[int, list[dict]]:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"{server.url}/ws") as ws:
                await receive_json(ws)
                await ws.send_bytes(bytes(20000))  # over aiohttp's limit (twice ours)
                msg = await ws.receive(timeout=10)
                while msg.type == WSMsgType.TEXT:
                    msg = await ws.receive(timeout=10)
                code = ws.close_code
            async with http.ws_connect(f"{server.url}/ws") as ws:  # the server still serves
                await receive_json(ws)
                await ws.send_bytes(pcm_chunks(WAV, 0.1)[0])
                await ws.send_str('{"type": "end"}')
                messages = [await receive_json(ws)]
                while messages[-1]["type"] != "done":
                    messages.append(await receive_json(ws))
                return code, messages

    code, messages = asyncio.run(run())
    assert code == WSCloseCode.MESSAGE_TOO_BIG
    assert "error" not in [m["type"] for m in messages]


def test_sessions_beyond_the_limit_are_refused_with_a_message(server_factory) -> None:
    server = server_factory(max_sessions=1)

    async def run() -> tuple[dict, int | None, dict]:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"{server.url}/ws") as first:
                assert (await receive_json(first))["type"] == "ready"
                async with http.ws_connect(f"{server.url}/ws") as second:
                    refused = await receive_json(second)
                    closed = await second.receive(timeout=10)
                    assert closed.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
                    code = second.close_code
            await asyncio.sleep(0.2)  # the first session's slot is freed when its handler returns
            async with http.ws_connect(f"{server.url}/ws") as third:
                return refused, code, await receive_json(third)

    refused, code, ready = asyncio.run(run())
    assert refused == {"type": "error", "message": "server busy: 1 sessions at most are open; try again later"}
    assert code == WSCloseCode.TRY_AGAIN_LATER
    assert ready["type"] == "ready"


def test_idle_sessions_and_other_origins_are_closed(server_factory) -> None:
    server = server_factory(idle_timeout=0.3)

    async def run() -> tuple[dict, dict, int | None]:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"{server.url}/ws") as ws:
                await receive_json(ws)
                idle = await receive_json(ws, 10)
            async with http.ws_connect(f"{server.url}/ws", origin="http://example.com") as ws:
                other = await receive_json(ws)
                await ws.receive(timeout=10)
                return idle, other, ws.close_code

    idle, other, code = asyncio.run(run())
    assert idle == {"type": "error", "message": "no message for 0.3 s; closing the session"}
    assert other["message"] == "origin http://example.com may not use this server"
    assert code == WSCloseCode.POLICY_VIOLATION


def test_page_and_its_scripts_are_served(server_factory) -> None:
    server = server_factory()

    async def run() -> dict[str, tuple[int, str]]:
        async with aiohttp.ClientSession() as http:
            out = {}
            for path in ("/", "/static/app.js", "/static/pcm-worklet.js", "/static/style.css", "/static/nope.js"):
                async with http.get(server.url + path) as r:
                    out[path] = (r.status, await r.text())
            return out

    pages = asyncio.run(run())
    assert pages["/"][0] == 200 and '<script src="/static/app.js">' in pages["/"][1]
    assert pages["/static/pcm-worklet.js"][0] == 200 and 'registerProcessor("pcm-sender"' in pages["/static/pcm-worklet.js"][1]
    assert pages["/static/style.css"][0] == 200 and ".word.low" in pages["/static/style.css"][1]
    assert pages["/static/nope.js"][0] == 404


# --- the page in a real headless Chromium ---------------------------------------------------------------------


def padded_wav(src: Path, dest: Path, silence: float) -> Path:
    """``src`` followed by ``silence`` seconds of silence (so that an endpoint fires after the speech)."""
    samples, rate = sf.read(src, dtype="int16")
    sf.write(dest, np.concatenate([samples, np.zeros(int(rate * silence), np.int16)]), rate, subtype="PCM_16")
    return dest


def test_browser_page_shows_the_transcript_of_the_fake_microphone(server_factory, offline_words, tmp_path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (Debian: apt-get install chromium); the browser test needs it")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright")
    server = server_factory()
    wav = padded_wav(WAV, tmp_path / "mic.wav", silence=1.5)
    flags = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
             f"--use-file-for-fake-audio-capture={wav}%noloop", "--autoplay-policy=no-user-gesture-required",
             "--no-sandbox"]
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=flags)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 520})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url + "/")
            page.click("#start")
            page.wait_for_function("n => document.querySelectorAll('#finals .word').length >= n",
                                   arg=len(offline_words), timeout=25000)
            page.click("#stop")
            page.wait_for_selector("#status[data-state=done]", timeout=10000)
            shown = page.locator("#finals .word").all_inner_texts()
            assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
            assert errors == []
            if os.environ.get("ASR_SCREENSHOT"):
                page.screenshot(path=os.environ["ASR_SCREENSHOT"])
        finally:
            browser.close()
    assert shown == offline_words
