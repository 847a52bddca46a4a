// vkit BrowserMic: getUserMedia -> AudioWorklet at the device rate -> Int16 chunks to the kernel.
const CAPTURE = `
class VkitCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.size = options.processorOptions.chunk;
    this.buffer = new Int16Array(this.size);
    this.filled = 0;
  }
  process(inputs) {
    const input = inputs[0][0];
    if (!input) return true;
    for (let i = 0; i < input.length; i++) {
      const v = Math.max(-1, Math.min(1, input[i]));
      this.buffer[this.filled++] = v < 0 ? v * 32768 : v * 32767;
      if (this.filled === this.size) {
        this.port.postMessage(this.buffer.buffer, [this.buffer.buffer]);
        this.buffer = new Int16Array(this.size);
        this.filled = 0;
      }
    }
    return true;
  }
}
registerProcessor("vkit-capture", VkitCapture);
`;

function render({ model, el }) {
  const button = document.createElement("button");
  button.textContent = "Start microphone";
  const status = document.createElement("span");
  status.dataset.testid = "vkit-mic-status";
  status.style.marginLeft = "8px";
  el.append(button, status);
  let sent = 0;
  button.onclick = async () => {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true } });
    const ctx = new AudioContext();
    const url = URL.createObjectURL(new Blob([CAPTURE], { type: "application/javascript" }));
    await ctx.audioWorklet.addModule(url);
    const chunk = Math.round(ctx.sampleRate * model.get("frame_ms") / 1000);
    const node = new AudioWorkletNode(ctx, "vkit-capture", { processorOptions: { chunk } });
    const mute = ctx.createGain();
    mute.gain.value = 0;
    ctx.createMediaStreamSource(stream).connect(node).connect(mute).connect(ctx.destination);
    node.port.onmessage = (e) => {
      sent += 1;
      model.send({ type: "mic", sample_rate_hz: ctx.sampleRate, t_ms: performance.now() }, undefined, [e.data]);
      status.textContent = `capturing at ${ctx.sampleRate} Hz, ${sent} chunks sent`;
    };
    button.disabled = true;
    status.textContent = `capturing at ${ctx.sampleRate} Hz`;
  };
}
export default { render };
