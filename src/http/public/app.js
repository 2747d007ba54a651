// @ts-check
/**
 * The fleet page: reads the JSON API, listens to /api/events (server-sent
 * events from the store) and redraws what changed; falls back to polling
 * while the event stream is down. Operator actions send the token from the
 * token field (kept in sessionStorage: this tab only).
 */
import { confirmationChart, duration } from './chart.js';

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const TOKEN_KEY = 'coapfw-token';
const PAGE = 100;
/** @type {string | undefined} */
let selectedDevice;
let deviceLimit = PAGE;

/**
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {Array<Node | string>} [children]
 */
function h(tag, attrs = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

/** @param {string} path */
async function get(path) {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  const body = await res.json();
  if (!res.ok) throw new Error(body?.error?.message ?? `${res.status}`);
  return body;
}

/** @param {string} text @param {'ok' | 'bad'} [kind] */
function notice(text, kind = 'bad') {
  const n = $('notice');
  n.textContent = text;
  n.className = `notice ${kind}`;
  n.hidden = false;
}

/** @param {number} ms */
function ago(ms) {
  const s = Math.max(0, (Date.now() - ms) / 1000);
  return s < 5 ? 'just now' : `${duration(s * 1000)} ago`;
}

/** @param {string} state */
function badge(state) {
  return h('span', { class: `badge s-${state}` }, [state]);
}

/** @param {string} hex */
const short = (hex) => (hex.length > 12 ? `${hex.slice(0, 8)}…` : hex);

async function refreshSummary() {
  const s = await get('/api/summary');
  const by = s.byState ?? {};
  $('s-devices').textContent = String(s.devices);
  $('s-confirmed').textContent = String(by.confirmed ?? 0);
  $('s-updating').textContent = String((by.downloading ?? 0) + (by.downloaded ?? 0) + (by.installing ?? 0) + (by.installed ?? 0));
  $('s-failed').textContent = String((by.failed ?? 0) + (by.reverted ?? 0));
  $('s-rollouts').textContent = s.paused ? `${s.activeRollouts} (${s.paused} paused)` : String(s.activeRollouts);
}

/** @param {any} w @param {any} counts */
function waveRow(w, counts) {
  const c = counts?.byState ?? {};
  const total = Math.max(counts?.targeted ?? 0, 1);
  const size = 'count' in w.size ? `${w.size.count} devices` : `${w.size.percent} %`;
  const seg = (/** @type {string} */ cls, /** @type {number} */ n) => {
    const e = h('span', { class: `seg ${cls}` });
    e.style.width = `${(100 * n) / total}%`; // CSSOM, which the page's CSP (no inline style) allows
    return e;
  };
  const bar = h('div', { class: 'bar', role: 'img', 'aria-label': `${c.confirmed ?? 0} confirmed, ${c.updating ?? 0} updating, ${c.notified ?? 0} told, ${(c.failed ?? 0) + (c.reverted ?? 0)} failed of ${counts?.targeted ?? 0}` }, [
    seg('ok', c.confirmed ?? 0),
    seg('busy', c.updating ?? 0),
    seg('told', c.notified ?? 0),
    seg('bad', (c.failed ?? 0) + (c.reverted ?? 0)),
  ]);
  return h('li', { class: `wave w-${w.state}` }, [
    h('div', { class: 'wave-head' }, [h('strong', {}, [`Wave ${w.index + 1}`]), ` ${size} · `, badge(w.state), h('span', { class: 'count' }, [`${c.confirmed ?? 0}/${counts?.targeted ?? 0} confirmed`])]),
    bar,
    h('div', { class: 'hint' }, [`success ≥ ${w.successPermille / 10} %, pause above ${w.failurePermille / 10} % failed, within ${duration(w.timeLimitS * 1000)}`]),
  ]);
}

/** @param {any} p */
function rolloutCard(p) {
  const r = p.rollout;
  const t = p.timeliness;
  const active = r.state === 'running' || r.state === 'paused';
  const id = `rollout-${r.id}`;
  const button = (/** @type {string} */ action, /** @type {string} */ label, /** @type {string} */ cls) =>
    h('button', { type: 'button', class: cls, 'data-action': action, 'data-rollout': String(r.id), 'aria-describedby': `${id}-h` }, [label]);
  const actions = h('div', { class: 'actions' }, active ? [r.state === 'running' ? button('pause', 'Pause', 'warn') : button('resume', 'Resume', 'primary'), button('abort', 'Abort', 'danger')] : []);
  const fmt = (/** @type {number | undefined} */ ms) => (ms === undefined || ms === null ? '–' : duration(ms));
  const elapsed = (active ? Date.now() : r.updatedAt) - r.createdAt;
  return h('article', { class: `rollout r-${r.state}`, id, 'data-state': r.state, 'aria-labelledby': `${id}-h` }, [
    h('header', {}, [
      h('h3', { id: `${id}-h` }, [`Rollout ${r.id}: release ${r.sequence}`, h('span', { class: 'sub' }, [` class ${short(r.classId)}${r.group ? ` · group ${r.group}` : ''}`])]),
      h('span', { class: `state badge s-${r.state}`, 'data-testid': 'rollout-state' }, [r.state]),
    ]),
    r.pauseReason ? h('p', { class: 'reason' }, [r.pauseReason]) : '',
    h('div', { class: 'rollout-body' }, [
      h('ol', { class: 'waves' }, r.waves.map((/** @type {any} */ w) => waveRow(w, p.waves[w.index]))),
      h('figure', {}, [
        confirmationChart(p.curve, t.targeted, elapsed, `Confirmed devices over time: ${t.confirmed} of ${t.targeted}`),
        h('figcaption', {}, [
          h('dl', { class: 'timely' }, [h('dt', {}, ['50 %']), h('dd', {}, [fmt(t.p50Ms)]), h('dt', {}, ['90 %']), h('dd', {}, [fmt(t.p90Ms)]), h('dt', {}, ['100 %']), h('dd', {}, [fmt(t.p100Ms)])]),
        ]),
      ]),
    ]),
    h('footer', {}, [h('span', { class: 'hint' }, [`started ${ago(r.createdAt)} by ${r.createdBy} · ${p.remaining} devices not yet targeted`]), actions]),
  ]);
}

async function refreshRollouts() {
  const { items } = await get('/api/rollouts?limit=10');
  const box = $('rollouts');
  // Keep the focused button's place across a redraw (keyboard users).
  const focused = /** @type {HTMLElement | null} */ (document.activeElement)?.dataset?.rollout;
  box.replaceChildren(...(items.length ? items.map(rolloutCard) : [h('p', { class: 'empty' }, ['No rollouts yet. Start one with POST /api/rollouts.'])]));
  if (focused) /** @type {HTMLElement | null} */ (box.querySelector(`[data-rollout="${focused}"]`))?.focus();
}

async function refreshDevices() {
  const state = /** @type {HTMLSelectElement} */ ($('state-filter')).value;
  const { items, next } = await get(`/api/devices?limit=${deviceLimit}${state ? `&state=${state}` : ''}`);
  const rows = items.map((/** @type {any} */ d) => {
    const progress = d.progress ? ` ${Math.floor((100 * d.progress.done) / Math.max(d.progress.total, 1))} %` : '';
    const link = h('button', { type: 'button', class: 'link', 'data-device': d.id }, [d.id]);
    return h('tr', { 'data-device-row': d.id, class: d.id === selectedDevice ? 'selected' : '' }, [
      h('th', { scope: 'row' }, [link]),
      h('td', {}, [String(d.installedSeq)]),
      h('td', {}, [d.mode]),
      h('td', {}, [badge(d.state), progress]),
      h('td', { class: 'wide' }, [d.group ?? '']),
      h('td', {}, [h('time', { datetime: new Date(d.lastSeen).toISOString() }, [ago(d.lastSeen)])]),
    ]);
  });
  /** @type {HTMLTableElement} */ ($('devices')).tBodies[0].replaceChildren(...rows);
  $('more-devices').hidden = next === undefined || next === null;
}

async function refreshReleases() {
  const { items } = await get('/api/releases?limit=20');
  const kib = (/** @type {number} */ n) => (n < 1024 ? `${n} B` : `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KiB`);
  const rows = items.map((/** @type {any} */ r) =>
    h('tr', {}, [
      h('td', { title: r.classId }, [short(r.classId)]),
      h('td', {}, [String(r.sequence)]),
      h('td', {}, [h('span', { class: `badge u-${r.urgency}` }, [r.urgency])]),
      h('td', {}, [kib(r.images.reduce((/** @type {number} */ n, /** @type {any} */ i) => n + i.size, 0))]),
      h('td', { class: 'wide' }, [r.publisher]),
      h('td', {}, [ago(r.publishedAt)]),
    ]),
  );
  /** @type {HTMLTableElement} */ ($('releases')).tBodies[0].replaceChildren(...rows);
}

async function refreshDevice() {
  if (selectedDevice === undefined) return;
  const { device, command, history } = await get(`/api/devices/${encodeURIComponent(selectedDevice)}`);
  const items = history.map((/** @type {any} */ e) =>
    h('li', {}, [
      h('time', { datetime: new Date(e.at).toISOString() }, [new Date(e.at).toLocaleString()]),
      ' ',
      badge(e.transition),
      e.sequence !== undefined && e.sequence !== null ? ` release ${e.sequence}` : '',
      e.progress ? ` ${e.progress.done}/${e.progress.total} B` : '',
      e.detail ? h('span', { class: 'detail' }, [` ${e.detail}`]) : '',
    ]),
  );
  $('device-h').textContent = `Device ${device.id}`;
  $('device-detail').replaceChildren(
    h('dl', { class: 'facts' }, [
      h('dt', {}, ['Version']), h('dd', {}, [String(device.installedSeq)]),
      h('dt', {}, ['Mode']), h('dd', {}, [device.mode]),
      h('dt', {}, ['State']), h('dd', {}, [badge(device.state)]),
      h('dt', {}, ['Command']), h('dd', {}, [command ? `${command.kind} ${command.sequence} (${command.state})` : 'none']),
      h('dt', {}, ['Last seen']), h('dd', {}, [ago(device.lastSeen)]),
    ]),
    h('h3', {}, ['History']),
    h('ol', { class: 'history' }, items),
  );
  $('device-panel').hidden = false;
}

/** @param {string} action @param {string} id */
async function act(action, id) {
  const token = sessionStorage.getItem(TOKEN_KEY) ?? '';
  const res = await fetch(`/api/rollouts/${id}/${action}`, { method: 'POST', headers: token ? { authorization: `Bearer ${token}` } : {} });
  const body = await res.json().catch(() => ({}));
  if (res.status === 401) notice('Refused: the operator token is missing or wrong. Enter it above.');
  else if (!res.ok) notice(`Could not ${action} rollout ${id}: ${body?.error?.message ?? res.status}`);
  else notice(`Rollout ${id}: ${body.state}`, 'ok');
  await refreshAll();
}

const refreshers = { summary: refreshSummary, rollouts: refreshRollouts, devices: refreshDevices, releases: refreshReleases, device: refreshDevice };
/** @type {Set<keyof typeof refreshers>} */
const due = new Set();
/** @type {number | undefined} */
let timer;

/** @param {Array<keyof typeof refreshers>} parts */
function schedule(parts) {
  for (const p of parts) due.add(p);
  timer ??= window.setTimeout(async () => {
    timer = undefined;
    const parts = [...due];
    due.clear();
    const results = await Promise.allSettled(parts.map((p) => refreshers[p]()));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) notice(`Could not load: ${/** @type {PromiseRejectedResult} */ (failed).reason?.message ?? failed}`);
  }, 150);
}

