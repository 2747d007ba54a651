/**
 * The sending side of a server {@link Session}: our record sequence numbers
 * per epoch, the epoch-1 write keys once chosen, and the last flight,
 * packed into as few datagrams as the MTU allows and retransmitted on a
 * timer with doubling timeout (RFC 6347 §4.2.4.1) until the session says it
 * is no longer waiting.
 */
import type { FlightRecord } from './handshake.js';
import { encodeRecord, type Ccm8Cipher } from './record.js';

/** What the writer needs of its session. */
export interface WriterOptions {
  readonly retransmitMs: number;
  readonly maxRetransmits: number;
  readonly mtu: number;
  /** Sends one datagram to the session's peer; never rejects. */
  readonly send: (datagram: Uint8Array) => Promise<void>;
  /** True while flight 4 still awaits the client's answer (checked before each retransmission). */
  readonly waiting: () => boolean;
  /** Called when flight 4 was retransmitted `maxRetransmits` times without answer. */
  readonly giveUp: () => void;
}

/** Writes one session's records and flights. */
export class SessionWriter {
  private readonly writeSeq = [0, 0];
  private writeCipher: Ccm8Cipher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private retransmits = 0;

  /** Epoch-0 record numbers continue from `firstRecordSeq` (the client's cookie-bearing ClientHello, §4.2.1). */
  constructor(
    firstRecordSeq: number,
    private lastFlight: readonly FlightRecord[],
    private readonly opts: WriterOptions,
  ) {
    this.writeSeq[0] = firstRecordSeq;
  }

  /** One record of ours in `epoch`; epoch 1 is sealed with the chosen write keys. */
  record(type: number, epoch: 0 | 1, body: Uint8Array): Uint8Array {
    const seq = this.writeSeq[epoch]!++;
    if (epoch === 0) return encodeRecord(type, 0, seq, body);
    return encodeRecord(type, 1, seq, this.writeCipher!.seal(type, 1, seq, body));
  }

  /** Sends one record as its own datagram. */
  send(type: number, epoch: 0 | 1, body: Uint8Array): Promise<void> {
    return this.opts.send(this.record(type, epoch, body));
  }

  /** The handshake is done: protect with `cipher` from now on and send the final flight once. */
  finish(cipher: Ccm8Cipher, flight: readonly FlightRecord[]): void {
    this.writeCipher = cipher;
    this.stop();
    this.lastFlight = flight;
    this.sendFlight();
  }

  /** Sends the last flight, packing records into as few datagrams as the MTU allows. */
  sendFlight(): void {
    let parts: Uint8Array[] = [];
    let size = 0;
    const flush = (): void => {
      if (parts.length === 0) return;
      const d = new Uint8Array(size);
      let o = 0;
      for (const p of parts) {
        d.set(p, o);
        o += p.length;
      }
      void this.opts.send(d);
      parts = [];
      size = 0;
    };
    for (const r of this.lastFlight) {
      const rec = this.record(r.type as number, r.epoch, r.body);
      if (size + rec.length > this.opts.mtu) flush();
      parts.push(rec);
      size += rec.length;
    }
    flush();
  }

  /** Retransmit the last flight on a doubling timeout until `waiting()` turns false. */
  arm(): void {
    const delay = Math.min(this.opts.retransmitMs * 2 ** this.retransmits, 60_000);
    this.timer = setTimeout(() => {
      if (!this.opts.waiting()) return;
      if (this.retransmits >= this.opts.maxRetransmits) return this.opts.giveUp();
      this.retransmits++;
      this.sendFlight();
      this.arm();
    }, delay);
    this.timer.unref();
  }

  /** Stops retransmitting. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
