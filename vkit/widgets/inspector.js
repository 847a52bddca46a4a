// vkit LatencyInspector: p50/p90 summary, a per-turn waterfall on a ms axis with a legend and hover,
// the selected turn's breakdown, the turn table and the stage table. Colours are JupyterLab theme variables.

// A turn's bar runs from the end of user speech through these milestones, in this order; each segment
// is named by where it ends. Parts a turn lacks are skipped (cascade parts appear only for a cascade).
const MILESTONES = [
  ["detected", "end-of-turn detection", "#4c78a8"],
  ["stt_final_ms", "speech-to-text final", "#72b7b2"],
  ["llm_first_token_ms", "LLM first token", "#b279a2"],
  ["tts_first_audio_ms", "TTS first audio", "#9d755d"],
  ["first_audio_received_ms", "network + server", "#f58518"],
  ["first_audio_played_ms", "first audio to played", "#54a24b"],
];
const TABLE = [
  ["turn", "turn", ""], ["user_speech_end_ms", "speech end", "ms"], ["end_of_turn_delay_ms", "end-of-turn detection", "ms"],
  ["server_first_audio_ms", "network + server", "ms"], ["first_audio_played_ms", "first audio played", "ms"],
  ["voice_to_voice_ms", "voice-to-voice", "ms"], ["interrupted", "barge-in", ""],
];
const STAGES = [
  ["stage", "stage", ""], ["latency_ms", "algorithmic latency", "ms"], ["num_items", "items", ""],
  ["processing_p50_us", "processing p50", "\u00b5s"], ["processing_p95_us", "processing p95", "\u00b5s"],
  ["queue_wait_p50_us", "queue wait p50", "\u00b5s"], ["queue_wait_p95_us", "queue wait p95", "\u00b5s"],
];

const CSS = `
.vkit-inspector { font-family: var(--jp-ui-font-family, sans-serif); font-size: var(--jp-ui-font-size1, 13px);
  color: var(--jp-ui-font-color1, #1f1f1f); max-width: 100%; overflow-x: auto; }
.vkit-inspector .vkit-head { display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: baseline; margin: 2px 0 8px; }
.vkit-inspector .vkit-status { color: var(--jp-ui-font-color2, #555); }
.vkit-inspector .vkit-kpi { display: inline-flex; flex-direction: column; padding: 4px 10px;
  border-left: 3px solid var(--jp-brand-color1, #1976d2); background: var(--jp-layout-color2, #f3f3f3); }
.vkit-inspector .vkit-kpi b { font-size: var(--jp-ui-font-size3, 16px); font-variant-numeric: tabular-nums; }
.vkit-inspector .vkit-kpi span { color: var(--jp-ui-font-color2, #555); font-size: var(--jp-ui-font-size0, 11px); }
.vkit-inspector table { border-collapse: collapse; margin: 6px 0; font-variant-numeric: tabular-nums; }
.vkit-inspector th, .vkit-inspector td { padding: 3px 10px; border-bottom: 1px solid var(--jp-border-color2, #e0e0e0);
  text-align: right; white-space: nowrap; }
.vkit-inspector th { font-weight: 600; border-bottom: 1px solid var(--jp-border-color1, #bdbdbd); vertical-align: bottom; }
.vkit-inspector th small { display: block; font-weight: normal; color: var(--jp-ui-font-color2, #555); }
.vkit-inspector td:first-child, .vkit-inspector th:first-child { text-align: left; }
.vkit-inspector tbody tr:hover { background: var(--jp-layout-color2, #f3f3f3); }
.vkit-inspector tr.vkit-selected { background: color-mix(in srgb, var(--jp-brand-color1, #1976d2) 22%, transparent) !important; }
.vkit-inspector .vkit-na { color: var(--jp-ui-font-color3, #999); font-style: italic; }
.vkit-inspector .vkit-tip { position: absolute; pointer-events: none; padding: 4px 8px; border-radius: 3px;
  background: var(--jp-layout-color0, #fff); color: var(--jp-ui-font-color1, #1f1f1f);
  border: 1px solid var(--jp-border-color1, #bdbdbd); box-shadow: 0 1px 4px rgba(0,0,0,.25); white-space: pre;
  font-variant-numeric: tabular-nums; display: none; z-index: 10; }
.vkit-inspector .vkit-breakdown { margin: 4px 0 8px; color: var(--jp-ui-font-color1, #1f1f1f); }
.vkit-inspector .vkit-breakdown i { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 10px; }
.vkit-inspector h4 { margin: 10px 0 2px; font-size: var(--jp-ui-font-size1, 13px); }
`;

