// Charts drawn by hand in SVG: time on x, a value on y; series drawn as a
// step line, a line or dots, and horizontal reference lines. Values here
// are floats for drawing only; the numbers shown as text stay the API's
// decimal strings.

const NS = "http://www.w3.org/2000/svg";
const W = 640;
const H = 240;
const M = { left: 70, right: 14, top: 26, bottom: 26 };

function node(name, attrs, parent) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) {
    e.setAttribute(k, String(v));
  }
  if (parent) {
    parent.appendChild(e);
  }
  return e;
}

// ticks are about n round values covering [lo, hi].
function ticks(lo, hi, n) {
  const span = hi - lo;
  if (!(span > 0)) {
    return [lo];
  }
  const raw = span / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Number(v.toPrecision(12)));
  }
  return out;
}

function clock(ms) {
  const d = new Date(ms);
  const two = (x) => String(x).padStart(2, "0");
  return `${two(d.getHours())}:${two(d.getMinutes())}`;
}

// draw replaces svg's content with a chart of spec:
//   {x: [t0, t1] (ms), y: [lo, hi] or null (fit the data),
//    series: [{name, cls, kind: "step"|"line"|"dots", points: [[ms, value], …]}],
//    refs: [{name, cls, y}], format: value → label, empty: text when there is no data}
export function draw(svg, spec) {
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const format = spec.format || ((v) => String(v));
  const refs = (spec.refs || []).filter((r) => Number.isFinite(r.y));
  const values = spec.series.flatMap((s) => s.points.map((p) => p[1])).concat(refs.map((r) => r.y));
  let [x0, x1] = spec.x;
  if (!(x1 > x0)) {
    x1 = x0 + 60_000;
  }
  let lo;
  let hi;
  if (spec.y) {
    [lo, hi] = spec.y;
  } else if (values.length) {
    lo = Math.min(...values);
    hi = Math.max(...values);
    const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.0005 || 1;
    lo -= pad;
    hi += pad;
  } else {
    [lo, hi] = [0, 1];
  }
  if (!(hi > lo)) {
    hi = lo + 1;
  }
  const px = (t) => M.left + ((t - x0) / (x1 - x0)) * (W - M.left - M.right);
  const py = (v) => H - M.bottom - ((v - lo) / (hi - lo)) * (H - M.top - M.bottom);

  const axes = node("g", { class: "axes" }, svg);
  for (const v of ticks(lo, hi, 4)) {
    node("line", { x1: M.left, x2: W - M.right, y1: py(v), y2: py(v), class: "grid" }, axes);
    node("text", { x: M.left - 6, y: py(v) + 4, "text-anchor": "end" }, axes).textContent = format(v);
  }
  const minute = 60_000;
  const xs = ticks(x0 / minute, x1 / minute, 6).map((m) => m * minute);
  for (const t of xs) {
    node("line", { x1: px(t), x2: px(t), y1: M.top, y2: H - M.bottom, class: "grid" }, axes);
    node("text", { x: px(t), y: H - 8, "text-anchor": "middle" }, axes).textContent = clock(t);
  }
  node("rect", { x: M.left, y: M.top, width: W - M.left - M.right, height: H - M.top - M.bottom, class: "frame" }, axes);

  for (const r of refs) {
    node("line", { x1: M.left, x2: W - M.right, y1: py(r.y), y2: py(r.y), class: `ref ${r.cls}` }, svg);
  }
  for (const s of spec.series) {
    const pts = s.points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]));
    if (!pts.length) {
      continue;
    }
    const g = node("g", { class: `series ${s.cls}` }, svg);
    if (s.kind === "dots") {
      for (const [t, v] of pts) {
        node("circle", { cx: px(t), cy: py(v), r: 3 }, g);
      }
      continue;
    }
    let d = `M${px(pts[0][0]).toFixed(1)},${py(pts[0][1]).toFixed(1)}`;
    for (let i = 1; i < pts.length; i++) {
      if (s.kind === "step") {
        d += `H${px(pts[i][0]).toFixed(1)}`;
      }
      d += `L${px(pts[i][0]).toFixed(1)},${py(pts[i][1]).toFixed(1)}`;
    }
    node("path", { d, fill: "none" }, g);
  }

  const legend = node("g", { class: "legend" }, svg);
  let lx = M.left;
  for (const item of [...spec.series, ...refs]) {
    node("rect", { x: lx, y: 8, width: 10, height: 10, class: `key ${item.cls}` }, legend);
    const label = node("text", { x: lx + 14, y: 17 }, legend);
    label.textContent = item.name;
    lx += 24 + item.name.length * 6.5;
  }
  if (!values.length && spec.empty) {
    node("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, svg).textContent = spec.empty;
  }
}
