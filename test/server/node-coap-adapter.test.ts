/**
 * The node-coap adapter: our stateless Block2 file handler mounted on a
 * node-coap server (coap 1.5), fetched by node-coap's Agent and by our own
 * client, including a transfer that starts at block 5 with a fresh token
 * (which plain node-coap answers with 4.02).
 */
import { createSocket, type Socket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as coap from 'coap';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchAll, fetchBlocks, type FetchedBlock } from '../../src/blockwise/fetch.js';
import { decodeBlock, encodeBlock } from '../../src/codec/block.js';
import { decodeMessage, encodeMessage } from '../../src/codec/message.js';
import { Code, codeToString, MessageType, OptionNumber } from '../../src/codec/numbers.js';
import { getOption, pathOptions } from '../../src/codec/options.js';
import { FileRepository } from '../../src/server/files.js';
import { nodeCoapFileHandler, sendNodeCoapResponse, toCoapMessage, type NodeCoapRequest } from '../../src/server/node-coap-adapter.js';
import type { CoapfwError } from '../../src/errors.js';
import { openClient, type CoapClient } from '../../src/client/open.js';
import { fixtureBytes, nodeCoapGet, sha256Hex } from '../../interop/helpers.js';

const SIZE = 10_000;
const content = fixtureBytes(SIZE, 42);

async function listen(server: coap.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => server.listen(0, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve())));
  return (server._sock as Socket).address().port;
}

/** The ETag option bytes on the wire of a single GET sent from a plain UDP socket. */
async function rawEtag(port: number, pathname: string): Promise<Buffer> {
  const sock = createSocket('udp4');
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no response')), 5000);
      sock.on('message', (data) => {
        clearTimeout(timer);
        const etag = getOption(decodeMessage(data), OptionNumber.ETAG);
        if (etag === undefined) reject(new Error('no ETag option'));
        else resolve(Buffer.from(etag));
      });
      const msg = encodeMessage({ type: MessageType.CON, code: Code.GET, messageId: 0x1234, token: Uint8Array.of(9), options: pathOptions(pathname), payload: new Uint8Array() });
      sock.send(msg, port, '127.0.0.1');
    });
  } finally {
    sock.close();
  }
}

