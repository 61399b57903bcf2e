// Plain SVG charts (no library): a line chart for curves and a bar chart for totals per day, model or key.
// Each chart is an image with a text alternative, and carries its data as a table for screen readers.

const svgNs = 'http://www.w3.org/2000/svg';
const colors = ['#0969da', '#bf3989', '#1a7f37', '#9a6700', '#8250df'];
const width = 480, height = 220, left = 52, right = 12, top = 10, bottom = 30;

function svg(tag, attrs = {}, text) {
  const element = document.createElementNS(svgNs, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

function format(value) {
  const abs = Math.abs(value);
  if (abs >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (abs >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  if (abs !== 0 && abs < 0.01) return value.toExponential(1);
  return Number.isInteger(value) ? String(value) : value.toFixed(abs < 1 ? 3 : 2);
}

function frame(title, minY, maxY) {
  const root = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title });
  root.append(svg('title', {}, title));
  const plotHeight = height - top - bottom;
  for (let i = 0; i <= 4; i++) {
    const value = minY + ((maxY - minY) * i) / 4;
    const y = top + plotHeight - (plotHeight * i) / 4;
    root.append(svg('line', { x1: left, x2: width - right, y1: y, y2: y, stroke: '#eaeef2' }));
    root.append(svg('text', { x: left - 6, y: y + 4, 'text-anchor': 'end' }, format(value)));
  }
  return root;
}

function dataTable(caption, headers, rows) {
  const table = document.createElement('table');
  table.className = 'visually-hidden-table';
  table.hidden = true; // the chart's aria-label summarises; the table is the full data for those who open it
  const head = table.createTHead().insertRow();
  for (const header of headers) head.append(Object.assign(document.createElement('th'), { textContent: header }));
  const body = table.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const cell of row) tr.insertCell().textContent = cell;
  }
  const details = document.createElement('details');
  details.append(Object.assign(document.createElement('summary'), { textContent: `${caption}: data` }), table);
  details.addEventListener('toggle', () => { table.hidden = !details.open; });
  return details;
}

function figure(title, chart, legend, details) {
  const element = document.createElement('figure');
  element.append(Object.assign(document.createElement('figcaption'), { textContent: title }));
  if (legend) element.append(legend);
  element.append(chart, details);
  return element;
}

function legendFor(series) {
  const legend = document.createElement('div');
  legend.className = 'legend';
  series.forEach((s, i) => {
    const item = document.createElement('span');
    item.style.setProperty('--swatch', colors[i % colors.length]);
    item.textContent = s.name;
    legend.append(item);
  });
  return legend;
}

/** series: [{name, points: [{x, y}]}] with numeric x; returns a <figure>. */
export function lineChart(title, series, { xLabel = '' } = {}) {
  const points = series.flatMap(s => s.points);
  if (points.length === 0) return figure(title, Object.assign(document.createElement('p'), { className: 'muted', textContent: 'No data yet.' }), null, document.createElement('span'));
  const minX = Math.min(...points.map(p => p.x)), maxX = Math.max(...points.map(p => p.x));
  let minY = Math.min(0, ...points.map(p => p.y)), maxY = Math.max(...points.map(p => p.y));
  if (maxY === minY) maxY = minY + 1;
  const root = frame(`${title}: ${series.map(s => `${s.name} ${s.points.length ? format(s.points.at(-1).y) : 'none'} at the end`).join(', ')}`, minY, maxY);
  const x = v => left + ((width - left - right) * (maxX === minX ? 0.5 : (v - minX) / (maxX - minX)));
  const y = v => top + (height - top - bottom) * (1 - (v - minY) / (maxY - minY));
  series.forEach((s, i) => {
    if (s.points.length === 0) return;
    const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(' ');
    root.append(svg('path', { d, fill: 'none', stroke: colors[i % colors.length], 'stroke-width': 2, 'data-series': s.name }));
    for (const p of s.points.length <= 40 ? s.points : []) root.append(svg('circle', { cx: x(p.x), cy: y(p.y), r: 2.5, fill: colors[i % colors.length] }));
  });
  root.append(svg('text', { x: left, y: height - 8 }, format(minX)));
  root.append(svg('text', { x: width - right, y: height - 8, 'text-anchor': 'end' }, format(maxX)));
  root.append(svg('text', { x: (left + width) / 2, y: height - 8, 'text-anchor': 'middle' }, xLabel));
  const xs = [...new Set(points.map(p => p.x))].sort((a, b) => a - b);
  const rows = xs.map(v => [String(v), ...series.map(s => { const p = s.points.find(q => q.x === v); return p ? String(p.y) : ''; })]);
  return figure(title, root, legendFor(series), dataTable(title, [xLabel || 'x', ...series.map(s => s.name)], rows));
}

/** bars: [{label, value}]; returns a <figure>. */
export function barChart(title, bars, { formatValue = format } = {}) {
  if (bars.length === 0) return figure(title, Object.assign(document.createElement('p'), { className: 'muted', textContent: 'No data for this period.' }), null, document.createElement('span'));
  const maxY = Math.max(1e-9, ...bars.map(b => b.value));
  const root = frame(`${title}: ${bars.map(b => `${b.label} ${formatValue(b.value)}`).join(', ')}`, 0, maxY);
  const plotWidth = width - left - right, plotHeight = height - top - bottom;
  const slot = plotWidth / bars.length, barWidth = Math.max(2, Math.min(48, slot * 0.7));
  bars.forEach((b, i) => {
    const barHeight = (plotHeight * b.value) / maxY;
    const cx = left + slot * i + slot / 2;
    const rect = svg('rect', { x: cx - barWidth / 2, y: top + plotHeight - barHeight, width: barWidth, height: Math.max(0, barHeight), fill: colors[0] });
    rect.append(svg('title', {}, `${b.label}: ${formatValue(b.value)}`));
    root.append(rect);
    if (bars.length <= 12) root.append(svg('text', { x: cx, y: height - 8, 'text-anchor': 'middle' }, b.label.length > 14 ? `${b.label.slice(0, 13)}…` : b.label));
  });
  return figure(title, root, null, dataTable(title, ['', title], bars.map(b => [b.label, formatValue(b.value)])));
}
