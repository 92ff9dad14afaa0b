// AudioWorklet processor of asr serve: microphone samples (at the AudioContext's
// rate) -> low-passed and resampled to the model's rate -> 16-bit PCM frames
// of `chunkSeconds`, posted to the page, which sends them over the WebSocket.
//
// Resampling: each output sample at source time t is sum_i x[i] h(t - i), with
// h a Blackman-windowed sinc whose cutoff is 0.45 x the lower of the two rates
// (anti-aliasing when downsampling, e.g. 48 kHz -> 8 or 16 kHz).
class PcmSender extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = options.processorOptions;
    this.ratio = sampleRate / opts.targetRate; // source samples per output sample
    this.cutoff = 0.45 / Math.max(this.ratio, 1); // cycles per source sample
    this.half = Math.ceil(8 / (2 * this.cutoff)); // 8 zero crossings of the sinc on each side
    this.chunk = Math.max(1, Math.round(opts.targetRate * opts.chunkSeconds));
    this.buf = new Float32Array(this.half); // source samples from index `base` on (virtual zeros first)
    this.base = -this.half; // the stream starts after `half` virtual zeros
    this.pos = 0; // source time of the next output sample
    this.out = new Int16Array(this.chunk);
    this.filled = 0;
    this.port.onmessage = (ev) => {
      if (ev.data === "flush") {
        this.send(this.filled);
        this.port.postMessage("flushed");
      }
    };
  }

  tap(t) {
    if (t === 0) return 2 * this.cutoff;
    const u = t / this.half;
    const window = 0.42 + 0.5 * Math.cos(Math.PI * u) + 0.08 * Math.cos(2 * Math.PI * u);
    const x = 2 * Math.PI * this.cutoff * t;
    return (Math.sin(x) / (Math.PI * t)) * window;
  }

  append(samples) {
    const grown = new Float32Array(this.buf.length + samples.length);
    grown.set(this.buf);
    grown.set(samples, this.buf.length);
    this.buf = grown;
  }

  resample() {
    const end = this.base + this.buf.length; // first source index not received yet
    while (Math.floor(this.pos) + this.half < end) {
      let acc = 0;
      const lo = Math.max(this.base, Math.ceil(this.pos - this.half));
      const hi = Math.floor(this.pos + this.half);
      for (let i = lo; i <= hi; i++) acc += this.buf[i - this.base] * this.tap(this.pos - i);
      const v = Math.max(-1, Math.min(1, acc));
      this.out[this.filled++] = v < 0 ? v * 32768 : v * 32767;
      if (this.filled === this.chunk) this.send(this.chunk);
      this.pos += this.ratio;
    }
    const keep = Math.floor(this.pos) - this.half; // oldest source sample still needed
    if (keep > this.base) {
      this.buf = this.buf.slice(keep - this.base);
      this.base = keep;
    }
  }

  send(count) {
    if (count === 0) return;
    const frame = this.out.slice(0, count);
    this.port.postMessage(frame.buffer, [frame.buffer]);
    this.filled = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (input && input.length > 0) {
      // downmix: the mean of the channels
      const mono = new Float32Array(input[0].length);
      for (const channel of input) for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / input.length;
      this.append(mono);
      this.resample();
    }
    return true;
  }
}

registerProcessor("pcm-sender", PcmSender);
