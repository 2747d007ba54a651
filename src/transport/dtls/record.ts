/**
 * DTLS 1.2 record layer (RFC 6347 §4.1).
 *
 * A datagram carries one or more records, each with a 13-byte header:
 * `type(1) version(2) epoch(2) sequence_number(6) length(2)` (§4.1). Records of
 * epoch 0 are plaintext; after ChangeCipherSpec, epoch 1 records are protected
 * with AES-128-CCM_8 (RFC 6655): an 8-byte explicit nonce (we send epoch||seq,
 * RFC 6655 §3) followed by the ciphertext and an 8-byte tag. The nonce is the
 * 4-byte implicit salt from the key block plus the explicit part; the additional
 * data is `epoch||seq || type || version || plaintext length` (RFC 5246 §6.2.3.3
 * with the DTLS sequence number of RFC 6347 §4.1.2.1).
 *
 * Replay detection uses a 64-entry sliding window (§4.1.2.6). Invalid records are
 * silently discarded (§4.1.2.7): callers count them, nothing is thrown.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';

/** RFC 5246 §6.2.1 content types. */
export const ContentType = { changeCipherSpec: 20, alert: 21, handshake: 22, applicationData: 23 } as const;

/** DTLS 1.2 on the wire is {254, 253} (RFC 6347 §4.1). */
export const DTLS12 = 0xfefd;
/** DTLS 1.0 version, allowed in the record header of a ClientHello (RFC 6347 §4.1). */
export const DTLS10 = 0xfeff;

export const RECORD_HEADER = 13;
/** RFC 6347 §4.1: length must not exceed 2^14 (plaintext) + expansion; we allow 2^14 + 2048. */
const MAX_FRAGMENT = 16384 + 2048;
const CCM8_OVERHEAD = 16; // 8-byte explicit nonce + 8-byte tag

/** One parsed record. `fragment` is still protected for epoch > 0. */
export interface DtlsRecord {
  readonly type: number;
  readonly version: number;
  readonly epoch: number;
  readonly seq: number;
  readonly fragment: Uint8Array;
}

/**
 * Splits a datagram into records. Stops at the first malformed header: the
 * records before it are still returned (§4.1.2.7 says to discard, not abort).
 */
export function parseRecords(datagram: Uint8Array): DtlsRecord[] {
  const out: DtlsRecord[] = [];
  let off = 0;
  while (off + RECORD_HEADER <= datagram.length) {
    const d = datagram;
    const len = (d[off + 11]! << 8) | d[off + 12]!;
    if (len > MAX_FRAGMENT || off + RECORD_HEADER + len > d.length) break;
    const seq = readUint48(d, off + 5);
    out.push({
      type: d[off]!,
      version: (d[off + 1]! << 8) | d[off + 2]!,
      epoch: (d[off + 3]! << 8) | d[off + 4]!,
      seq,
      fragment: d.subarray(off + RECORD_HEADER, off + RECORD_HEADER + len),
    });
    off += RECORD_HEADER + len;
  }
  return out;
}

/** Serializes one record with the given (already protected) fragment. */
export function encodeRecord(type: number, epoch: number, seq: number, fragment: Uint8Array, version = DTLS12): Uint8Array {
  const out = new Uint8Array(RECORD_HEADER + fragment.length);
  out[0] = type;
  out[1] = version >> 8;
  out[2] = version & 0xff;
  out[3] = epoch >> 8;
  out[4] = epoch & 0xff;
  writeUint48(out, 5, seq);
  out[11] = fragment.length >> 8;
  out[12] = fragment.length & 0xff;
  out.set(fragment, RECORD_HEADER);
  return out;
}

function readUint48(b: Uint8Array, off: number): number {
  return (b[off]! * 2 ** 40) + (b[off + 1]! * 2 ** 32) + ((b[off + 2]! << 24) >>> 0) + (b[off + 3]! << 16) + (b[off + 4]! << 8) + b[off + 5]!;
}

function writeUint48(b: Uint8Array, off: number, v: number): void {
  const hi = Math.floor(v / 2 ** 32);
  const lo = v >>> 0;
  b[off] = (hi >> 8) & 0xff;
  b[off + 1] = hi & 0xff;
  b[off + 2] = lo >>> 24;
  b[off + 3] = (lo >> 16) & 0xff;
  b[off + 4] = (lo >> 8) & 0xff;
  b[off + 5] = lo & 0xff;
}

