// vkit GraphView: the graph's SVG with live per-stage item counters.
function render({ model, el }) {
  const root = document.createElement("div");
  root.dataset.testid = "vkit-graph";
  el.appendChild(root);
  function draw() {
    root.innerHTML = model.get("svg");
    const counters = model.get("counters") || {};
    for (const [name, count] of Object.entries(counters)) {
      const group = root.querySelector(`g[data-stage="${CSS.escape(name)}"]`);
      const label = group && group.querySelectorAll("text")[1];
      if (label) label.textContent = `${count} items`;
    }
  }
  model.on("change:svg", draw);
  model.on("change:counters", draw);
  draw();
}
export default { render };
