// vkit LatencyInspector: per-turn table and a waterfall of the turn timeline, updated from Python.
const STEPS = [
  ["user_speech_end_ms", "speech end", "#4c78a8"],
  ["vad_end_detected_ms", "VAD end", "#72b7b2"],
  ["server_speech_stopped_ms", "server stop", "#54a24b"],
  ["commit_sent_ms", "commit", "#54a24b"],
  ["response_created_ms", "response.created", "#eeca3b"],
  ["first_audio_received_ms", "first audio in", "#f58518"],
  ["first_audio_played_ms", "first sound", "#e45756"],
];

function fmt(v) { return v === null || v === undefined ? "-" : (typeof v === "number" ? v.toFixed(1) : String(v)); }

function waterfall(turns) {
  const rowH = 22, left = 60, width = 560;
  let span = 0;
  for (const t of turns) {
    const start = t.user_speech_end_ms;
    if (start === null || start === undefined) continue;
    for (const [key] of STEPS) if (t[key] !== null && t[key] !== undefined) span = Math.max(span, t[key] - start);
  }
  span = Math.max(span, 100);
  const scale = (width - left - 70) / span;
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${turns.length * rowH + 30}" font-size="10" font-family="sans-serif">`;
  turns.forEach((t, i) => {
    const y = i * rowH + 4, start = t.user_speech_end_ms;
    svg += `<text x="4" y="${y + 13}">turn ${t.turn}</text>`;
    if (start === null || start === undefined) return;
    let prev = 0;
    for (const [key, label, colour] of STEPS) {
      const v = t[key];
      if (v === null || v === undefined) continue;
      const x0 = left + prev * scale, x1 = left + (v - start) * scale;
      if (x1 > x0) svg += `<rect x="${x0}" y="${y}" width="${x1 - x0}" height="16" fill="${colour}"><title>${label}: ${fmt(v - start)} ms</title></rect>`;
      prev = Math.max(prev, v - start);
    }
    svg += `<text x="${left + prev * scale + 4}" y="${y + 13}">${fmt(t.voice_to_voice_ms)} ms</text>`;
  });
  svg += `<text x="${left}" y="${turns.length * rowH + 24}" fill="#555">0 = end of user speech; bars: VAD, server, first audio in, first sound (${span.toFixed(0)} ms wide)</text></svg>`;
  return svg;
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.dataset.testid = "vkit-inspector";
  root.style.fontFamily = "sans-serif";
  root.style.fontSize = "12px";
  el.appendChild(root);
  function draw() {
    const turns = model.get("turns") || [];
    const stages = model.get("stages") || [];
    let html = `<div data-testid="vkit-inspector-status">${model.get("status")} | ${turns.length} turns</div>`;
    html += `<table style="border-collapse:collapse"><thead><tr><th>turn</th><th>speech end</th><th>VAD delay</th>` +
            `<th>server TTFA</th><th>first sound</th><th>voice-to-voice</th><th>barge-in</th></tr></thead><tbody>`;
    for (const t of turns) {
      html += `<tr data-testid="vkit-turn"><td>${t.turn}</td><td>${fmt(t.user_speech_end_ms)}</td>` +
              `<td>${fmt(t.end_of_turn_delay_ms)}</td><td>${fmt(t.server_first_audio_ms)}</td>` +
              `<td>${fmt(t.first_audio_played_ms)}</td><td data-testid="vkit-v2v">${fmt(t.voice_to_voice_ms)}</td>` +
              `<td>${t.interrupted ? "yes" : ""}</td></tr>`;
    }
    html += `</tbody></table>` + waterfall(turns);
    if (stages.length) {
      html += `<table style="margin-top:6px"><thead><tr><th>stage</th><th>latency ms</th><th>items</th>` +
              `<th>p50 us</th><th>p95 us</th></tr></thead><tbody>`;
      for (const s of stages) {
        html += `<tr><td>${s.stage}</td><td>${fmt(s.latency_ms)}</td><td>${s.num_items}</td>` +
                `<td>${fmt(s.processing_p50_us)}</td><td>${fmt(s.processing_p95_us)}</td></tr>`;
      }
      html += `</tbody></table>`;
    }
    root.innerHTML = html;
  }
  model.on("change:turns", draw);
  model.on("change:stages", draw);
  model.on("change:status", draw);
  draw();
}
export default { render };
