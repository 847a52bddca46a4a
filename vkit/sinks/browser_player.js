// vkit Player: streams PCM16 chunks into an AudioWorklet jitter buffer and reports what was played.
// One AudioContext per player, however many views show it: the contexts live in a page-wide registry
// keyed by the model id; the first live view feeds it, and the last view to go closes it.
const WORKLET = `
class VkitPlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.prebuffer = options.processorOptions.prebuffer;
    this.frames = 0;
    this.clear();
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
      } else if (e.data.type === "reset") {
        this.clear();
        this.report(true);
      }
    };
  }
  clear() {
    this.queue = [];            // [{samples: Float32Array, start: stream position}]
    this.offset = 0;            // read position inside queue[0]
    this.buffered = 0;
    this.armed = true;          // waiting for the prebuffer to fill
    this.position = 0;          // stream position of the next sample to play
    this.underruns = 0;
    this.dryAt = null;          // when the queue last ran dry while playing
    this.peak = 0;              // highest |sample| since the last report
  }
  report(flushed) {
    this.port.postMessage({position: this.position, buffered: this.buffered, underruns: this.underruns,
                           playing: !this.armed, peak: this.peak, flushed: !!flushed});
    this.peak = 0;
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
    for (let j = 0; j < i; j++) { const a = Math.abs(out[j]); if (a > this.peak) this.peak = a; }
    if (!this.armed && !this.queue.length) { this.armed = true; this.dryAt = currentFrame; }
    for (; i < out.length; i++) out[i] = 0;
    if (++this.frames % 16 === 0) this.report(false);
    return true;
  }
}
registerProcessor("vkit-player", VkitPlayer);
`;

const CSS = `
.vkit-player { display: flex; align-items: center; gap: 10px; font-family: var(--jp-ui-font-family, sans-serif);
  font-size: var(--jp-ui-font-size1, 13px); color: var(--jp-ui-font-color1, #1f1f1f); padding: 4px 0; }
.vkit-player button { font: inherit; color: inherit; background: var(--jp-layout-color2, #eee);
  border: 1px solid var(--jp-border-color1, #bbb); border-radius: 3px; padding: 2px 10px; cursor: pointer; }
.vkit-player button[aria-pressed="true"] { background: var(--jp-warn-color2, #ffcc80); }
.vkit-player .vkit-time { font-variant-numeric: tabular-nums; min-width: 5.5em; }
.vkit-player .vkit-stat { color: var(--jp-ui-font-color2, #555); font-variant-numeric: tabular-nums; }
.vkit-player .vkit-meter { width: 120px; height: 8px; background: var(--jp-layout-color3, #ddd); border-radius: 4px;
  overflow: hidden; }
.vkit-player .vkit-meter > div { height: 100%; width: 0; background: var(--jp-success-color1, #388e3c);
  transition: width 80ms linear; }
.vkit-player .vkit-meter > div.hot { background: var(--jp-error-color1, #d32f2f); }
`;

const REGISTRY = (globalThis.__vkitPlayers = globalThis.__vkitPlayers || new Map());

function entryFor(model) {
  const key = model.get("player_key") || "default";
  let entry = REGISTRY.get(key);
  if (!entry) {
    entry = { key, ctx: null, node: null, gain: null, starting: null, pending: [], views: new Set(),
              received: 0, lastSent: 0, streamId: model.get("stream_id"),
              info: { position: 0, buffered: 0, underruns: 0, playing: false, peak: 0 } };
    REGISTRY.set(key, entry);
  }
  return entry;
}

async function start(entry, model) {
  if (entry.ctx) { await entry.ctx.resume(); return; }
  if (entry.starting) return entry.starting;
  entry.starting = (async () => {
    const ctx = new AudioContext({ sampleRate: model.get("sample_rate_hz") });
    entry.ctx = ctx;
    const url = URL.createObjectURL(new Blob([WORKLET], { type: "application/javascript" }));
    await ctx.audioWorklet.addModule(url);
    URL.revokeObjectURL(url);
    if (ctx.state === "closed") return;
    const node = new AudioWorkletNode(ctx, "vkit-player", {
      outputChannelCount: [1],
      processorOptions: { prebuffer: Math.round(ctx.sampleRate * model.get("prebuffer_ms") / 1000) },
    });
    const gain = ctx.createGain();
    gain.gain.value = model.get("muted") ? 0 : 1;
    node.connect(gain).connect(ctx.destination);
    node.port.onmessage = (e) => {
      entry.info = e.data;
      const now = performance.now();
      if (e.data.flushed || now - entry.lastSent > 200) {   // report back a few times a second
        entry.lastSent = now;
        model.send({ type: "played", stream_id: entry.streamId, position: e.data.position,
                     buffered: e.data.buffered, underruns: e.data.underruns, playing: e.data.playing,
                     state: ctx.state });
      }
      for (const view of entry.views) view.show();
    };
    entry.node = node; entry.gain = gain;
    for (const chunk of entry.pending) node.port.postMessage(chunk, [chunk.samples.buffer]);
    entry.pending = [];
    ctx.onstatechange = () => { for (const view of entry.views) view.show(); };
    await ctx.resume();
  })();
  try { await entry.starting; } finally { entry.starting = null; }
}

