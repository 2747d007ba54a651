/**
 * The server's trust resources: the chain, the newest revocation list and
 * the coaps-only revocation sequence, from the files of DIR/.trust/, from a
 * source of one's own, and from the update service's store (SQLite).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fetchAll } from '../../src/blockwise/fetch.js';
import { decodeMessage } from '../../src/codec/message.js';
import { parseLinks } from '../../src/codec/link-format.js';
import { Code, MessageType, OptionNumber } from '../../src/codec/numbers.js';
import { pathOptions } from '../../src/codec/options.js';
import { openClient } from '../../src/client/open.js';
import { CoapEndpoint } from '../../src/messaging/endpoint.js';
import { startFileServer, type FileServer } from '../../src/server/serve.js';
import { storeTrustSource, type TrustDocuments } from '../../src/server/trust-source.js';
import { openStore } from '../../src/service/open.js';
import { decodeCbor } from '../../src/suit/cbor.js';
import { createOwnerTransfer } from '../../src/suit/owner.js';
import { createRevocationList } from '../../src/suit/revocation.js';
import { decodeTrustChain, walkTrustChain } from '../../src/suit/trust-chain.js';
import { createTrustUpdate } from '../../src/suit/trust-update.js';
import { DEFAULT_SUIT_LIMITS } from '../../src/suit/limits.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { MemNetwork } from '../../src/testing/mem-transport.js';
import { parsePskKey, PskStore } from '../../src/transport/dtls/psk-store.js';
import { K, anchors, appRole, boardSet, boardState, radioRole } from '../suit/trust-helpers.js';

const SERVER = { address: '10.0.0.1', port: 5683 };
const v1 = boardState();
const set2 = { ...boardSet(2), anchors: [...v1.anchors.filter((a) => a.name !== 'a1'), ...anchors('a2')], roles: v1.roles.map((r) => (r.name === 'radio' ? radioRole(['a2']) : r)) };
const rot2 = createTrustUpdate(set2, [K.a1, K.a2]);
const set3 = { ...set2, version: 3, anchors: [...set2.anchors.filter((a) => a.name !== 'b1'), ...anchors('b2')], roles: set2.roles.map((r) => (r.name === 'app' ? appRole(['b2']) : r)) };
const rot3 = createTrustUpdate(set3, [K.b1, K.b2]);
const transfer4 = createOwnerTransfer({ version: 4, source: 'coaps://fw.example.com/board2' }, K.owner);
const list = (n: number) => createRevocationList({ sequence: n, revoked: [K.stranger.publicKey] }, [K.t1, K.t3]);

let dir: string;
let server: FileServer | undefined;
let net: MemNetwork;
let client: CoapEndpoint;
let rt: FakeRuntime;
const errors: string[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-trust-srv-'));
  await mkdir(join(dir, '.trust'));
  rt = new FakeRuntime(5);
  net = new MemNetwork();
  client = new CoapEndpoint(net.endpoint('10.0.0.2', 40000), { runtime: rt });
  errors.length = 0;
});
afterEach(async () => {
  await client.close();
  await server?.close();
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function start(extra: Partial<Parameters<typeof startFileServer>[0]> = {}): Promise<FileServer> {
  server = await startFileServer({ dir, transport: net.endpoint(SERVER.address, SERVER.port), runtime: rt, refreshMs: 0, onError: (e) => errors.push(String((e as Error).message)), ...extra });
  return server;
}

async function body(path: string): Promise<Uint8Array> {
  return (await fetchAll((spec, o) => client.request(SERVER, spec, o), { runtime: rt, options: pathOptions(path) })).data;
}

async function code(path: string): Promise<number> {
  return (await client.request(SERVER, { code: Code.GET, options: pathOptions(path) })).code;
}

const put = (name: string, bytes: Uint8Array | string) => writeFile(join(dir, '.trust', name), bytes);

describe('trust resources from DIR/.trust/', () => {
  it('serve the chain in version order (block-wise), the newest revocation list, and list them; a device walks the chain', async () => {
    await put('z-rotation-2.cftr', rot2);
    await put('a-transfer-4.cftr', transfer4);
    await put('m-rotation-3.cftr', rot3);
    await put('revocation-1.cftr', list(1));
    await put('revocation-2.cftr', list(2));
    await put('notes.txt', 'not a trust document');
    await put('revocation-9.cftr.tmp', list(9)); // being written: never read
    await start();
    const chain = await body('/trust/chain');
    expect(chain.length).toBeGreaterThan(1024); // more than one block
    expect(decodeTrustChain(chain).map((d) => Buffer.from(d).toString('hex'))).toEqual([rot2, rot3, transfer4].map((d) => Buffer.from(d).toString('hex')));
    expect(walkTrustChain(v1, decodeTrustChain(chain)).applied).toEqual([2, 3, 4]);
    expect(Buffer.from(await body('/trust/revocation')).equals(Buffer.from(list(2)))).toBe(true);
    expect(server!.trust!.served()).toEqual({ versions: [2, 3, 4], revocationSequence: 2 });
    expect(errors.some((e) => /notes\.txt/.test(e))).toBe(true);
    const links = parseLinks(new TextDecoder().decode(await body('/.well-known/core'))).map((l) => l.target);
    expect(links).toEqual(expect.arrayContaining(['/trust/chain', '/trust/revocation']));
    expect(links).not.toContain('/trust/revocation-seq');
  });

  it('with no documents: an empty chain, no revocation list (4.04); in the clear the sequence is refused (4.03)', async () => {
    await start();
    expect(decodeTrustChain(await body('/trust/chain'))).toEqual([]);
    expect(await code('/trust/revocation')).toBe(Code.NOT_FOUND);
    expect(await code('/trust/revocation-seq')).toBe(Code.FORBIDDEN);
    expect(await code('/trust/other')).toBe(Code.NOT_FOUND);
  });

  it('a new list is served after a reload, and an observer of /trust/revocation is notified', async () => {
    await put('revocation-1.cftr', list(1));
    await start();
    const reg = await client.request(SERVER, { code: Code.GET, options: [{ number: OptionNumber.OBSERVE, value: new Uint8Array() }, ...pathOptions('/trust/revocation')] });
    expect(reg.code).toBe(Code.CONTENT);
    expect(server!.observe.size).toBe(1);
    const before = net.log.length;
    await put('revocation-3.cftr', list(3));
    await server!.trust!.reload();
    expect(server!.trust!.served().revocationSequence).toBe(3);
    const notes = () => net.log.slice(before).filter((l) => l.from.port === SERVER.port).map((l) => decodeMessage(l.data)).filter((m) => m.type === MessageType.CON);
    for (let i = 0; i < 200 && notes().length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(Buffer.from(notes()[0]!.payload).equals(Buffer.from(list(3)))).toBe(true);
    // A reload that finds nothing new notifies nobody.
    const quiet = net.log.length;
    await server!.trust!.reload();
    expect(net.log.length).toBe(quiet);
  });

  it('two different documents for one version: the first is served and the conflict reported', async () => {
    const other2 = createTrustUpdate({ ...set2, roles: set2.roles.map((r) => (r.name === 'radio' ? radioRole(['a2', 'b1']) : r)) }, [K.a2]);
    await put('a.cftr', rot2);
    await put('b.cftr', other2);
    await start();
    expect(server!.trust!.served().versions).toEqual([2]);
    expect(errors.some((e) => /two different documents for trust version 2/.test(e))).toBe(true);
  });

  it('trust: false serves none', async () => {
    await start({ trust: false });
    expect(await code('/trust/chain')).toBe(Code.NOT_FOUND);
    expect(server!.trust).toBeUndefined();
  });
});

describe('trust resources from a source of one\'s own', () => {
  it('reload on the source\'s change events; a revocation list in the chain is left out and reported', async () => {
    let docs: TrustDocuments = { chain: [rot2, list(1)] };
    let notify = () => {};
    await start({ trust: { load: async () => docs, subscribe: (l) => ((notify = l), () => (notify = () => {})) } });
    expect(server!.trust!.served().versions).toEqual([2]);
    expect(errors.some((e) => /does not belong in the trust chain/.test(e))).toBe(true);
    docs = { chain: [rot2, rot3], revocation: list(5) };
    notify();
    for (let i = 0; i < 100 && server!.trust!.served().revocationSequence !== 5; i++) await new Promise((r) => setTimeout(r, 5));
    expect(server!.trust!.served()).toEqual({ versions: [2, 3], revocationSequence: 5 });
  });

  it('the update service\'s store (SQLite): published documents are served, a new one after its change event', async () => {
    const store = await openStore(':memory:');
    try {
      await store.publishTrustDocument({ kind: 'rotation', scope: '', version: 2, bytes: rot2, publisher: 'test' });
      await store.publishTrustDocument({ kind: 'transfer', scope: '', version: 4, bytes: transfer4, publisher: 'owner' });
      await store.publishTrustDocument({ kind: 'revocation', scope: '', version: 1, bytes: list(1), publisher: 'test' });
      await start({ trust: storeTrustSource(store) });
      expect(server!.trust!.served()).toEqual({ versions: [2, 4], revocationSequence: 1 });
      await store.publishTrustDocument({ kind: 'rotation', scope: '', version: 3, bytes: rot3, publisher: 'test' });
      await store.publishTrustDocument({ kind: 'revocation', scope: '', version: 2, bytes: list(2), publisher: 'test' });
      for (let i = 0; i < 100 && server!.trust!.served().revocationSequence !== 2; i++) await new Promise((r) => setTimeout(r, 5));
      expect(server!.trust!.served()).toEqual({ versions: [2, 3, 4], revocationSequence: 2 });
      expect(walkTrustChain(v1, decodeTrustChain(await body('/trust/chain'))).applied).toEqual([2, 3, 4]);
    } finally {
      await server?.close();
      server = undefined;
      await store.close();
    }
  });
});

describe('the revocation sequence over coaps', () => {
  it('answers inside DTLS with the served list\'s number, refuses in the clear', { timeout: 30_000 }, async () => {
    await put('revocation-7.cftr', list(7));
    const psk = '0x00112233445566778899aabbccddeeff';
    const s = await startFileServer({ dir, host: '127.0.0.1', port: 0, refreshMs: 0, secure: { psk: PskStore.fromEntries([['dev-1', parsePskKey(psk)]]), host: '127.0.0.1', port: 0 } });
    try {
      const secure = await openClient(`coaps://127.0.0.1:${s.dtls!.address().port}/`, { psk: { identity: 'dev-1', key: parsePskKey(psk) } });
      try {
        const r = await secure.request({ code: Code.GET, options: pathOptions('/trust/revocation-seq') });
        expect(r.code).toBe(Code.CONTENT);
        expect(decodeCbor(r.payload, DEFAULT_SUIT_LIMITS, 'seq')).toBe(7);
      } finally {
        await secure.close();
      }
      const plain = await openClient(`coap://127.0.0.1:${s.address().port}/`);
      try {
        expect((await plain.request({ code: Code.GET, options: pathOptions('/trust/revocation-seq') })).code).toBe(Code.FORBIDDEN);
        expect((await plain.request({ code: Code.GET, options: pathOptions('/trust/revocation') })).code).toBe(Code.CONTENT);
      } finally {
        await plain.close();
      }
    } finally {
      await s.close();
    }
  });
});
