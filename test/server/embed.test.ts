/**
 * startFileServer embedded in someone else's program: resources of its own
 * routed before the files, their links in /.well-known/core, an injected
 * runtime driving every timer (here a fake one), an injected transport, and
 * the routing handler mounted on an endpoint the caller owns.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Code, ContentFormat, parseLinks, pathOptions } from 'coapfw/codec';
import { resourceTable, startFileServer, type FileServer, type Resource } from 'coapfw/server';
import { FakeRuntime, MemNetwork } from 'coapfw/testing';
import { CoapEndpoint } from 'coapfw/messaging';

const SERVER = { address: '10.0.0.1', port: 5683 };
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const answer = (payload: string): Resource => ({ methods: new Set([Code.GET]), handle: () => ({ code: Code.CONTENT, payload: text(payload) }) });

let dir: string;
let rt: FakeRuntime;
let net: MemNetwork;
let client: CoapEndpoint;
let server: FileServer | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-embed-'));
  await writeFile(join(dir, 'a.bin'), 'file a');
  rt = new FakeRuntime(3);
  net = new MemNetwork();
  client = new CoapEndpoint(net.endpoint('10.0.0.2', 40000), { runtime: rt });
});
afterEach(async () => {
  await client.close();
  await server?.close();
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function get(path: string, code: number = Code.GET, payload?: Uint8Array): Promise<{ code: number; body: string }> {
  const res = await client.request(SERVER, { code, options: pathOptions(path), payload });
  return { code: res.code, body: new TextDecoder().decode(res.payload) };
}

describe('startFileServer, embedded', () => {
  it('routes its own resources before the files, lists their links, and still serves the files', async () => {
    server = await startFileServer({
      dir,
      transport: net.endpoint(SERVER.address, SERVER.port),
      runtime: rt,
      refreshMs: 0,
      resources: resourceTable({ 'gw/info': answer('gateway 1'), 'files/a.bin': answer('shadowed') }),
      links: [{ target: '/gw/info', attributes: { rt: 'gw.info', ct: String(ContentFormat.TEXT_PLAIN) } }],
    });
    expect(await get('/gw/info')).toEqual({ code: Code.CONTENT, body: 'gateway 1' });
    expect((await get('/files/a.bin')).body).toBe('shadowed');
    const links = parseLinks((await get('/.well-known/core')).body);
    expect(links[0]).toEqual({ target: '/gw/info', attributes: { rt: 'gw.info', ct: String(ContentFormat.TEXT_PLAIN) } });
    expect(links.some((l) => l.target === '/files/a.bin')).toBe(true);
    expect((await get('/gw/info', Code.DELETE)).code).toBe(Code.METHOD_NOT_ALLOWED);
    expect((await get('/gw/other')).code).toBe(Code.NOT_FOUND);
  });

  it('a resolver that answers undefined leaves the path to the file resources', async () => {
    server = await startFileServer({ dir, transport: net.endpoint(SERVER.address, SERVER.port), runtime: rt, refreshMs: 0, resources: (path) => (path[0] === 'dyn' ? answer(path.join('/')) : undefined) });
    expect((await get('/dyn/x/y')).body).toBe('dyn/x/y');
    expect((await get('/files/a.bin')).body).toBe('file a');
  });

  it('runs its timers on the injected runtime: the directory is rescanned when the fake clock says so', async () => {
    server = await startFileServer({ dir, transport: net.endpoint(SERVER.address, SERVER.port), runtime: rt, refreshMs: 5000 });
    await writeFile(join(dir, 'b.bin'), 'file b');
    expect((await get('/files/b.bin')).code).toBe(Code.NOT_FOUND);
    rt.advance(4999);
    expect(server.repo.list()).toHaveLength(1);
    rt.advance(1);
    for (let i = 0; i < 200 && server.repo.list().length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    expect((await get('/files/b.bin')).body).toBe('file b');
    // Reports are stamped with the injected clock too.
    expect((await get('/status/dev-1', Code.POST, text('{"result":"installed"}'))).code).toBe(Code.CREATED);
    expect(server.status.get('dev-1')?.at).toBe(rt.now());
    const pending = rt.pendingTimers;
    await server.close();
    expect(rt.pendingTimers).toBeLessThan(pending); // the rescan timer is cleared on close
  });

  it('exposes its routing handler for an endpoint the caller owns', async () => {
    server = await startFileServer({ dir, transport: net.endpoint('10.0.0.9', 1), runtime: rt, refreshMs: 0, resources: resourceTable({ ping: answer('pong') }) });
    const mine = new CoapEndpoint(net.endpoint(SERVER.address, SERVER.port), { runtime: rt });
    mine.handle(server.handler);
    try {
      expect((await get('/ping')).body).toBe('pong');
      expect((await get('/files/a.bin')).body).toBe('file a');
    } finally {
      await mine.close();
    }
  });

  it('refuses resource tables that name no usable path, before binding anything', () => {
    expect(() => resourceTable({ '': answer('x') })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => resourceTable({ 'a/../b': answer('x') })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', path: 'a/../b' }));
    expect(() => resourceTable({ a: { handle: () => ({ code: Code.CONTENT }) } as unknown as Resource })).toThrow(/methods/);
  });
});