describe('node-coap server with nodeCoapFileHandler', () => {
  let dir: string;
  let repo: FileRepository;
  let server: coap.Server;
  let plain: coap.Server;
  let port: number;
  let plainPort: number;
  let client: CoapClient;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coapfw-node-coap-adapter-'));
    await writeFile(join(dir, 'fw.bin'), content);
    repo = await FileRepository.open(dir);
    const ours = nodeCoapFileHandler(repo);
    server = coap.createServer((req, res) => {
      if (ours(req, res)) return;
      // The application's own routes keep working beside ours.
      res.code = req.url === '/hello' ? '2.05' : '4.04';
      res.end(req.url === '/hello' ? 'hello from the app' : 'app: not found');
    });
    port = await listen(server);
    // Plain node-coap with a stateless handler that hands over the requested slice: what the adapter replaces.
    plain = coap.createServer((req, res) => {
      const raw = (req as unknown as NodeCoapRequest).options?.find((o) => o.name === 'Block2')?.value;
      const { num, szx } = raw instanceof Uint8Array ? decodeBlock(raw) : { num: 0, szx: 6 };
      const size = 16 << szx;
      res.end(Buffer.from(content.subarray(num * size, (num + 1) * size)));
    });
    plainPort = await listen(plain);
    client = await openClient(`coap://127.0.0.1:${port}/files/fw.bin`);
  });

  afterAll(async () => {
    await client?.close();
    server?.close();
    plain?.close();
    await repo?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const fileOptions = (): CoapClient['options'] => client.options;

  it("node-coap's Agent fetches the whole file block-wise with the right SHA-256", async () => {
    const r = await nodeCoapGet('127.0.0.1', port, '/files/fw.bin');
    expect(r.code).toBe('2.05');
    expect(sha256Hex(r.payload)).toBe(sha256Hex(content));
    // Our ETag (a SHA-256 prefix), not node-coap's 2-byte XOR.
    const etag = Buffer.from(sha256Hex(content).slice(0, 16), 'hex');
    // node-coap's Agent hands the ETag over as UTF-8 text (lossy): compare through the same conversion...
    expect(r.headers.ETag).toBe(etag.toString());
    // ...and the exact bytes on the wire.
    expect((await rawEtag(port, '/files/fw.bin')).toString('hex')).toBe(etag.toString('hex'));
  });

  it('our client fetches every block statelessly, each with the SHA-256-prefix ETag', async () => {
    const blocks: FetchedBlock[] = [];
    for await (const b of fetchBlocks(client.request, { runtime: client.runtime, options: fileOptions(), szx: 2 })) blocks.push(b);
    expect(blocks).toHaveLength(Math.ceil(SIZE / 64));
    const etag = sha256Hex(content).slice(0, 16);
    for (const b of blocks) expect(Buffer.from(b.etag!).toString('hex')).toBe(etag);
    expect(sha256Hex(Buffer.concat(blocks.map((b) => b.data)))).toBe(sha256Hex(content));
    expect(blocks[0]!.total).toBe(SIZE);
  });

  it('answers a transfer that starts at block 5 (fresh token) with bytes 320..383', async () => {
    const it = fetchBlocks(client.request, { runtime: client.runtime, options: fileOptions(), szx: 2, startBlock: 5 });
    const first = (await it.next()).value as FetchedBlock;
    await it.return();
    expect(first.num).toBe(5);
    expect(first.more).toBe(true);
    expect(first.total).toBe(SIZE); // Size2 asked on the first request of a resumed transfer
    expect(Buffer.from(first.data)).toEqual(Buffer.from(content.subarray(320, 384)));
  });

  it('plain node-coap answers that same resumed request with 4.02 (why the adapter exists)', async () => {
    const plainClient = await openClient(`coap://127.0.0.1:${plainPort}/files/fw.bin`);
    try {
      const res = await plainClient.request({ code: Code.GET, options: [...plainClient.options, { number: OptionNumber.BLOCK2, value: encodeBlock({ num: 5, more: false, szx: 2 }) }] });
      // node-coap takes the handler's payload for the whole representation and slices it again:
      // block 5 of a 64-byte "representation" does not exist, so the client gets 4.02.
      expect(codeToString(res.code)).toBe('4.02');
    } finally {
      await plainClient.close();
    }
  });

  it('answers a block past the end with 4.02 (RFC 7959 §2.2)', async () => {
    const res = await client.request({ code: Code.GET, options: [...fileOptions(), { number: OptionNumber.BLOCK2, value: encodeBlock({ num: 1000, more: false, szx: 6 }) }] });
    expect(codeToString(res.code)).toBe('4.02');
  });

  it('answers an unknown critical option with 4.02 (RFC 7252 §5.4.1)', async () => {
    const res = await client.request({ code: Code.GET, options: [...fileOptions(), { number: 65001, value: Uint8Array.of(1) }] });
    expect(codeToString(res.code)).toBe('4.02');
  });

  it('passes an option node-coap names but our codec does not (OSCORE, critical) to the router: 4.02', async () => {
    const res = await client.request({ code: Code.GET, options: [...fileOptions(), { number: 9, value: Uint8Array.of(0) }] });
    expect(codeToString(res.code)).toBe('4.02');
  });

  it('serves /.well-known/core and by content address', async () => {
    const core = await nodeCoapGet('127.0.0.1', port, '/.well-known/core');
    expect(core.code).toBe('2.05');
    expect(core.payload.toString()).toContain(`</fw/sha256/${sha256Hex(content)}>`);
    const byHash = await openClient(`coap://127.0.0.1:${port}/fw/sha256/${sha256Hex(content)}`);
    try {
      const { data } = await fetchAll(byHash.request, { runtime: byHash.runtime, options: byHash.options });
      expect(sha256Hex(data)).toBe(sha256Hex(content));
    } finally {
      await byHash.close();
    }
  });

  it("leaves other paths to the application's listener", async () => {
    const hello = await nodeCoapGet('127.0.0.1', port, '/hello');
    expect(hello.code).toBe('2.05');
    expect(hello.payload.toString()).toBe('hello from the app');
    const missing = await nodeCoapGet('127.0.0.1', port, '/files/absent.bin');
    expect(missing.code).toBe('4.04');
    expect(missing.payload.toString()).toBe('app: not found');
  });

  it('a non-GET on a file is 4.05', async () => {
    const res = await client.request({ code: Code.PUT, options: fileOptions(), payload: Uint8Array.of(1) });
    expect(codeToString(res.code)).toBe('4.05');
  });
});

describe('adapter pieces', () => {
  it('toCoapMessage keeps Block2, Size2 (converted to a number by node-coap), Uri-Path, OSCORE and unknown options; drops lossy ETag text', () => {
    const msg = toCoapMessage({
      code: '0.01',
      options: [
        { name: 'Uri-Path', value: Buffer.from('files') },
        { name: 'Size2', value: 0 },
        { name: 'Block2', value: Buffer.of(0x52) },
        { name: 'ETag', value: 'lossy text' },
        { name: '65001', value: Buffer.of(1) },
        { name: 'OSCORE', value: Buffer.of(0) },
      ],
      _packet: { messageId: 7, token: Buffer.of(1, 2), confirmable: false },
    });
    expect(msg.code).toBe(Code.GET);
    expect(msg.messageId).toBe(7);
    expect(msg.options.map((o) => o.number)).toEqual([9, OptionNumber.URI_PATH, OptionNumber.BLOCK2, OptionNumber.SIZE2, 65001]);
    expect(decodeBlock(msg.options[2]!.value)).toEqual({ num: 5, more: false, szx: 2 });
    expect(msg.options[3]!.value).toEqual(new Uint8Array(0));
  });

  it('refuses to let node-coap rewrite Block2 when the response has no OutgoingMessage base: 5.00 and NODE_COAP_UNSUPPORTED', () => {
    const errors: CoapfwError[] = [];
    const sent: Array<{ code?: string; ended: boolean }> = [];
    const res = {
      code: undefined as string | undefined,
      statusCode: undefined as string | undefined,
      setOption: () => res,
      end: () => void sent.push({ code: res.code, ended: true }),
    };
    sendNodeCoapResponse(res, { code: Code.CONTENT, payload: Uint8Array.of(1, 2, 3) }, { onError: (e) => void errors.push(e) });
    expect(sent).toEqual([{ code: '5.00', ended: true }]);
    expect(errors.map((e) => e.code)).toEqual(['NODE_COAP_UNSUPPORTED']);
  });
});
