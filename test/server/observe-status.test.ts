import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { decodeMessage, encodeMessage, type CoapMessage } from '../../src/codec/message.js';
import { Code, ContentFormat, MessageType, OptionNumber } from '../../src/codec/numbers.js';
import { encodeBlock } from '../../src/codec/block.js';
import { decodeUint, encodeUint, getOption, pathOptions } from '../../src/codec/options.js';
import { CoapEndpoint } from '../../src/messaging/endpoint.js';
import { fileResources } from '../../src/server/file-server.js';
import { FileRepository } from '../../src/server/files.js';
import { ObserveRegistry } from '../../src/server/observe.js';
import { routeRequests } from '../../src/server/router.js';
import { StatusTracker } from '../../src/server/status.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { MemNetwork, flush } from '../../src/testing/mem-transport.js';

const SERVER = { address: '10.0.0.1', port: 5683 };
let dir: string;
let repo: FileRepository;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-obs-'));
  await writeFile(join(dir, 'manifest.suit'), 'v1');
  repo = await FileRepository.open(dir);
});
afterEach(async () => {
  await repo.close();
  await rm(dir, { recursive: true, force: true });
});

function setup(maxObservers?: number) {
  const net = new MemNetwork();
  const rt = new FakeRuntime(9);
  const observe = new ObserveRegistry({ maxObservers });
  const status = new StatusTracker({ runtime: rt, maxDevices: 2 });
  const server = new CoapEndpoint(net.endpoint(SERVER.address, SERVER.port), { runtime: rt });
  server.handle(routeRequests(fileResources(repo, { observe, status })));
  const clientT = net.endpoint('10.0.0.2', 40000);
  const client = new CoapEndpoint(clientT, { runtime: rt });
  return { net, rt, observe, status, client, clientT };
}

