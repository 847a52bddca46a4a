// vkit Player: streams PCM16 chunks into an AudioWorklet jitter buffer and reports what was played.
const WORKLET = `
class VkitPlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.queue = [];            // [{samples: Float32Array, start: stream position}]
    this.offset = 0;            // read position inside queue[0]
    this.buffered = 0;
    this.prebuffer = options.processorOptions.prebuffer;
    this.armed = true;          // waiting for the prebuffer to fill
    this.position = 0;          // stream position of the next sample to play
    this.underruns = 0;
    this.frames = 0;
    this.dryAt = null;          // when the queue last ran dry while playing
    this.port.onmessage = (e) => {
      if (e.data.type === "chunk") {
        this.queue.push({samples: e.data.samples, start: e.data.start});
        this.buffered += e.data.samples.length;
        // audio that arrives soon after the queue ran dry means the stream stalled: an underrun
        if (this.dryAt !== null && currentFrame - this.dryAt < sampleRate / 2) this.underruns += 1;
        this.dryAt = null;
      } else if (e.data.type === "flush") {
        this.queue = []; this.offset = 0; this.buffered = 0; this.armed = true; this.dryAt = null;
        this.report(true);
      }
    };
  }
  report(flushed) {
    this.port.postMessage({position: this.position, buffered: this.buffered, underruns: this.underruns,
                           playing: !this.armed, flushed: !!flushed});
  }
  process(inputs, outputs) {
    const out = outputs[0][0];
    if (this.armed && this.buffered >= this.prebuffer) this.armed = false;
    let i = 0;
    while (!this.armed && i < out.length && this.queue.length) {
      const head = this.queue[0];
      if (this.offset === 0) this.position = head.start;
      const take = Math.min(out.length - i, head.samples.length - this.offset);
      out.set(head.samples.subarray(this.offset, this.offset + take), i);
      i += take; this.offset += take; this.buffered -= take; this.position += take;
      if (this.offset >= head.samples.length) { this.queue.shift(); this.offset = 0; }
    }
    if (!this.armed && !this.queue.length) { this.armed = true; this.dryAt = currentFrame; }
    for (; i < out.length; i++) out[i] = 0;
    if (++this.frames % 16 === 0) this.report(false);
    return true;
  }
}
registerProcessor("vkit-player", VkitPlayer);
`;

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "vkit-player";
  root.dataset.testid = "vkit-player";
  const button = document.createElement("button");
  button.textContent = "Enable audio";
  const status = document.createElement("span");
  status.dataset.testid = "vkit-player-status";
  status.style.marginLeft = "8px";
  status.style.fontFamily = "monospace";
  root.append(button, status);
  el.appendChild(root);

  let ctx = null, node = null, pending = [];
  let received = 0, lastSent = 0, info = {position: 0, buffered: 0, underruns: 0, playing: false};

  function show() {
    const state = ctx ? ctx.state : "off";
    const bufferedMs = ctx ? Math.round(1000 * info.buffered / ctx.sampleRate) : 0;
    status.textContent = `audio ${state} | received ${received} | played ${info.position} | buffered ${bufferedMs} ms | underruns ${info.underruns}`;
    Object.assign(root.dataset, {state, received: String(received), played: String(info.position),
                                 bufferedMs: String(bufferedMs), underruns: String(info.underruns)});
  }

  async function start() {
    if (ctx) { await ctx.resume(); show(); return; }
    ctx = new AudioContext({ sampleRate: model.get("sample_rate_hz") });
    const url = URL.createObjectURL(new Blob([WORKLET], { type: "application/javascript" }));
    await ctx.audioWorklet.addModule(url);
    node = new AudioWorkletNode(ctx, "vkit-player", {
      outputChannelCount: [1],
      processorOptions: { prebuffer: Math.round(ctx.sampleRate * model.get("prebuffer_ms") / 1000) },
    });
    node.connect(ctx.destination);
    node.port.onmessage = (e) => {
      info = e.data;
      const now = performance.now();
      if (e.data.flushed || now - lastSent > 200) {   // report back a few times a second
        lastSent = now;
        model.send({ type: "played", position: info.position, buffered: info.buffered,
                     underruns: info.underruns, playing: info.playing, state: ctx.state });
      }
      show();
    };
    for (const chunk of pending) node.port.postMessage(chunk, [chunk.samples.buffer]);
    pending = [];
    await ctx.resume();
    button.textContent = ctx.state === "running" ? "Audio on" : "Enable audio";
    show();
  }

  button.onclick = start;
  model.on("msg:custom", (msg, buffers) => {
    if (msg.type === "pcm16") {
      const view = buffers[0];
      const pcm = new Int16Array(view.buffer, view.byteOffset, view.byteLength / 2);
      const samples = new Float32Array(pcm.length);
      for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 32768;
      received += pcm.length;
      const chunk = { type: "chunk", samples, start: msg.start_sample };
      if (node) node.port.postMessage(chunk, [samples.buffer]); else pending.push(chunk);
      if (!ctx && model.get("autostart")) start();
    } else if (msg.type === "flush") {
      pending = [];
      if (node) node.port.postMessage({ type: "flush" });
    }
    show();
  });
  if (model.get("autostart")) start().catch(() => show());
  show();
}
export default { render };
