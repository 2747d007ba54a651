// @ts-check
/**
 * The confirmation chart of a rollout: confirmed devices over time as an SVG
 * step line, with the number of targeted devices as a dashed ceiling. No
 * chart library: one path, two axes, a few labels.
 */
const NS = 'http://www.w3.org/2000/svg';

/**
 * @param {string} name
 * @param {Record<string, string | number>} attrs
 * @returns {SVGElement}
 */
function el(name, attrs) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** @param {number} ms */
export function duration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 90) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 90) return `${m} min`;
  const h = m / 60;
  return h < 48 ? `${h.toFixed(h < 10 ? 1 : 0)} h` : `${(h / 24).toFixed(1)} d`;
}

/**
 * @param {Array<[number, number]>} curve [ms since start, confirmed]
 * @param {number} targeted
 * @param {number} elapsedMs time since the rollout started (the right edge)
 * @param {string} label accessible description
 * @returns {SVGElement}
 */
export function confirmationChart(curve, targeted, elapsedMs, label) {
  const W = 320;
  const H = 120;
  const P = { l: 34, r: 8, t: 10, b: 22 };
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'chart' });
  const title = el('title', {});
  title.textContent = label;
  svg.append(title);
  const maxT = Math.max(elapsedMs, curve.length ? curve[curve.length - 1][0] : 0, 1);
  const maxN = Math.max(targeted, 1);
  const x = (/** @type {number} */ t) => P.l + (t / maxT) * (W - P.l - P.r);
  const y = (/** @type {number} */ n) => H - P.b - (n / maxN) * (H - P.t - P.b);
  svg.append(el('line', { x1: P.l, y1: y(0), x2: W - P.r, y2: y(0), class: 'axis' }));
  svg.append(el('line', { x1: P.l, y1: y(0), x2: P.l, y2: P.t, class: 'axis' }));
  svg.append(el('line', { x1: P.l, y1: y(maxN), x2: W - P.r, y2: y(maxN), class: 'ceiling' }));
  let d = `M ${x(0)} ${y(0)}`;
  let last = 0;
  for (const [t, n] of curve) {
    d += ` H ${x(t).toFixed(1)} V ${y(n).toFixed(1)}`;
    last = n;
  }
  d += ` H ${x(maxT).toFixed(1)}`;
  const area = el('path', { d: `${d} V ${y(0)} Z`, class: 'area' });
  svg.append(area, el('path', { d, class: 'line' }));
  const text = (/** @type {string} */ s, /** @type {number} */ tx, /** @type {number} */ ty, anchor = 'start') => {
    const t = el('text', { x: tx, y: ty, 'text-anchor': anchor });
    t.textContent = s;
    svg.append(t);
  };
  text(String(maxN), P.l - 4, y(maxN) + 4, 'end');
  text('0', P.l - 4, y(0) + 4, 'end');
  text('0', P.l, H - 6);
  text(duration(maxT), W - P.r, H - 6, 'end');
  text(`${last} confirmed`, P.l + 6, P.t + 12);
  return svg;
}
