// vkit VadTrace: the speech probability line, thresholds and speech spans, redrawn as the session runs.
function render({ model, el }) {
  const root = document.createElement("div");
  root.dataset.testid = "vkit-vad-trace";
  el.appendChild(root);
  const draw = () => { root.innerHTML = model.get("svg"); };
  model.on("change:svg", draw);
  draw();
}
export default { render };
