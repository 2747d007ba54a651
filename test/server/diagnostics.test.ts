/**
 * The coapfw:* diagnostics channels: a request and its response with the
 * code, a handler that throws reaching coapfw:error (router and endpoint
 * paths alike) as well as its 5.00, and nothing built while nobody listens.
 * NODE_DEBUG=coapfw prints the channels (a child process shows it).
 */
import { spawnSync } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { Code } from '../../src/codec/numbers.js';
import { pathOptions } from '../../src/codec/options.js';
import { diagnostics } from '../../src/diagnostics.js';
import { CoapEndpoint } from '../../src/messaging/endpoint.js';
import { resourceTable, routeRequests } from '../../src/server/router.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { MemNetwork } from '../../src/testing/mem-transport.js';

const seen: Array<[string, Record<string, unknown>]> = [];
const subs: Array<[string, (m: unknown) => void]> = [];
function listen(...names: string[]): void {
  for (const name of names) {
    const fn = (m: unknown): void => void seen.push([name, m as Record<string, unknown>]);
    subscribe(`coapfw:${name}`, fn);
    subs.push([`coapfw:${name}`, fn]);
  }
}
afterEach(() => {
  for (const [n, fn] of subs.splice(0)) unsubscribe(n, fn);
  seen.length = 0;
});

async function pair(handler: Parameters<CoapEndpoint['handle']>[0]) {
  const runtime = new FakeRuntime();
  const net = new MemNetwork();
  const server = new CoapEndpoint(net.endpoint('10.0.0.1', 5683), { runtime, amplification: false });
  const client = new CoapEndpoint(net.endpoint('10.0.0.2', 40000), { runtime });
  server.handle(handler);
  const ask = (path: string) => client.request({ address: '10.0.0.1', port: 5683 }, { code: Code.GET, options: pathOptions(path) });
  return { ask, runtime };
}

const boom = new Error('handler bug');
const table = resourceTable({
  ok: { methods: new Set([Code.GET]), handle: () => ({ code: Code.CONTENT }) },
  throws: { methods: new Set([Code.GET]), handle: () => { throw boom; } },
  rejects: { methods: new Set([Code.GET]), handle: () => Promise.reject(boom) },
});

describe('diagnostics channels', () => {
  it('request and response, with the code and the time taken', async () => {
    listen('request', 'response');
    const { ask } = await pair(routeRequests(table));
    expect((await ask('/ok')).code).toBe(Code.CONTENT);
    expect(seen.map(([n, m]) => [n, m.path, m.code])).toEqual([
      ['request', '/ok', undefined],
      ['response', '/ok', Code.CONTENT],
    ]);
    expect(seen[1]![1].ms).toBeGreaterThanOrEqual(0);
  });

  it('a handler that throws or rejects: a 5.00 to the client and the error on coapfw:error', async () => {
    listen('error');
    const { ask } = await pair(routeRequests(table));
    expect((await ask('/throws')).code).toBe(Code.INTERNAL_SERVER_ERROR);
    expect((await ask('/rejects')).code).toBe(Code.INTERNAL_SERVER_ERROR);
    expect(seen.map(([, m]) => [m.where, m.error])).toEqual([
      ['handler', boom],
      ['handler', boom],
    ]);
    // A handler mounted on the endpoint without the router: the endpoint's own 5.00 path says it too.
    const raw = await pair(() => {
      throw boom;
    });
    expect((await raw.ask('/x')).code).toBe(Code.INTERNAL_SERVER_ERROR);
    expect(seen.at(-1)![1]).toMatchObject({ where: 'endpoint: handler threw', error: boom });
  });

  it('a 4.04 is the client\'s problem, not an error', async () => {
    listen('error');
    const { ask } = await pair(routeRequests(table));
    expect((await ask('/nothing')).code).toBe(Code.NOT_FOUND);
    expect(seen).toEqual([]);
  });

  it('nobody listening: the channels say so, and the router takes its untraced path', () => {
    expect(diagnostics.request.hasSubscribers).toBe(false);
    expect(diagnostics.response.hasSubscribers).toBe(false);
  });

  it('NODE_DEBUG=coapfw prints what is published', () => {
    // The built module (npm test builds first): Node 20 runs no TypeScript.
    const script = `import { publish } from './dist/src/diagnostics.js'; publish('rollout', () => ({ rolloutId: 7, step: 'paused' }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, NODE_DEBUG: 'coapfw' }, encoding: 'utf8', cwd: `${import.meta.dirname}/../..` });
    expect(r.stderr).toMatch(/COAPFW \d+: rollout \{"rolloutId":7,"step":"paused"\}/);
  });
});
