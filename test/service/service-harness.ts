/**
 * An update server on loopback (plain CoAP and coaps) over a store of the
 * harness's backend, a publisher key it trusts, PSK identities for devices
 * and a publisher, and small helpers to speak the protocol in CBOR or JSON.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { sendBlock1 } from '../../src/blockwise/block1-send.js';
import { openClient, type CoapClient } from '../../src/client/open.js';
import type { CoapMessage, CoapOption } from '../../src/codec/message.js';
import { Code, ContentFormat, OptionNumber } from '../../src/codec/numbers.js';
import { encodeUint, pathOptions } from '../../src/codec/options.js';
import { decodeCborBody } from '../../src/server/body.js';
import { startUpdateServer, type UpdateServer, type UpdateServerOptions } from '../../src/service/update-server.js';
import { encodeCbor } from '../../src/suit/cbor.js';
import { createEnvelope } from '../../src/suit/create.js';
import { describeImage } from '../../src/suit/image-input.js';
import { privateKeyFromSecret, type SuitPrivateKey } from '../../src/suit/keys.js';
import { PskStore } from '../../src/transport/dtls/psk-store.js';
import { systemRuntime } from '../../src/transport/runtime.js';
import { bytes, CLASS, VENDOR } from './fixtures.js';
import type { Harness } from './harness.js';

/** PSK identities of the tests: two devices, a publisher. */
export const PSK = {
  dev1: { identity: 'dev-1', key: new Uint8Array(16).fill(1) },
  dev2: { identity: 'dev-2', key: new Uint8Array(16).fill(2) },
  publisher: { identity: 'ci-release', key: new Uint8Array(16).fill(9) },
} as const;

/** The key releases are signed with, and another one the server does not trust. */
export const SIGNER: SuitPrivateKey = privateKeyFromSecret('ed25519', new Uint8Array(32).fill(7));
export const STRANGER: SuitPrivateKey = privateKeyFromSecret('ed25519', new Uint8Array(32).fill(8));

/** A running service and its clients. */
export interface Service {
  readonly server: UpdateServer;
  readonly dir: string;
  readonly coapUrl: string;
  readonly coapsUrl: string;
  /** A plain CoAP client (closed at cleanup). */
  plain(): Promise<CoapClient>;
  /** A coaps client under one of the test identities (closed at cleanup). */
  secure(who: keyof typeof PSK): Promise<CoapClient>;
  close(): Promise<void>;
}

