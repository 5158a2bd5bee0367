/*
 * Horizontal bar charts as plain inline SVG (no library) for the team page:
 * one labelled bar per row, scaled to the largest value. Labels and values are
 * text nodes (textContent), never markup. Owns nothing but the SVG it returns.
 */

const SVG_NS = 'http://www.w3.org/2000/svg';
const ROW_H = 24;
const LABEL_W = 120;
const VALUE_W = 70;
const WIDTH = 420;

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = String(text);
  return el;
}

/**
 * Draws the chart into `host` (replacing what was there).
 * @param {Element} host
 * @param {{title: string, rows: {key: string, label: string, value: number|null, text: string}[], empty?: string}} spec
 *   `value` null means "no data" (an empty bar, `text` shown as is).
 */
export function drawBars(host, { title, rows, empty = 'No data yet.' }) {
  if (!rows.length) {
    const p = document.createElement('p');
    p.className = 'chart-empty';
    p.textContent = empty;
    host.replaceChildren(p);
    return;
  }
  const max = Math.max(1, ...rows.map((r) => Number(r.value) || 0));
  const barW = WIDTH - LABEL_W - VALUE_W;
  const height = rows.length * ROW_H;
  const root = svg('svg', {
    class: 'bar-chart',
    viewBox: `0 0 ${WIDTH} ${height}`,
    width: '100%',
    role: 'img',
    'aria-label': title,
  });
  root.append(svg('title', {}, title));
  rows.forEach((r, i) => {
    const y = i * ROW_H;
    const v = Number(r.value) || 0;
    const w = r.value === null || v <= 0 ? 0 : Math.max(2, Math.round((v / max) * barW));
    const g = svg('g', { class: 'bar-row', 'data-testid': 'chart-bar', 'data-key': r.key });
    g.append(
      svg('text', { x: LABEL_W - 8, y: y + ROW_H / 2, 'text-anchor': 'end', 'dominant-baseline': 'middle', class: 'bar-label' }, r.label),
      svg('rect', { x: LABEL_W, y: y + 4, width: w, height: ROW_H - 8, rx: 3, class: r.value === null ? 'bar is-empty' : 'bar' }),
      svg('text', { x: LABEL_W + w + 6, y: y + ROW_H / 2, 'dominant-baseline': 'middle', class: 'bar-value' }, r.text),
    );
    root.append(g);
  });
  host.replaceChildren(root);
}
