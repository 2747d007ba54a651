/**
 * Errors carry the data a program acts on (peer, path, block, responseCode,
 * maxAge) where they are thrown: the message layer, the transports, the
 * client, the download sink, the PSK store, and the server's error mapping.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoapfwError } from '../../src/errors.js';
import { encodeBlock } from '../../src/codec/block.js';
import { decodeMessage, encodeMessage } from '../../src/codec/message.js';
import { Code, MessageType, OptionNumber } from '../../src/codec/numbers.js';
import { decodeUint, getOption, pathOptions } from '../../src/codec/options.js';
import { CoapEndpoint } from '../../src/messaging/endpoint.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { MemNetwork, flush } from '../../src/testing/mem-transport.js';
import { UdpTransport } from '../../src/transport/udp.js';
import { PskStore } from '../../src/transport/dtls/psk-store.js';
import { connectDtls } from '../../src/transport/dtls/client.js';
import { openClient } from '../../src/client/open.js';
import { FileSink } from '../../src/client/file-sink.js';
import { toResponse } from '../../src/server/responses.js';
import { nodeCoapHandler } from '../../src/server/node-coap-adapter.js';
import { resourceTable } from '../../src/server/router.js';

const SERVER = { address: '10.0.0.1', port: 5683 };
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-errfields-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown>): Promise<CoapfwError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(CoapfwError);
    return e as CoapfwError;
  }
  throw new Error('expected a rejection');
}

describe('error fields', () => {
  it('a request that times out names the peer, the Uri-Path and the block (RFC 7959 §2.2)', async () => {
    const net = new MemNetwork();
    const rt = new FakeRuntime(1, 0);
    net.filter = () => false; // nothing arrives
    const client = new CoapEndpoint(net.endpoint('10.0.0.2', 40000), { runtime: rt });
    const p = rejection(client.request({ ...SERVER, extra: 'x' } as typeof SERVER, { code: Code.GET, options: [...pathOptions('/fw/sha256/ab'), { number: OptionNumber.BLOCK2, value: encodeBlock({ num: 700, more: false, szx: 6 }) }] }));
    for (let i = 0; i < 10; i++) {
      rt.advance(60_000);
      await flush();
    }
    const e = await p;
    expect(e).toMatchObject({ code: 'TIMEOUT', peer: SERVER, path: '/fw/sha256/ab', block: 700 });
    expect(Object.keys(e.peer!)).toEqual(['address', 'port']);
    await client.close();
  });

  it('a request rejected with RST and a ping without answer name the peer', async () => {
    const net = new MemNetwork();
    const rt = new FakeRuntime(1, 0);
    const client = new CoapEndpoint(net.endpoint('10.0.0.2', 40000), { runtime: rt });
    // A peer that rejects every CON with RST (RFC 7252 §4.2).
    const server = net.endpoint(SERVER.address, SERVER.port);
    server.onMessage((data, from) => {
      const m = decodeMessage(data);
      void server.send(encodeMessage({ type: MessageType.RST, code: Code.EMPTY, messageId: m.messageId, token: new Uint8Array(0), options: [], payload: new Uint8Array(0) }), from);
    });
    const reset = await rejection(client.request(SERVER, { code: Code.GET, options: pathOptions('/x') }));
    expect(reset).toMatchObject({ code: 'RESET', peer: SERVER, path: '/x', block: undefined });
    net.filter = () => false;
    const ping = rejection(client.ping(SERVER));
    for (let i = 0; i < 10; i++) {
      rt.advance(60_000);
      await flush();
    }
    expect(await ping).toMatchObject({ code: 'TIMEOUT', peer: SERVER });
    await client.close();
  });

  it('a UDP send that fails and a send on a closed transport name the peer', async () => {
    const udp = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
    const bad = { address: '::1', port: 9 }; // an IPv6 destination from an IPv4 socket
    expect(await rejection(udp.send(new Uint8Array(1), bad))).toMatchObject({ code: 'IO_ERROR', peer: bad });
    await udp.close();
    expect(await rejection(udp.send(new Uint8Array(1), { address: '127.0.0.1', port: 9 }))).toMatchObject({ code: 'TRANSPORT_CLOSED', peer: { address: '127.0.0.1', port: 9 } });
  });

  it('a DTLS handshake that never completes names the server', async () => {
    const silent = await UdpTransport.bind({ host: '127.0.0.1', port: 0 }); // never answers
    try {
      const e = await rejection(connectDtls({ host: '127.0.0.1', port: silent.address().port, identity: 'id', key: new Uint8Array(16), retries: 0, handshakeTimeoutMs: 150 }));
      expect(e).toMatchObject({ code: 'DTLS_HANDSHAKE_FAILED', peer: { address: '127.0.0.1', port: silent.address().port } });
    } finally {
      await silent.close();
    }
  });

  it('openClient names the URI it could not use', async () => {
    const uri = 'coaps://127.0.0.1:5684/fw/x';
    expect(await rejection(openClient(uri))).toMatchObject({ code: 'BAD_URI', path: uri });
    const unresolvable = 'coap://no-such-host.invalid/x';
    expect(await rejection(openClient(unresolvable))).toMatchObject({ code: 'BAD_URI', path: unresolvable });
  });

  it('the file sink and the PSK store name the file', async () => {
    const out = join(dir, 'missing-dir', 'x.bin');
    const sink = new FileSink(out);
    expect(await rejection(sink.begin(0))).toMatchObject({ code: 'IO_ERROR', path: `${out}.part` });
    const psk = join(dir, 'psk.txt');
    expect(await rejection(PskStore.fromFile(psk))).toMatchObject({ code: 'IO_ERROR', path: psk });
    await writeFile(psk, 'dev-1 zz\n');
    expect(await rejection(PskStore.fromFile(psk))).toMatchObject({ code: 'INVALID_ARGUMENT', path: psk });
  });
});

describe('node-coap adapter', () => {
  it('reports a response it could not send with the client and the path', async () => {
    const errors: CoapfwError[] = [];
    const listener = nodeCoapHandler(resourceTable({ 'fw/x': { methods: new Set([Code.GET]), handle: () => ({ code: Code.CONTENT }) } }), { onError: (e) => void errors.push(e) });
    const res = { code: undefined as string | undefined, statusCode: undefined as string | undefined, setOption: () => res, end: () => undefined };
    const req = { code: '0.01', options: [{ name: 'Uri-Path', value: Buffer.from('fw') }, { name: 'Uri-Path', value: Buffer.from('x') }], rsinfo: { address: '192.0.2.7', port: 40001 } };
    expect(listener(req, res)).toBe(true);
    for (let i = 0; i < 20 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(errors[0]).toMatchObject({ code: 'NODE_COAP_UNSUPPORTED', peer: { address: '192.0.2.7', port: 40001 }, path: '/fw/x' });
  });
});

describe('toResponse: the server answers with what the error says', () => {
  it('uses responseCode when it is a 4.xx or 5.xx, else the code mapped from `code`', () => {
    expect(toResponse(new CoapfwError('INVALID_ARGUMENT', 'x', { responseCode: Code.UNPROCESSABLE_ENTITY })).code).toBe(Code.UNPROCESSABLE_ENTITY);
    expect(toResponse(new CoapfwError('INVALID_ARGUMENT', 'x', { responseCode: Code.CONTENT })).code).toBe(Code.BAD_REQUEST);
    expect(toResponse(new CoapfwError('UPDATE_FAILED', 'x', { responseCode: Code.SERVICE_UNAVAILABLE })).code).toBe(Code.SERVICE_UNAVAILABLE);
    expect(toResponse(new CoapfwError('UPDATE_FAILED', 'x'))).toEqual({ code: Code.INTERNAL_SERVER_ERROR });
    expect(toResponse(new Error('secret detail'))).toEqual({ code: Code.INTERNAL_SERVER_ERROR });
  });

  it('turns maxAge into Max-Age (RFC 7252 §5.10.5), and ignores one that cannot be encoded', () => {
    const busy = toResponse(new CoapfwError('LIMIT_EXCEEDED', 'busy', { maxAge: 30 }));
    expect(busy.code).toBe(Code.SERVICE_UNAVAILABLE);
    expect(decodeUint(getOption({ options: busy.options ?? [] } as never, OptionNumber.MAX_AGE)!)).toBe(30);
    expect(new TextDecoder().decode(busy.payload)).toBe('busy');
    expect(toResponse(new CoapfwError('LIMIT_EXCEEDED', 'busy', { maxAge: -1 })).options).toBeUndefined();
    expect(toResponse(new CoapfwError('LIMIT_EXCEEDED', 'busy', { maxAge: 2 ** 32 })).options).toBeUndefined();
  });
});