/** The 8-byte `epoch || sequence_number` (RFC 6347 §4.1.2.1). */
function seqNum(epoch: number, seq: number): Uint8Array {
  const b = new Uint8Array(8);
  b[0] = epoch >> 8;
  b[1] = epoch & 0xff;
  writeUint48(b, 2, seq);
  return b;
}

function aad(epoch: number, seq: number, type: number, version: number, length: number): Uint8Array {
  const a = new Uint8Array(13);
  a.set(seqNum(epoch, seq), 0);
  a[8] = type;
  a[9] = version >> 8;
  a[10] = version & 0xff;
  a[11] = length >> 8;
  a[12] = length & 0xff;
  return a;
}

/** AES-128-CCM with an 8-byte tag for one direction of a connection (RFC 6655). */
export class Ccm8Cipher {
  constructor(
    private readonly key: Uint8Array,
    private readonly salt: Uint8Array,
  ) {}

  /** Protects `plaintext`; returns `explicit_nonce || ciphertext || tag`. */
  seal(type: number, epoch: number, seq: number, plaintext: Uint8Array, version = DTLS12): Uint8Array {
    const explicit = seqNum(epoch, seq);
    const nonce = new Uint8Array(12);
    nonce.set(this.salt, 0);
    nonce.set(explicit, 4);
    const c = createCipheriv('aes-128-ccm', this.key, nonce, { authTagLength: 8 });
    c.setAAD(aad(epoch, seq, type, version, plaintext.length), { plaintextLength: plaintext.length });
    const body = c.update(plaintext);
    c.final();
    const out = new Uint8Array(8 + body.length + 8);
    out.set(explicit, 0);
    out.set(body, 8);
    out.set(c.getAuthTag(), 8 + body.length);
    return out;
  }

  /** Returns the plaintext, or undefined when the record does not authenticate. */
  open(rec: DtlsRecord): Uint8Array | undefined {
    const f = rec.fragment;
    if (f.length < CCM8_OVERHEAD) return undefined;
    const nonce = new Uint8Array(12);
    nonce.set(this.salt, 0);
    nonce.set(f.subarray(0, 8), 4);
    const ctLen = f.length - CCM8_OVERHEAD;
    try {
      const d = createDecipheriv('aes-128-ccm', this.key, nonce, { authTagLength: 8 });
      d.setAuthTag(f.subarray(8 + ctLen));
      d.setAAD(aad(rec.epoch, rec.seq, rec.type, rec.version, ctLen), { plaintextLength: ctLen });
      const pt = d.update(f.subarray(8, 8 + ctLen));
      d.final();
      return new Uint8Array(pt.buffer, pt.byteOffset, pt.length);
    } catch {
      return undefined; // RFC 6347 §4.1.2.7: invalid records are silently discarded
    }
  }
}

/** RFC 6347 §4.1.2.6 anti-replay sliding window of 64 records. */
export class ReplayWindow {
  private top = -1; // highest sequence number accepted so far
  private bits = 0n; // bit i set = (top - i) was received

  /** True when `seq` is new (not seen, not older than the window). Does not mark it. */
  check(seq: number): boolean {
    if (seq > this.top) return true;
    const diff = this.top - seq;
    if (diff >= 64) return false;
    return ((this.bits >> BigInt(diff)) & 1n) === 0n;
  }

  /** Marks `seq` as received; call only after the record authenticated. */
  mark(seq: number): void {
    if (seq > this.top) {
      const shift = seq - this.top;
      this.bits = shift >= 64 ? 1n : ((this.bits << BigInt(shift)) | 1n) & 0xffff_ffff_ffff_ffffn;
      this.top = seq;
    } else {
      this.bits |= 1n << BigInt(this.top - seq);
    }
  }
}

/** RFC 5246 §7.2 alert descriptions we send or recognise. */
export const AlertDescription = {
  closeNotify: 0,
  unexpectedMessage: 10,
  badRecordMac: 20,
  handshakeFailure: 40,
  illegalParameter: 47,
  decodeError: 50,
  decryptError: 51,
  protocolVersion: 70,
  internalError: 80,
  noRenegotiation: 100,
  unknownPskIdentity: 115,
} as const;

/** Alert levels (RFC 5246 §7.2). */
export const AlertLevel = { warning: 1, fatal: 2 } as const;