function close(entry) {
  REGISTRY.delete(entry.key);
  if (entry.node) entry.node.port.onmessage = null;
  if (entry.ctx && entry.ctx.state !== "closed") entry.ctx.close();
}

function render({ model, el }) {
  if (!document.getElementById("vkit-player-css")) {
    const style = document.createElement("style");
    style.id = "vkit-player-css";
    style.textContent = CSS;
    document.head.appendChild(style);
  }
  const entry = entryFor(model);
  const root = document.createElement("div");
  root.className = "vkit-player";
  root.dataset.testid = "vkit-player";
  const button = document.createElement("button");
  const mute = document.createElement("button");
  mute.dataset.testid = "vkit-player-mute";
  const time = document.createElement("span");
  time.className = "vkit-time";
  const meter = document.createElement("div");
  meter.className = "vkit-meter";
  meter.title = "output level (peak)";
  const bar = document.createElement("div");
  meter.appendChild(bar);
  const status = document.createElement("span");
  status.className = "vkit-stat";
  status.dataset.testid = "vkit-player-status";
  root.append(button, mute, time, meter, status);
  el.appendChild(root);

  const view = {
    show() {
      const ctx = entry.ctx, info = entry.info;
      const state = ctx ? ctx.state : "off";
      const rate = ctx ? ctx.sampleRate : model.get("sample_rate_hz");
      const bufferedMs = Math.round(1000 * info.buffered / rate);
      const seconds = info.position / model.get("sample_rate_hz");
      button.textContent = state === "running" ? "Audio on" : "Enable audio";
      button.disabled = state === "running";
      mute.textContent = model.get("muted") ? "Unmute" : "Mute";
      mute.setAttribute("aria-pressed", String(model.get("muted")));
      time.textContent = `${info.playing ? "\u25B6" : "\u25A0"} ${seconds.toFixed(1)} s`;
      const dbfs = info.peak > 0 ? 20 * Math.log10(info.peak) : -Infinity;
      const fraction = Math.max(0, Math.min(1, (dbfs + 60) / 60));   // -60 .. 0 dBFS
      bar.style.width = `${(100 * fraction).toFixed(0)}%`;
      bar.classList.toggle("hot", dbfs > -1);
      meter.title = `peak ${Number.isFinite(dbfs) ? dbfs.toFixed(1) : "-inf"} dBFS`;
      status.textContent = `buffered ${bufferedMs} ms \u00B7 underruns ${info.underruns} \u00B7 audio ${state}`;
      Object.assign(root.dataset, { state, received: String(entry.received), played: String(info.position),
                                    bufferedMs: String(bufferedMs), underruns: String(info.underruns),
                                    muted: String(model.get("muted")) });
    },
  };
  entry.views.add(view);
  // the kernel counts open views: a viewed player plays in real time, so a virtual-clock run is refused
  const viewId = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  const tell = (open) => { try { model.send({ type: "view", view_id: viewId, open }); } catch (e) { /* comm gone */ } };
  const onPageHide = () => tell(false);
  window.addEventListener("pagehide", onPageHide);
  tell(true);
  const feeding = () => entry.views.values().next().value === view;   // the oldest live view feeds the context

  button.onclick = () => start(entry, model).then(view.show, view.show);
  mute.onclick = () => { model.set("muted", !model.get("muted")); model.save_changes(); };
  const onMuted = () => {
    if (feeding() && entry.gain) entry.gain.gain.value = model.get("muted") ? 0 : 1;
    view.show();
  };
  const onStream = () => {
    if (!feeding()) return;
    entry.streamId = model.get("stream_id");
    entry.pending = []; entry.received = 0;
    if (entry.node) entry.node.port.postMessage({ type: "reset" });
    entry.info = { position: 0, buffered: 0, underruns: 0, playing: false, peak: 0 };
    for (const v of entry.views) v.show();
  };
  const onMessage = (msg, buffers) => {
    if (!feeding()) return;
    if (msg.type === "pcm16") {
      const data = buffers[0];
      const pcm = new Int16Array(data.buffer, data.byteOffset, data.byteLength / 2);
      const samples = new Float32Array(pcm.length);
      for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 32768;
      entry.received += pcm.length;
      const chunk = { type: "chunk", samples, start: msg.start_sample };
      if (entry.node) entry.node.port.postMessage(chunk, [samples.buffer]); else entry.pending.push(chunk);
      if (!entry.ctx && model.get("autostart")) start(entry, model).catch(view.show);
    } else if (msg.type === "flush") {
      entry.pending = [];
      if (entry.node) entry.node.port.postMessage({ type: "flush" });
    }
  };
  model.on("msg:custom", onMessage);
  model.on("change:muted", onMuted);
  model.on("change:stream_id", onStream);
  if (model.get("autostart")) start(entry, model).then(view.show, view.show);
  view.show();
  return () => {   // the view is removed (output cleared, cell re-run): the last one closes the context
    model.off("msg:custom", onMessage);
    model.off("change:muted", onMuted);
    model.off("change:stream_id", onStream);
    entry.views.delete(view);
    window.removeEventListener("pagehide", onPageHide);
    tell(false);
    if (!entry.views.size) close(entry);
  };
}
export default { render };