const num = (v) => v !== null && v !== undefined && Number.isFinite(v);
function ms(v, digits = 0) { return num(v) ? v.toFixed(digits) : "-"; }
function us(v) { return !num(v) ? "-" : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2); }
function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]); }

// The segments of one turn: [label, colour, from ms, to ms] after the end of user speech.
function segments(t) {
  const start = t.user_speech_end_ms;
  if (!num(start)) return [];
  const detected = [t.vad_end_detected_ms, t.server_speech_stopped_ms, t.commit_sent_ms].filter(num);
  const at = { ...t, detected: detected.length ? Math.max(...detected) : null };
  const out = [];
  let prev = 0;
  for (const [key, label, colour] of MILESTONES) {
    if (!num(at[key])) continue;
    const v = at[key] - start;
    if (v > prev) { out.push([label, colour, prev, v]); prev = v; }
  }
  return out;
}

function niceStep(span, ticks) {
  const raw = span / ticks, power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
}

function waterfall(turns) {
  const rowH = 24, left = 64, right = 90, top = 6, axisH = 34, width = 760;
  let span = 100;
  for (const t of turns) for (const s of segments(t)) span = Math.max(span, s[3]);
  const step = niceStep(span, 6), end = Math.ceil(span / step) * step;
  const plotW = width - left - right, scale = plotW / end;
  const height = top + turns.length * rowH + axisH;
  const fg = "var(--jp-ui-font-color1, #1f1f1f)", muted = "var(--jp-ui-font-color2, #616161)";
  const grid = "var(--jp-border-color2, #e0e0e0)";
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" data-testid="vkit-waterfall" width="${width}" height="${height}" ` +
            `viewBox="0 0 ${width} ${height}" font-family="var(--jp-ui-font-family, sans-serif)" font-size="12" fill="${fg}">`;
  svg += `<g data-testid="vkit-axis">`;
  for (let x = 0; x <= end + 1e-9; x += step) {
    const px = left + x * scale;
    svg += `<line x1="${px}" x2="${px}" y1="${top}" y2="${top + turns.length * rowH}" stroke="${grid}"/>` +
           `<text x="${px}" y="${top + turns.length * rowH + 14}" text-anchor="middle" fill="${muted}">${x}</text>`;
  }
  svg += `<text x="${left + plotW / 2}" y="${height - 4}" text-anchor="middle" fill="${muted}">ms after the end of user speech</text></g>`;
  turns.forEach((t, i) => {
    const y = top + i * rowH + 4;
    svg += `<text x="${left - 8}" y="${y + 12}" text-anchor="end" data-turn="${i}" style="cursor:pointer">turn ${t.turn}</text>`;
    const segs = segments(t);
    for (const [label, colour, a, b] of segs) {
      svg += `<rect x="${left + a * scale}" y="${y}" width="${Math.max(1, (b - a) * scale)}" height="16" fill="${colour}" ` +
             `data-turn="${i}" data-tip="turn ${t.turn}\n${esc(label)}: ${(b - a).toFixed(1)} ms\n(${a.toFixed(1)} \u2192 ${b.toFixed(1)} ms)">` +
             `<title>${esc(label)}: ${(b - a).toFixed(1)} ms</title></rect>`;
    }
    const last = segs.length ? segs[segs.length - 1][3] : 0;
    const label = num(t.voice_to_voice_ms) ? `${t.voice_to_voice_ms.toFixed(0)} ms` : (segs.length ? "not played" : "");
    svg += `<text x="${left + last * scale + 6}" y="${y + 12}" font-weight="600">${label}</text>`;
  });
  return svg + "</svg>";
}

function legend(turns) {
  const present = new Set();
  for (const t of turns) for (const s of segments(t)) present.add(s[0]);
  const items = MILESTONES.filter(([, label]) => present.has(label));
  return `<div class="vkit-breakdown" data-testid="vkit-legend">` +
         items.map(([, label, colour]) => `<i style="background:${colour}"></i>${esc(label)}`).join("") + `</div>`;
}