describe('Observe on files (RFC 7641)', () => {
  it('registers with Observe 0, notifies with a rising sequence number when the file changes', async () => {
    const { net, observe, client } = setup();
    const first = await client.request(SERVER, { code: Code.GET, options: [{ number: OptionNumber.OBSERVE, value: new Uint8Array() }, ...pathOptions('/files/manifest.suit')] });
    expect(new TextDecoder().decode(first.payload)).toBe('v1');
    const seq1 = decodeUint(getOption(first, OptionNumber.OBSERVE)!);
    expect(observe.size).toBe(1);
    const token = net.log[0]!.data.subarray(4, 12);
    await writeFile(join(dir, 'manifest.suit'), 'version 2!');
    await repo.refresh();
    // The notification reads the new file from disk: wait (bounded) for it.
    const notes = (): CoapMessage[] => net.log.slice(2).filter((l) => l.from.port === SERVER.port).map((l) => decodeMessage(l.data));
    for (let i = 0; i < 200 && !notes().some((m) => m.type === MessageType.CON); i++) await new Promise((r) => setTimeout(r, 5));
    const note = notes().find((m) => m.type === MessageType.CON)!;
    expect(note).toBeDefined();
    expect(note.token).toEqual(new Uint8Array(token));
    expect(new TextDecoder().decode(note.payload)).toBe('version 2!');
    expect(decodeUint(getOption(note, OptionNumber.OBSERVE)!)).toBeGreaterThan(seq1);
    // Our client endpoint no longer waits for that token: it answers the CON notification with RST, ending the observation.
    for (let i = 0; i < 200 && observe.size > 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(observe.size).toBe(0);
  });

  it('bounds registrations', async () => {
    const { observe, client } = setup(1);
    for (let i = 0; i < 3; i++) {
      await client.request(SERVER, { code: Code.GET, options: [{ number: OptionNumber.OBSERVE, value: new Uint8Array() }, ...pathOptions('/files/manifest.suit')] });
    }
    expect(observe.size).toBe(1);
  });

  it('deregisters with Observe 1', async () => {
    const { observe, client, net } = setup();
    await client.request(SERVER, { code: Code.GET, options: [{ number: OptionNumber.OBSERVE, value: new Uint8Array() }, ...pathOptions('/files/manifest.suit')] });
    expect(observe.size).toBe(1);
    // A deregistration must carry the same token: send it raw.
    const reg = net.log.find((l) => l.from.port === 40000)!;
    const token = decodeMessage(reg.data).token;
    net.nodes.get('10.0.0.2:40000')!.send(
      encodeMessage({ type: MessageType.CON, code: Code.GET, messageId: 999, token, options: [{ number: OptionNumber.OBSERVE, value: encodeUint(1) }, ...pathOptions('/files/manifest.suit')], payload: new Uint8Array() }),
      SERVER,
    );
    await flush();
    expect(observe.size).toBe(0);
  });
});

describe('Observe: a change while a notification is in flight (RFC 7641 §4.5)', () => {
  it('is sent once the in-flight confirmable notification is acknowledged', async () => {
    const { net } = setup();
    const raw = net.endpoint('10.0.0.3', 4);
    const got: CoapMessage[] = [];
    raw.onMessage((d) => {
      const m = decodeMessage(d);
      // Like any CoAP endpoint, answer a ping (§4.3) with RST: that is how the server verifies a new observer's address.
      if (m.type === MessageType.CON && m.code === 0) raw.send(encodeMessage({ type: MessageType.RST, code: 0, messageId: m.messageId, token: new Uint8Array(), options: [], payload: new Uint8Array() }), SERVER);
      else got.push(m);
    });
    const until = async (cond: () => boolean) => {
      for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
    };
    const cons = () => got.filter((m) => m.type === MessageType.CON);
    raw.send(
      encodeMessage({ type: MessageType.NON, code: Code.GET, messageId: 1, token: Uint8Array.of(7), options: [{ number: OptionNumber.OBSERVE, value: new Uint8Array() }, ...pathOptions('/files/manifest.suit')], payload: new Uint8Array() }),
      SERVER,
    );
    await until(() => got.length === 1);
    expect(new TextDecoder().decode(got[0]!.payload)).toBe('v1');
    await writeFile(join(dir, 'manifest.suit'), 'version 2');
    await repo.refresh();
    await until(() => cons().length === 1);
    const v2 = cons()[0]!;
    expect(new TextDecoder().decode(v2.payload)).toBe('version 2');
    // Changed again while the v2 notification is still un-ACKed: nothing new yet (one CON in flight)...
    await writeFile(join(dir, 'manifest.suit'), 'version three');
    await repo.refresh();
    await flush();
    expect(cons()).toHaveLength(1);
    // ...and the latest state follows the ACK.
    raw.send(encodeMessage({ type: MessageType.ACK, code: 0, messageId: v2.messageId, token: new Uint8Array(), options: [], payload: new Uint8Array() }), SERVER);
    await until(() => cons().length === 2);
    const last = cons()[1]!;
    expect(new TextDecoder().decode(last.payload)).toBe('version three');
    expect(last.token).toEqual(Uint8Array.of(7));
    expect(decodeUint(getOption(last, OptionNumber.OBSERVE)!)).toBeGreaterThan(decodeUint(getOption(v2, OptionNumber.OBSERVE)!));
  });
});

describe('Observe on content-addressed URIs', () => {
  it('/fw/sha256/<hex> is immutable: not observable, never notified when the path changes', async () => {
    const { net, observe, client } = setup();
    const h1 = repo.byRelativePath('manifest.suit')!.sha256;
    const first = await client.request(SERVER, { code: Code.GET, options: [{ number: OptionNumber.OBSERVE, value: new Uint8Array() }, ...pathOptions(`/fw/sha256/${h1}`)] });
    expect(first.code).toBe(Code.CONTENT);
    expect(new TextDecoder().decode(first.payload)).toBe('v1');
    // §3.2: a response without Observe tells the client it was not registered.
    expect(getOption(first, OptionNumber.OBSERVE)).toBeUndefined();
    expect(observe.size).toBe(0);
    await writeFile(join(dir, 'manifest.suit'), 'version 2!');
    expect(await repo.refresh()).toEqual(['manifest.suit']);
    await flush();
    const fromServer = net.log.filter((l) => l.from.port === SERVER.port).map((l) => decodeMessage(l.data));
    expect(fromServer.filter((m) => m.type === MessageType.CON)).toHaveLength(0);
    expect(observe.notificationsSent).toBe(0);
  });
});

describe('status tracker', () => {
  it('accepts JSON and CBOR reports and lists them', async () => {
    const { client, status } = setup();
    const post = (id: string, payload: Uint8Array, cf: number) =>
      client.request(SERVER, { code: Code.POST, options: [...pathOptions(`/status/${id}`), { number: OptionNumber.CONTENT_FORMAT, value: encodeUint(cf) }], payload });
    expect((await post('dev-1', new TextEncoder().encode('{"state":"installed","seq":7}'), ContentFormat.JSON)).code).toBe(Code.CREATED);
    expect((await post('dev-1', new TextEncoder().encode('{"state":"confirmed","seq":7}'), ContentFormat.JSON)).code).toBe(Code.CHANGED);
    // CBOR {"state": "failed"}
    const cbor = Uint8Array.from([0xa1, 0x65, ...new TextEncoder().encode('state'), 0x66, ...new TextEncoder().encode('failed')]);
    expect((await post('dev-2', cbor, ContentFormat.CBOR)).code).toBe(Code.CREATED);
    expect(status.get('dev-1')!.report).toEqual({ state: 'confirmed', seq: 7 });
    expect(status.get('dev-1')!.reports).toBe(2);
    const list = await client.request(SERVER, { code: Code.GET, options: pathOptions('/status') });
    expect(JSON.parse(new TextDecoder().decode(list.payload)).map((d: { device: string }) => d.device)).toEqual(['dev-1', 'dev-2']);
  });

  it('rejects bad reports and bad ids, and bounds the device table', async () => {
    const { client, status } = setup();
    const post = (id: string, body: string) => client.request(SERVER, { code: Code.POST, options: pathOptions(`/status/${id}`), payload: new TextEncoder().encode(body) });
    expect((await post('d', 'not json')).code).toBe(Code.BAD_REQUEST);
    expect((await post('d', '[1,2]')).code).toBe(Code.BAD_REQUEST);
    expect((await post('d', `{"x":"${'a'.repeat(600)}"}`)).code).toBe(Code.REQUEST_ENTITY_TOO_LARGE);
    expect((await post('bad id!', '{}')).code).toBe(Code.BAD_REQUEST);
    for (const id of ['a', 'b', 'c']) await post(id, '{}');
    expect(status.list().map((s) => s.device)).toEqual(['b', 'c']);
  });
});

describe('cached documents: /status and /.well-known/core are not rebuilt per block request', () => {
  const getMsg = (path: string, block?: number, query?: string): CoapMessage => ({
    type: MessageType.CON,
    code: Code.GET,
    messageId: 1,
    token: Uint8Array.of(1),
    options: [
      ...pathOptions(path),
      ...(query === undefined ? [] : [{ number: OptionNumber.URI_QUERY, value: new TextEncoder().encode(query) }]),
      ...(block === undefined ? [] : [{ number: OptionNumber.BLOCK2, value: encodeBlock({ num: block, more: false, szx: 2 }) }]),
    ],
    payload: new Uint8Array(),
  });
  const peer = { address: '10.0.0.9', port: 9 };
  const etagOf = (m: { options?: readonly { number: number; value: Uint8Array }[] }) => Buffer.from(m.options!.find((o) => o.number === OptionNumber.ETAG)!.value).toString('hex');

  it('/status keeps one ETag for a block-wise transfer and rebuilds at most every listRebuildMs, from block 0', async () => {
    const rt = new FakeRuntime(3);
    const status = new StatusTracker({ runtime: rt, listRebuildMs: 1000 });
    for (let i = 0; i < 20; i++) status.record(`dev-${i}`, { state: 'downloading', seq: i }, 'peer');
    const list = status.resource(undefined);
    const block = async (n: number) => list.handle({ message: getMsg('/status', n), peer });
    const e1 = etagOf(await block(0));
    for (let n = 1; n <= 10; n++) expect(etagOf(await block(n))).toBe(e1);
    expect(status.listBuilds).toBe(1);
    status.record('dev-new', { state: 'failed' }, 'peer');
    expect(etagOf(await block(3))).toBe(e1); // mid-transfer: same representation
    expect(etagOf(await block(0))).toBe(e1); // within listRebuildMs of the last build
    rt.advance(1000);
    expect(etagOf(await block(4))).toBe(e1); // not a first block
    expect(status.listBuilds).toBe(1);
    const first = await block(0);
    const e2 = etagOf(first);
    expect(e2).not.toBe(e1);
    expect(status.listBuilds).toBe(2);
    // The new document is complete and consistent: every block under e2, and it lists the new device.
    const size = decodeUint(first.options!.find((o) => o.number === OptionNumber.SIZE2)!.value);
    const parts: Uint8Array[] = [first.payload!];
    for (let n = 1; n * 64 < size; n++) {
      const r = await block(n);
      expect(etagOf(r)).toBe(e2);
      parts.push(r.payload!);
    }
    const doc = JSON.parse(Buffer.concat(parts).toString('utf8')) as { device: string }[];
    expect(doc.map((d) => d.device)).toContain('dev-new');
    // Nothing new reported: no rebuild however long it has been.
    rt.advance(60_000);
    await block(0);
    expect(status.listBuilds).toBe(2);
  });

  it('/.well-known/core is built once per repository change (and per query)', async () => {
    const list = vi.spyOn(repo, 'list');
    const resolve = fileResources(repo, { status: new StatusTracker({ runtime: new FakeRuntime(4) }) });
    const core = (block?: number, query?: string) => resolve(['.well-known', 'core'], getMsg('/.well-known/core', block, query))!.handle({ message: getMsg('/.well-known/core', block, query), peer });
    const text = async (block?: number, query?: string) => new TextDecoder().decode((await core(block, query)).payload);
    expect(await text()).toContain('</files/manifest.suit>');
    const builds = list.mock.calls.length;
    expect(builds).toBeGreaterThan(0);
    for (let i = 0; i < 10; i++) await core(0);
    expect(await text(undefined, 'rt=coapfw.status')).toBe('</status>;rt="coapfw.status";ct=50');
    expect(await text(undefined, 'rt=coapfw.status')).toBe('</status>;rt="coapfw.status";ct=50');
    expect(list.mock.calls.length).toBe(builds);
    await writeFile(join(dir, 'new.bin'), 'new');
    await repo.refresh();
    expect(await text()).toContain('</files/new.bin>');
    expect(list.mock.calls.length).toBeGreaterThan(builds);
    list.mockRestore();
  });
});
