// lineChart draws time series as an SVG line chart into el: a few grid
// lines with labels, one polyline per series. Small on purpose: the
// dashboard needs two charts and no chart library.
const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function nice(max) {
  if (max <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

export function lineChart(el, xs, lines) {
  const w = el.clientWidth || 600;
  const hgt = el.clientHeight || 180;
  const pad = { l: 48, r: 10, t: 10, b: 22 };
  const svg = s('svg', { width: w, height: hgt, viewBox: `0 0 ${w} ${hgt}` });
  const maxY = nice(Math.max(1, ...lines.flatMap((l) => l.values)));
  const x0 = xs[0] ?? 0;
  const x1 = Math.max(x0 + 60, xs[xs.length - 1] ?? 0);
  const px = (x) => pad.l + ((x - x0) / (x1 - x0)) * (w - pad.l - pad.r);
  const py = (y) => hgt - pad.b - (y / maxY) * (hgt - pad.t - pad.b);
  for (let i = 0; i <= 4; i++) {
    const v = (maxY * i) / 4;
    svg.append(s('line', { x1: pad.l, x2: w - pad.r, y1: py(v), y2: py(v), stroke: '#e3e8ef' }));
    const tx = s('text', { x: pad.l - 6, y: py(v) + 4, 'text-anchor': 'end', 'font-size': 11, fill: '#5b6675' });
    tx.textContent = v >= 1000 ? (v / 1000).toFixed(1) + 'k' : String(Math.round(v * 100) / 100);
    svg.append(tx);
  }
  const span = s('text', { x: w - pad.r, y: hgt - 6, 'text-anchor': 'end', 'font-size': 11, fill: '#5b6675' });
  span.textContent = Math.round(x1 - x0) + 's';
  svg.append(span);
  for (const l of lines) {
    if (!l.values.length) continue;
    const pts = l.values.map((v, i) => `${px(xs[i]).toFixed(1)},${py(v).toFixed(1)}`).join(' ');
    const attrs = { points: pts, fill: 'none', stroke: l.color, 'stroke-width': l.width || 2 };
    if (l.dash) attrs['stroke-dasharray'] = l.dash;
    svg.append(s('polyline', attrs));
  }
  el.replaceChildren(svg);
}