/** Start a service on a fresh database of `h`. */
export async function startService(h: Harness, over: Partial<UpdateServerOptions> = {}): Promise<Service> {
  const dir = await mkdtemp(join(tmpdir(), 'coapfw-svc-'));
  await writeFile(join(dir, 'readme.txt'), 'served from the directory\n');
  const url = await h.fresh();
  const store = await h.open(url);
  const psk = PskStore.fromEntries([
    [PSK.dev1.identity, PSK.dev1.key],
    [PSK.dev2.identity, PSK.dev2.key],
    [PSK.publisher.identity, PSK.publisher.key, ['publisher']],
  ]);
  const server = await startUpdateServer({
    dir,
    store,
    host: '127.0.0.1',
    port: 0,
    refreshMs: 0,
    secure: { psk, host: '127.0.0.1', port: 0 },
    openRegistration: true,
    releaseTrust: { anchors: [{ name: 'oem', publicKey: SIGNER.publicKey }] },
    modes: { tickMs: 50, normalWindowS: 0 },
    ...over,
  });
  const clients: CoapClient[] = [];
  const coapUrl = `coap://127.0.0.1:${server.address().port}`;
  const coapsUrl = `coaps://127.0.0.1:${server.dtls?.address().port}`;
  return {
    server,
    dir,
    coapUrl,
    coapsUrl,
    async plain() {
      const c = await openClient(`${coapUrl}/`, { params: { ackTimeoutMs: 500 } });
      clients.push(c);
      return c;
    },
    async secure(who) {
      const c = await openClient(`${coapsUrl}/`, { psk: PSK[who], params: { ackTimeoutMs: 500 } });
      clients.push(c);
      return c;
    },
    async close() {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** An answer: code and the decoded map (empty when the payload is not a map). */
export interface Answer {
  readonly code: number;
  readonly map: Record<string, unknown>;
  readonly text: string;
  readonly message: CoapMessage;
}

const CF = (cf: number): CoapOption => ({ number: OptionNumber.CONTENT_FORMAT, value: encodeUint(cf) });

/** Decode a response body (CBOR or JSON by its Content-Format). */
export function answerOf(message: CoapMessage): Answer {
  const text = new TextDecoder().decode(message.payload);
  let map: Record<string, unknown> = {};
  const cf = message.options.find((o) => o.number === OptionNumber.CONTENT_FORMAT);
  try {
    if (cf !== undefined && cf.value.length === 1 && cf.value[0] === ContentFormat.JSON) map = JSON.parse(text) as Record<string, unknown>;
    else if (cf !== undefined && message.payload.length > 0) map = decodeCborBody(message.payload, 'answer') as Record<string, unknown>;
  } catch {
    map = {};
  }
  return { code: message.code, map, text, message };
}

/** Send `body` (CBOR by default) to `path`, block-wise when it is larger than `blockSize`. */
export async function call(client: CoapClient, code: number, path: string, body?: Record<string, unknown>, opts: { json?: boolean; blockSize?: number; options?: CoapOption[] } = {}): Promise<Answer> {
  const payload = body === undefined ? new Uint8Array(0) : opts.json ? new TextEncoder().encode(JSON.stringify(body)) : encodeCbor(new Map(Object.entries(body)));
  const options = [...pathOptions(path), ...(body === undefined ? [] : [CF(opts.json ? ContentFormat.JSON : ContentFormat.CBOR)]), ...(opts.options ?? [])];
  const szx = Math.log2(opts.blockSize ?? 1024) - 4;
  const res = await sendBlock1(client.request.bind(client), { code, options, payload }, { runtime: systemRuntime, szx });
  return answerOf(res);
}

/** A registration body. */
export function reg(mode: 'client' | 'server' | 'negotiated', seq = 1, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { vendor: VENDOR, class: CLASS, seq, mode, ...over };
}

/** An image and an envelope for it signed by `key` (sequence `seq`, content-addressed URI). */
export function signedRelease(seq: number, key: SuitPrivateKey = SIGNER, image = bytes(5000, seq)): { image: Uint8Array; envelope: Uint8Array; imageHex: string; envelopeHex: string } {
  const d = describeImage(image);
  const envelope = createEnvelope({ sequence: seq, vendorId: Buffer.from(VENDOR, 'hex'), classId: Buffer.from(CLASS, 'hex'), uri: d.uri, digest: d.digest, size: d.size }, [key]);
  return { image, envelope, imageHex: bytesToHex(sha256(image)), envelopeHex: bytesToHex(sha256(envelope)) };
}

/** Upload `image` and publish `envelope` through `client` (a publisher). */
export async function publishOver(client: CoapClient, r: { image: Uint8Array; envelope: Uint8Array; imageHex: string }, fields: Record<string, unknown> = {}): Promise<{ blob: Answer; release: Answer }> {
  const blob = answerOf(await sendBlock1(client.request.bind(client), { code: Code.PUT, options: pathOptions(`/pub/blob/${r.imageHex}`), payload: r.image }, { runtime: systemRuntime, szx: 6 }));
  const release = await call(client, Code.POST, '/pub/release', { envelope: r.envelope, urgency: 'normal', ...fields });
  return { blob, release };
}

/** Poll `f` until it returns something defined, or fail after `ms`. */
export async function eventually<T>(f: () => Promise<T | undefined> | T | undefined, ms = 10_000, what = 'condition'): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Observations on one client: every response on each observation's token, in order. */
export function observer(client: CoapClient) {
  const byToken = new Map<string, { path: string; answers: Answer[] }>();
  const stream = client.endpoint.openStream(client.peer, {
    onResponse: (m) => byToken.get(bytesToHex(m.token))?.answers.push(answerOf(m)),
  });
  return {
    observe(path: string): void {
      const token = stream.send({ code: Code.GET, options: [{ number: OptionNumber.OBSERVE, value: new Uint8Array(0) }, ...pathOptions(path)] });
      byToken.set(bytesToHex(token), { path, answers: [] });
    },
    of(path: string): Answer[] {
      return [...byToken.values()].filter((o) => o.path === path).flatMap((o) => o.answers);
    },
    close: () => stream.close(),
  };
}

/** The ETag of an answer, as hex. */
export function etagOf(a: Answer): string | undefined {
  const e = a.message.options.find((o) => o.number === OptionNumber.ETAG);
  return e === undefined ? undefined : bytesToHex(e.value);
}