function refreshAll() {
  schedule(['summary', 'rollouts', 'devices', 'releases', 'device']);
}

function listen() {
  const live = $('live');
  /** @type {number | undefined} */
  let poll;
  const es = new EventSource('/api/events');
  es.addEventListener('hello', () => {
    live.className = 'live on';
    $('live-text').textContent = 'live';
    window.clearInterval(poll);
    poll = undefined;
    refreshAll();
  });
  es.addEventListener('change', (ev) => {
    const c = JSON.parse(/** @type {MessageEvent} */ (ev).data);
    /** @type {Array<keyof typeof refreshers>} */
    const parts = ['summary'];
    if (c.kinds.includes('device') || c.kinds.includes('command') || c.kinds.includes('resync')) parts.push('devices', 'device', 'rollouts');
    if (c.kinds.includes('rollout')) parts.push('rollouts');
    if (c.kinds.includes('release')) parts.push('releases');
    schedule(parts);
  });
  es.onerror = () => {
    live.className = 'live off';
    $('live-text').textContent = 'reconnecting…';
    poll ??= window.setInterval(refreshAll, 10_000);
  };
}

function wire() {
  const input = /** @type {HTMLInputElement} */ ($('token'));
  input.value = sessionStorage.getItem(TOKEN_KEY) ?? '';
  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    notice(input.value.trim() ? 'Token saved for this tab.' : 'Token cleared.', 'ok');
  });
  document.addEventListener('click', (e) => {
    const t = /** @type {HTMLElement} */ (e.target).closest('button');
    if (!t) return;
    if (t.dataset.action && t.dataset.rollout) {
      if (t.dataset.action === 'abort' && !window.confirm(`Abort rollout ${t.dataset.rollout}? It cannot be resumed.`)) return;
      void act(t.dataset.action, t.dataset.rollout);
    } else if (t.dataset.device) {
      selectedDevice = t.dataset.device;
      schedule(['device', 'devices']);
    }
  });
  $('close-device').addEventListener('click', () => {
    selectedDevice = undefined;
    $('device-panel').hidden = true;
    schedule(['devices']);
  });
  $('state-filter').addEventListener('change', () => schedule(['devices']));
  $('more-devices').addEventListener('click', () => {
    deviceLimit = Math.min(deviceLimit + PAGE, 1000); // the store's largest page
    schedule(['devices']);
  });
  // Relative times ("2 min ago") age even when nothing changes.
  window.setInterval(() => schedule(['devices', 'rollouts']), 30_000);
}

wire();
refreshAll();
listen();
