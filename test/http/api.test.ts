/**
 * The JSON API: reads and pages, operator actions refused without the token
 * and taken with it, and the bounds (body size, event streams, Host names).
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer } from '../../src/http/server.js';
import { authorized } from '../../src/http/token.js';
import { startFleet, type Fleet } from './fleet-fixture.js';

let fleet: Fleet;
beforeAll(async () => {
  fleet = await startFleet(50);
});
afterAll(() => fleet?.close());

const api = (path: string, init: RequestInit = {}) => fetch(`${fleet.http.url}${path}`, init);
const post = (path: string, token?: string, body?: unknown) =>
  api(path, {
    method: 'POST',
    headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

/** A raw request, so that the Host header can be anything. */
function rawGet(path: string, host: string): Promise<number> {
  const u = new URL(fleet.http.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('JSON API', () => {
  it('summary, devices in pages, one device with its history, releases', async () => {
    const s = await (await api('/api/summary')).json();
    expect(s).toMatchObject({ devices: 50, releases: 2, activeRollouts: 1, paused: 0 });
    expect(s.byState.confirmed).toBe(16);
    const first = await (await api('/api/devices?limit=20')).json();
    expect(first.items).toHaveLength(20);
    expect(first.next).toBe('sensor-020');
    const rest = await (await api(`/api/devices?limit=40&after=${first.next}`)).json();
    expect(rest.items.map((d: { id: string }) => d.id)[0]).toBe('sensor-021');
    expect(rest.items).toHaveLength(30);
    expect(rest.next).toBeUndefined();
    const failed = await (await api('/api/devices?state=failed')).json();
    expect(failed.items.map((d: { id: string }) => d.id)).toEqual(['sensor-013']);
    const one = await (await api('/api/devices/sensor-013')).json();
    expect(one.device).toMatchObject({ id: 'sensor-013', state: 'failed', detail: 'image digest mismatch after download' });
    expect(one.history.map((e: { transition: string }) => e.transition)).toEqual(['failed', 'registered']);
    expect(one.rollouts).toEqual([{ rolloutId: fleet.rolloutId, sequence: 2, rolloutState: 'running', targetState: 'failed' }]);
    const releases = await (await api('/api/releases')).json();
    expect(releases.items.map((r: { sequence: number }) => r.sequence)).toEqual([2, 1]);
  });

  it('rollouts with per-wave counts and timeliness; targets by wave', async () => {
    const r = await (await api(`/api/rollouts/${fleet.rolloutId}`)).json();
    expect(r.rollout.currentWave).toBe(1);
    expect(r.waves.map((w: { targeted: number }) => w.targeted)).toEqual([5, 20, 0]);
    expect(r.waves[1].byState).toMatchObject({ confirmed: 11, updating: 8, failed: 1 });
    expect(r.timeliness).toMatchObject({ targeted: 25, confirmed: 16 });
    expect(r.timeliness.p50Ms).toBeGreaterThan(0);
    expect(r.curve.at(-1)[1]).toBe(16);
    const t = await (await api(`/api/rollouts/${fleet.rolloutId}/targets?wave=0`)).json();
    expect(t.items.map((x: { deviceId: string }) => x.deviceId)).toEqual(['sensor-001', 'sensor-002', 'sensor-003', 'sensor-004', 'sensor-005']);
    expect((await api('/api/rollouts/999')).status).toBe(404);
    expect((await api('/api/rollouts/abc')).status).toBe(404);
  });

  it('operator actions: 401 without the token or with a wrong one, taken with it', async () => {
    for (const token of [undefined, 'wrong-token-0123456789', `${fleet.token}x`]) {
      const res = await post(`/api/rollouts/${fleet.rolloutId}/pause`, token);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await res.json()).error.code).toBe('UNAUTHORIZED');
    }
    expect((await fleet.store.getRollout(fleet.rolloutId))!.state).toBe('running');
    const paused = await post(`/api/rollouts/${fleet.rolloutId}/pause`, fleet.token);
    expect(paused.status).toBe(200);
    expect(await paused.json()).toMatchObject({ state: 'paused', pauseReason: 'paused by operator' });
    expect((await post(`/api/rollouts/${fleet.rolloutId}/pause`, fleet.token)).status).toBe(409);
    expect((await (await post(`/api/rollouts/${fleet.rolloutId}/resume`, fleet.token)).json()).state).toBe('running');
    expect((await post('/api/rollouts', undefined, { classId: 'aa', sequence: 1 })).status).toBe(401);
    const bad = await post('/api/rollouts', fleet.token, { classId: 'not hex', sequence: 1 });
    expect(bad.status).toBe(400);
  });

  it('bounds: body size, methods, unknown routes, Host names', async () => {
    const huge = await post('/api/rollouts', fleet.token, { pad: 'x'.repeat(70 * 1024) });
    expect(huge.status).toBe(413);
    expect((await api('/api/summary', { method: 'DELETE' })).status).toBe(405);
    expect((await api('/api/nothing')).status).toBe(404);
    expect((await api('/nothing')).status).toBe(404);
    expect((await api('/api/devices?limit=0')).status).toBe(400);
    expect((await api('/api/devices?limit=5000')).status).toBe(400);
    expect(await rawGet('/api/summary', 'evil.example:80')).toBe(403); // DNS rebinding
    expect(await rawGet('/api/summary', `localhost:${new URL(fleet.http.url).port}`)).toBe(200);
  });

  it('the page and its files, with a CSP and no inline script', async () => {
    const page = await api('/');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toContain('<script type="module" src="/app.js">');
    expect(html).not.toMatch(/<script>(?!<\/script>)/);
    for (const f of ['/app.js', '/chart.js', '/app.css', '/favicon.svg']) expect((await api(f)).status, f).toBe(200);
  });

  it('event streams: a change arrives, and no more than the limit are open', async () => {
    const small = await startHttpServer({ port: 0, store: fleet.store, engine: fleet.engine, token: fleet.token, maxSseClients: 2 });
    try {
      const a = new AbortController();
      const first = await fetch(`${small.url}/api/events`, { signal: a.signal });
      const second = await fetch(`${small.url}/api/events`, { signal: a.signal });
      expect([first.status, second.status]).toEqual([200, 200]);
      expect((await fetch(`${small.url}/api/events`)).status).toBe(503);
      const reader = first.body!.getReader();
      let text = '';
      const read = (async () => {
        while (!text.includes('event: change')) text += new TextDecoder().decode((await reader.read()).value);
      })();
      await fleet.report('sensor-040', 'downloading');
      await read;
      expect(text).toMatch(/event: change\ndata: \{"kinds":\["device"/);
      expect(text).toContain('sensor-040');
      a.abort();
    } finally {
      await small.close();
    }
  });
});

describe('operator token', () => {
  it('matches only the exact token, as a Bearer credential', () => {
    expect(authorized('Bearer abcdefghijklmnop', 'abcdefghijklmnop')).toBe(true);
    expect(authorized('bearer abcdefghijklmnop', 'abcdefghijklmnop')).toBe(true);
    expect(authorized('Bearer abcdefghijklmno', 'abcdefghijklmnop')).toBe(false);
    expect(authorized('Basic abcdefghijklmnop', 'abcdefghijklmnop')).toBe(false);
    expect(authorized(undefined, 'abcdefghijklmnop')).toBe(false);
  });
});
