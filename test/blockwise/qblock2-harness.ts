/**
 * A two-party Q-Block2 wire for tests: a QBlock2Client and a QBlock2Server on
 * a FakeRuntime, each message delayed by `latencyMs` one way, and a drop rule
 * deciding which datagrams are lost (by direction, block number and how often
 * that block was sent before), so RFC 9177's figures can be replayed exactly.
 */
import { decodeBlock } from '../../src/codec/block.js';
import type { CoapMessage } from '../../src/codec/message.js';
import { getOption, getOptions, pathOptions } from '../../src/codec/options.js';
import { MessageType, OptionNumber } from '../../src/codec/numbers.js';
import { QBlock2Client, type QBlock2ClientOptions } from '../../src/blockwise/qblock2-client.js';
import { hasQBlock2, QBlock2Server, type QBlock2ServerOptions } from '../../src/blockwise/qblock2-server.js';
import { bufferSource, type ByteSource } from '../../src/blockwise/source.js';
import type { ResponseSpec } from '../../src/messaging/endpoint.js';
import type { RequestSpec } from '../../src/core/request.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';

export const PEER = { address: '192.0.2.1', port: 5683 };

/** One datagram as logged: time, direction, and the Q-Block2 values it carried. */
export interface WireEntry {
  readonly at: number;
  readonly dir: 'req' | 'res';
  readonly type: number;
  readonly token: string;
  /** "NUM/M/SIZE" per Q-Block2 option, as in the RFC's figures. */
  readonly qb2: string[];
  readonly dropped: boolean;
}

export type DropRule = (dir: 'req' | 'res', block: number | undefined, copy: number) => boolean;

export function bytes(n: number, seed = 7): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) b[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  return b;
}

export function qb2Strings(m: { options: readonly { number: number; value: Uint8Array }[] }): string[] {
  return getOptions(m as CoapMessage, OptionNumber.Q_BLOCK2).map((v) => {
    const b = decodeBlock(v);
    return `${b.num}/${b.more ? 1 : 0}/${16 << b.szx}`;
  });
}

export class Wire {
  readonly rt = new FakeRuntime(3);
  readonly log: WireEntry[] = [];
  readonly received: Uint8Array;
  readonly client: QBlock2Client;
  readonly server: QBlock2Server;
  private readonly sentCount = new Map<number, number>();
  private mid = 0;
  private tokenSeq = 0;

  constructor(
    readonly body: Uint8Array,
    private readonly drop: DropRule,
    opts: { client?: Partial<QBlock2ClientOptions>; server?: Partial<QBlock2ServerOptions>; latencyMs?: number; source?: ByteSource } = {},
  ) {
    const latency = opts.latencyMs ?? 10;
    const source = opts.source ?? bufferSource(body);
    this.received = new Uint8Array(body.length);
    this.server = new QBlock2Server({
      runtime: this.rt,
      sender: { send: (_peer, token, spec, con) => this.toClient(token, spec, con ? MessageType.CON : MessageType.NON, latency) },
      ...opts.server,
    });
    this.client = new QBlock2Client({
      runtime: this.rt,
      options: pathOptions('/path'),
      mode: 'rfc',
      link: { send: (spec) => this.toServer(spec, latency, source) },
      onBlock: (b) => this.received.set(b.data, b.offset),
      ...opts.client,
    });
  }

  requests(): WireEntry[] {
    return this.log.filter((e) => e.dir === 'req');
  }

  responses(): WireEntry[] {
    return this.log.filter((e) => e.dir === 'res');
  }

  private toServer(spec: RequestSpec, latency: number, source: ByteSource): void {
    const token = Uint8Array.of(0xf0 + (this.tokenSeq++ & 0x0f), this.tokenSeq >> 4);
    const msg: CoapMessage = { type: spec.confirmable === false ? MessageType.NON : MessageType.CON, code: spec.code, messageId: this.mid++ & 0xffff, token, options: spec.options ?? [], payload: new Uint8Array(0) };
    const dropped = this.drop('req', undefined, 0);
    this.log.push({ at: this.rt.now(), dir: 'req', type: msg.type, token: hex(token), qb2: qb2Strings(msg), dropped });
    if (dropped) return;
    this.rt.setTimer(latency, () => {
      if (!hasQBlock2(msg)) throw new Error('server did not see Q-Block2');
      const res = this.server.handle(msg, PEER, source);
      if (res === undefined) return; // every block went through the sender
      if (res instanceof Promise) throw new Error('buffer sources answer synchronously');
      this.toClient(token, res, msg.type === MessageType.CON ? MessageType.ACK : MessageType.NON, latency);
    });
  }

  private toClient(token: Uint8Array, spec: ResponseSpec, type: number, latency: number): void {
    const msg: CoapMessage = { type: type as CoapMessage['type'], code: spec.code, messageId: this.mid++ & 0xffff, token, options: spec.options ?? [], payload: spec.payload ?? new Uint8Array(0) };
    const raw = getOption(msg, OptionNumber.Q_BLOCK2);
    const num = raw === undefined ? undefined : decodeBlock(raw).num;
    const copy = num === undefined ? 0 : (this.sentCount.get(num) ?? 0);
    if (num !== undefined) this.sentCount.set(num, copy + 1);
    const dropped = this.drop('res', num, copy);
    this.log.push({ at: this.rt.now(), dir: 'res', type: msg.type, token: hex(token), qb2: qb2Strings(msg), dropped });
    if (!dropped) this.rt.setTimer(latency, () => this.client.onResponse(msg));
  }
}

function hex(t: Uint8Array): string {
  return [...t].map((b) => b.toString(16).padStart(2, '0')).join('');
}
