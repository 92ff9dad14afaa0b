// The page of asr serve: microphone -> AudioWorklet (downsampled 16-bit PCM) ->
// WebSocket; partial and final results from the server -> the transcript.
"use strict";

const $ = (id) => document.getElementById(id);
let socket = null;
let audio = null; // {context, stream, node}
let lowConfidence = 0.5;

function setStatus(text, state) {
  $("status").textContent = text;
  $("status").dataset.state = state;
}

function showError(message) {
  $("error").hidden = false;
  $("error").textContent = message;
}

function wordSpans(words) {
  const frag = document.createDocumentFragment();
  words.forEach((w, i) => {
    if (i > 0) frag.append(" ");
    const span = document.createElement("span");
    span.className = w.low ? "word low" : "word";
    span.textContent = w.word;
    span.title = `confidence ${w.confidence.toFixed(2)}, ${w.start.toFixed(2)}-${(w.start + w.duration).toFixed(2)} s`;
    frag.append(span);
  });
  return frag;
}

function addFinal(msg) {
  if (msg.words.length === 0) return; // a segment of silence
  const div = document.createElement("div");
  div.className = "segment";
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = `${msg.start.toFixed(1)}–${msg.end.toFixed(1)} s`;
  div.append(time, wordSpans(msg.words));
  $("finals").append(div);
}

function onMessage(event) {
  const msg = JSON.parse(event.data);
  if (msg.type === "ready") {
    lowConfidence = msg.low_confidence;
    $("threshold").textContent = lowConfidence.toFixed(2);
    $("info").textContent = `model at ${msg.sample_rate} Hz, ${msg.chunk_seconds} s frames`;
    startAudio(msg.sample_rate, msg.chunk_seconds).catch((e) => { showError(`microphone: ${e}`); stop(); });
  } else if (msg.type === "partial") {
    $("partial").replaceChildren(wordSpans(msg.words));
  } else if (msg.type === "final") {
    addFinal(msg);
    $("partial").replaceChildren();
  } else if (msg.type === "error") {
    showError(msg.message);
  } else if (msg.type === "done") {
    setStatus("Done.", "done");
  }
}

async function startAudio(sampleRate, chunkSeconds) {
  const stream = await navigator.mediaDevices.getUserMedia(
    { audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  const context = new AudioContext();
  await context.audioWorklet.addModule("/static/pcm-worklet.js");
  const node = new AudioWorkletNode(context, "pcm-sender",
    { processorOptions: { targetRate: sampleRate, chunkSeconds: chunkSeconds } });
  node.port.onmessage = (ev) => {
    if (ev.data === "flushed") {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "end" }));
    } else if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(ev.data);
    }
  };
  const mute = context.createGain(); // keeps the node pulled by the graph without playing the microphone back
  mute.gain.value = 0;
  context.createMediaStreamSource(stream).connect(node).connect(mute).connect(context.destination);
  audio = { context, stream, node };
  setStatus(`Listening (microphone at ${context.sampleRate} Hz)…`, "listening");
}

function start() {
  $("error").hidden = true;
  $("finals").replaceChildren();
  $("partial").replaceChildren();
  $("start").disabled = true;
  $("stop").disabled = false;
  setStatus("Connecting…", "connecting");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws`);
  socket.binaryType = "arraybuffer";
  socket.onmessage = onMessage;
  socket.onclose = (ev) => {
    if ($("status").dataset.state !== "done") setStatus(`Disconnected${ev.reason ? ": " + ev.reason : ""}.`, "closed");
    stopAudio();
    $("start").disabled = false;
    $("stop").disabled = true;
  };
}

function stop() {
  $("stop").disabled = true;
  if (audio) {
    setStatus("Finishing…", "finishing");
    audio.node.port.postMessage("flush"); // the worklet sends what it holds, then "flushed" -> end
    audio.stream.getTracks().forEach((t) => t.stop());
  } else if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify({ type: "end" }));
  }
}

function stopAudio() {
  if (!audio) return;
  audio.context.close();
  audio = null;
}

$("start").addEventListener("click", start);
$("stop").addEventListener("click", stop);
