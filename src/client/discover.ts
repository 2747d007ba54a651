/**
 * Finding a firmware server or gateway on the local link (RFC 7252 §8,
 * RFC 6690 §4): one Non-confirmable `GET /.well-known/core?rt=firmware` to the
 * All-CoAP-Nodes groups (224.0.1.187 and ff02::fd, on every interface that
 * can multicast), then every unicast answer with our token collected for
 * `timeoutMs`, one per responder.
 *
 * Servers answer within their leisure period (§8.2: a coapfw gateway waits at
 * most 1 s by default), and say nothing when no link matches, so an empty
 * result means nobody answered in time, never an error. An answer that is
 * only the first block of a longer list is completed by unicast (Block2).
 */
import { createSocket, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { fetchAll } from '../blockwise/fetch.js';
import { decodeBlock } from '../codec/block.js';
import { parseLinks, type Link } from '../codec/link-format.js';
import { decodeMessage, encodeMessage } from '../codec/message.js';
import { Code, COAP_PORT, MessageType, OptionNumber } from '../codec/numbers.js';
import { getOption, pathOptions, queryOptions } from '../codec/options.js';
import { formatCoapUri } from '../codec/uri.js';
import { CoapfwError } from '../errors.js';
import { systemRuntime } from '../transport/runtime.js';
import { openClient } from './open.js';

/** Options of {@link discover}. */
export interface DiscoverOptions {
  /** Groups to ask. Default 224.0.1.187 and ff02::fd (add ff05::fd for the site). */
  readonly groups?: readonly string[];
  /** The servers' port. Default 5683. */
  readonly port?: number;
  /** The RFC 6690 filter, one `name=value`. Default `rt=firmware`. */
  readonly query?: string;
  /** How long to collect answers. Default 2000 ms (a coapfw gateway's leisure is 1 s). */
  readonly timeoutMs?: number;
  /** Interface names to ask on. Default every interface that is up and not loopback. */
  readonly interfaces?: readonly string[];
  readonly signal?: AbortSignal;
}

/** A server that answered. */
export interface Discovered {
  /** Its unicast address (IPv6 link-local with `%zone`), as the answer came from. */
  readonly address: string;
  readonly port: number;
  /** `coap://address[:port]` (the port left out when it is 5683), the base URI to use for it. */
  readonly uri: string;
  /** The links it listed for the query. */
  readonly links: readonly Link[];
}

/**
 * Ask the local link who serves firmware.
 *
 * @example
 * const [gw] = await discover();               // rt=firmware, 2 s
 * if (gw) console.log(`update from ${gw.uri}`); // e.g. coap://192.0.2.7
 */
export async function discover(options: DiscoverOptions = {}): Promise<Discovered[]> {
  const port = options.port ?? COAP_PORT;
  const timeoutMs = options.timeoutMs ?? 2000;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new CoapfwError('INVALID_ARGUMENT', `discover: port must be 1..65535, got ${port}`);
  if (!(timeoutMs > 0)) throw new CoapfwError('INVALID_ARGUMENT', `discover: timeoutMs must be > 0, got ${timeoutMs}`);
  const groups = options.groups ?? ['224.0.1.187', 'ff02::fd'];
  const token = systemRuntime.randomBytes(8);
  const request = encodeMessage({
    type: MessageType.NON, code: Code.GET, messageId: Math.floor(Math.random() * 0x10000), token,
    options: [...pathOptions('/.well-known/core'), ...queryOptions(options.query ?? 'rt=firmware')], payload: new Uint8Array(0),
  });
  const found = new Map<string, { address: string; port: number; payload: Uint8Array; more: boolean }>();
  const sockets = new Map<string, Socket>();
  const onAnswer = (data: Buffer, address: string, from: number): void => {
    let m;
    try {
      m = decodeMessage(new Uint8Array(data));
    } catch {
      return;
    }
    if (m.code !== Code.CONTENT || Buffer.compare(Buffer.from(m.token), Buffer.from(token)) !== 0) return;
    const key = `${address}|${from}`;
    if (found.has(key)) return;
    const raw = getOption(m, OptionNumber.BLOCK2);
    found.set(key, { address, port: from, payload: m.payload, more: raw !== undefined && decodeBlock(raw).more });
  };
  try {
    for (const iface of multicastInterfaces(options.interfaces)) {
      for (const group of groups) {
        const v6 = group.includes(':');
        if (v6 ? !iface.v6 : iface.v4 === undefined) continue;
        const s = await socketFor(v6, sockets, onAnswer);
        s.setMulticastInterface(v6 ? `::%${iface.name}` : iface.v4!);
        const to = v6 && /^ff[0-9a-f]2:/i.test(group) ? `${group}%${iface.name}` : group;
        await new Promise<void>((resolve) => s.send(request, port, to, () => resolve())); // a send that fails (no route) is a silent interface
      }
    }
    await wait(timeoutMs, options.signal);
  } finally {
    await Promise.all([...sockets.values()].map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
  const out: Discovered[] = [];
  for (const f of found.values()) out.push(await complete(f, options.query ?? 'rt=firmware'));
  return out;
}

/** One socket per family, shared by every interface (the multicast interface is set before each send). */
async function socketFor(v6: boolean, sockets: Map<string, Socket>, onAnswer: (d: Buffer, a: string, p: number) => void): Promise<Socket> {
  const type = v6 ? 'udp6' : 'udp4';
  const have = sockets.get(type);
  if (have !== undefined) return have;
  const s = createSocket({ type });
  s.on('error', () => undefined); // an ICMP error for one interface must not end the search
  s.on('message', (d, r) => onAnswer(d, r.address, r.port));
  await new Promise<void>((resolve) => s.bind(0, v6 ? '::' : '0.0.0.0', () => resolve()));
  sockets.set(type, s);
  return s;
}

/** The responder's links: from its answer, or the whole list by unicast when the answer was its first block. */
async function complete(f: { address: string; port: number; payload: Uint8Array; more: boolean }, query: string): Promise<Discovered> {
  const uri = formatCoapUri({ scheme: 'coap', host: f.address, port: f.port, path: [], query: [] });
  let payload = f.payload;
  if (f.more) {
    const client = await openClient(`${uri}/`);
    try {
      payload = (await fetchAll(client.request, { runtime: systemRuntime, options: [...pathOptions('/.well-known/core'), ...queryOptions(query)], maxSize: 64 * 1024 })).data;
    } catch {
      // Keep what the multicast answer carried.
    } finally {
      await client.close();
    }
  }
  let links: Link[] = [];
  try {
    links = parseLinks(new TextDecoder().decode(payload));
  } catch {
    links = []; // an answer we cannot read still says a server is there
  }
  return { address: f.address, port: f.port, uri, links };
}

/** A network interface as multicast sees it: its name, its first IPv4 address, whether it has IPv6. */
export interface MulticastInterface {
  readonly name: string;
  readonly v4: string | undefined;
  readonly v6: boolean;
}

/** The interfaces to multicast on: those named, or every one with an address that is not loopback. */
export function multicastInterfaces(only?: readonly string[]): MulticastInterface[] {
  const out: MulticastInterface[] = [];
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (addrs === undefined) continue;
    const usable = addrs.filter((a) => !a.internal);
    if (only !== undefined ? !only.includes(name) : usable.length === 0) continue;
    const pick = only !== undefined ? addrs : usable;
    out.push({ name, v4: pick.find((a) => a.family === 'IPv4')?.address, v6: pick.some((a) => a.family === 'IPv6') });
  }
  return out;
}

function wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new CoapfwError('ABORTED', 'discover: aborted', { cause: signal.reason }));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new CoapfwError('ABORTED', 'discover: aborted', { cause: signal?.reason }));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