function breakdown(t) {
  if (!t) return "";
  const segs = segments(t);
  if (!segs.length) return `<div class="vkit-breakdown" data-testid="vkit-breakdown">turn ${t.turn}: no end of speech yet</div>`;
  const parts = segs.map(([label, colour, a, b]) => `<i style="background:${colour}"></i>${esc(label)} <b>${(b - a).toFixed(1)} ms</b>`);
  const total = num(t.voice_to_voice_ms) ? ` = voice-to-voice <b>${t.voice_to_voice_ms.toFixed(1)} ms</b>` : "";
  return `<div class="vkit-breakdown" data-testid="vkit-breakdown">turn ${t.turn}:${parts.join(" +")}${total}</div>`;
}

function table(rows, columns, cell) {
  const head = columns.map(([, label, unit]) => `<th>${esc(label)}${unit ? `<small>${unit}</small>` : ""}</th>`).join("");
  return `<table><thead><tr>${head}</tr></thead><tbody>${rows.map(cell).join("")}</tbody></table>`;
}

function render({ model, el }) {
  if (!document.getElementById("vkit-inspector-css")) {
    const style = document.createElement("style");
    style.id = "vkit-inspector-css";
    style.textContent = CSS;
    document.head.appendChild(style);
  }
  const root = document.createElement("div");
  root.className = "vkit-inspector";
  root.dataset.testid = "vkit-inspector";
  root.style.position = "relative";
  el.appendChild(root);
  const body = document.createElement("div");
  const tip = document.createElement("div");
  tip.className = "vkit-tip";
  root.append(body, tip);
  let selected = null;   // the turn whose breakdown is shown: the last one unless the user picks one

  function draw() {
    const turns = model.get("turns") || [], stages = model.get("stages") || [], summary = model.get("summary") || [];
    const chosen = selected !== null && selected < turns.length ? selected : turns.length - 1;
    let html = `<div class="vkit-head"><span class="vkit-status" data-testid="vkit-inspector-status">` +
               `${esc(model.get("status"))} \u00b7 ${turns.length} turn${turns.length === 1 ? "" : "s"}</span>`;
    for (const s of summary) {
      if (!s.num_turns) continue;
      html += `<span class="vkit-kpi" data-testid="vkit-kpi"><b>${ms(s.p50_ms)} / ${ms(s.p90_ms)} ms</b>` +
              `<span>${esc(s.label)} p50 / p90 (${s.num_turns} turns)</span></span>`;
    }
    html += `</div>`;
    if (turns.length) html += waterfall(turns) + legend(turns) + breakdown(turns[chosen]);
    html += table(turns, TABLE, (t, i) => `<tr data-testid="vkit-turn" data-turn="${i}" class="${i === chosen ? "vkit-selected" : ""}" style="cursor:pointer">` +
      TABLE.map(([key]) => key === "turn" ? `<td>${t.turn}</td>` : key === "interrupted" ? `<td>${t.interrupted ? "yes" : ""}</td>` :
        `<td${key === "voice_to_voice_ms" ? ' data-testid="vkit-v2v"' : ""}>${ms(t[key], 1)}</td>`).join("") + `</tr>`);
    if (stages.length) {
      html += `<h4>Stages</h4>` + table(stages, STAGES, (s) => `<tr data-testid="vkit-stage">` + STAGES.map(([key]) => {
        if (key === "stage") return `<td>${esc(s.stage)}</td>`;
        if (key === "num_items") return `<td>${s.num_items}</td>`;
        if (key === "latency_ms") return `<td>${num(s.latency_ms) ? s.latency_ms.toFixed(1) : "-"}</td>`;
        if (key.startsWith("processing") && !s.measured) return `<td class="vkit-na" title="an async stage's time per item is not measured">not measured</td>`;
        return `<td>${us(s[key])}</td>`;
      }).join("") + `</tr>`);
    }
    body.innerHTML = html;
  }
  root.addEventListener("click", (e) => {
    const target = e.target.closest("[data-turn]");
    if (target) { selected = Number(target.dataset.turn); draw(); }
  });
  root.addEventListener("mousemove", (e) => {
    const target = e.target.closest("[data-tip]");
    if (!target) { tip.style.display = "none"; return; }
    const box = root.getBoundingClientRect();
    tip.textContent = target.dataset.tip;
    tip.style.left = `${e.clientX - box.left + 12}px`;
    tip.style.top = `${e.clientY - box.top + 12}px`;
    tip.style.display = "block";
  });
  root.addEventListener("mouseleave", () => { tip.style.display = "none"; });
  for (const name of ["turns", "stages", "status", "summary"]) model.on(`change:${name}`, draw);
  draw();
}
export default { render };
