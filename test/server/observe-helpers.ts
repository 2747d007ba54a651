/** A server with observable files on a MemNetwork, and observer devices that behave like CoAP endpoints. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeMessage, encodeMessage, type CoapMessage } from '../../src/codec/message.js';
import { Code, MessageType, OptionNumber } from '../../src/codec/numbers.js';
import { getOption, pathOptions } from '../../src/codec/options.js';
import { CoapEndpoint, type EndpointOptions } from '../../src/messaging/endpoint.js';
import { fileResources } from '../../src/server/file-server.js';
import { FileRepository } from '../../src/server/files.js';
import { ObserveRegistry, type ObserveOptions } from '../../src/server/observe.js';
import { routeRequests } from '../../src/server/router.js';
import type { Peer } from '../../src/core/transport.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { MemNetwork, type MemTransport } from '../../src/testing/mem-transport.js';

export const SERVER: Peer = { address: '10.0.0.1', port: 5683 };
const E = new Uint8Array(0);

/** Wait (bounded, real time) until `cond` holds: file reads are real I/O. */
export async function until(cond: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

/** An observable file `fw.bin` of `size` bytes served from a temp dir. */
export async function observeServer(opts: { size?: number; observe?: ObserveOptions; endpoint?: Partial<EndpointOptions>; handlerWrap?: (h: ReturnType<typeof routeRequests>) => ReturnType<typeof routeRequests> } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'coapfw-obs-'));
  const file = join(dir, 'fw.bin');
  await writeFile(file, Buffer.alloc(opts.size ?? 16, 1));
  const repo = await FileRepository.open(dir);
  await repo.byRelativePath('fw.bin')!.read(0, 1); // warm the chunk cache: floods below are answered synchronously
  const net = new MemNetwork();
  const rt = new FakeRuntime(21);
  const observe = new ObserveRegistry({ runtime: rt, ...opts.observe });
  const transport = net.endpoint(SERVER.address, SERVER.port);
  const endpoint = new CoapEndpoint(transport, { runtime: rt, ...opts.endpoint });
  const handler = routeRequests(fileResources(repo, { observe, runtime: rt }));
  endpoint.handle(opts.handlerWrap ? opts.handlerWrap(handler) : handler);
  let version = 1;
  return {
    net,
    rt,
    observe,
    endpoint,
    repo,
    /** Deliver a datagram to the server as if `from` had sent it (spoofing included). */
    inject: (bytes: Uint8Array, from: Peer) => transport.inject(bytes, from),
    /** Replace fw.bin (same size, new bytes) and let the repository notice. */
    async change(): Promise<void> {
      await writeFile(file, Buffer.alloc(opts.size ?? 16, ++version));
      await repo.refresh();
    },
    /** Bytes the server sent to `peer` (address and port). */
    bytesTo: (peer: Peer) => net.log.filter((l) => l.to.address === peer.address && l.to.port === peer.port).reduce((n, l) => n + l.data.length, 0),
    sentTo: (peer: Peer) => net.log.filter((l) => l.to.address === peer.address && l.to.port === peer.port).map((l) => decodeMessage(l.data)),
    async close() {
      observe.close();
      await endpoint.close();
      await repo.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** An observation request for /files/fw.bin. */
export function observeRequest(token: Uint8Array, type: number = MessageType.NON, mid = 1): Uint8Array {
  return encodeMessage({ type: type as 0, code: Code.GET, messageId: mid, token, options: [{ number: OptionNumber.OBSERVE, value: E }, ...pathOptions('/files/fw.bin')], payload: E });
}

/**
 * A device that observes fw.bin and behaves as a CoAP endpoint does: it
 * answers a ping with RST and ACKs every CON (unless `acking` is off).
 */
export function observerDevice(net: MemNetwork, peer: Peer) {
  const t: MemTransport = net.endpoint(peer.address, peer.port);
  const got: CoapMessage[] = [];
  const state = { acking: true, answersPings: true };
  t.onMessage((d) => {
    const m = decodeMessage(d);
    if (m.type === MessageType.CON && m.code === Code.EMPTY) {
      if (state.answersPings) void t.send(encodeMessage({ type: MessageType.RST, code: 0, messageId: m.messageId, token: E, options: [], payload: E }), SERVER);
      return;
    }
    got.push(m);
    if (m.type === MessageType.CON && state.acking) void t.send(encodeMessage({ type: MessageType.ACK, code: 0, messageId: m.messageId, token: E, options: [], payload: E }), SERVER);
  });
  return {
    got,
    state,
    register: (token = Uint8Array.of(7, 7)) => t.send(observeRequest(token), SERVER),
    /** Responses and notifications carrying an Observe option. */
    notifications: () => got.filter((m) => getOption(m, OptionNumber.OBSERVE) !== undefined),
  };
}
