/**
 * DTLS 1.2 handshake message codec (RFC 6347 §4.2, RFC 5246 §7.4, RFC 4279 §2).
 *
 * Every handshake message has a 12-byte header:
 * `msg_type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3)`
 * (RFC 6347 §4.2.2). For the Finished hash, messages are taken as if they had
 * been sent in one fragment (§4.2.6), which is what `fullMessage()` returns.
 * Only the messages of the PSK handshake are modelled.
 */

/** RFC 5246 §7.4 / RFC 6347 §4.2.1 handshake types. */
export const HandshakeType = {
  helloRequest: 0,
  clientHello: 1,
  serverHello: 2,
  helloVerifyRequest: 3,
  serverKeyExchange: 12,
  serverHelloDone: 14,
  clientKeyExchange: 16,
  finished: 20,
} as const;

/** TLS extension numbers we look at. */
export const Ext = { extendedMasterSecret: 0x0017, renegotiationInfo: 0xff01 } as const;
/** RFC 5746 §3.3 signalling cipher suite value. */
export const TLS_EMPTY_RENEGOTIATION_INFO_SCSV = 0x00ff;
/** RFC 6655 §3: TLS_PSK_WITH_AES_128_CCM_8. */
export const TLS_PSK_WITH_AES_128_CCM_8 = 0xc0a8;

/** Longest handshake message body we accept (a ClientHello with many extensions fits). */
export const MAX_HANDSHAKE_BODY = 4096;

/** One handshake fragment as read from a record. */
export interface HandshakeFragment {
  readonly msgType: number;
  readonly length: number;
  readonly messageSeq: number;
  readonly fragmentOffset: number;
  readonly body: Uint8Array;
}

/** Thrown inside this module on truncated input; callers turn it into a decode_error. */
export class DecodeError extends Error {}

/** Small bounds-checked reader. */
class Reader {
  off = 0;
  constructor(private readonly b: Uint8Array) {}
  get left(): number {
    return this.b.length - this.off;
  }
  u8(): number {
    if (this.left < 1) throw new DecodeError('truncated');
    return this.b[this.off++]!;
  }
  u16(): number {
    return (this.u8() << 8) | this.u8();
  }
  u24(): number {
    return (this.u8() << 16) | (this.u8() << 8) | this.u8();
  }
  bytes(n: number): Uint8Array {
    if (this.left < n) throw new DecodeError('truncated');
    const s = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return s;
  }
}

/** Splits a handshake record into its fragments (a record may hold several). */
export function parseFragments(record: Uint8Array): HandshakeFragment[] {
  const r = new Reader(record);
  const out: HandshakeFragment[] = [];
  while (r.left > 0) {
    const msgType = r.u8();
    const length = r.u24();
    const messageSeq = r.u16();
    const fragmentOffset = r.u24();
    const fragLen = r.u24();
    if (length > MAX_HANDSHAKE_BODY || fragmentOffset + fragLen > length) throw new DecodeError('bad fragment bounds');
    out.push({ msgType, length, messageSeq, fragmentOffset, body: r.bytes(fragLen) });
  }
  return out;
}

/** Encodes an unfragmented handshake message (header + body). */
export function fullMessage(msgType: number, messageSeq: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const n = body.length;
  out[0] = msgType;
  out[1] = n >> 16;
  out[2] = (n >> 8) & 0xff;
  out[3] = n & 0xff;
  out[4] = messageSeq >> 8;
  out[5] = messageSeq & 0xff;
  // fragment_offset = 0 (bytes 6..8), fragment_length = length
  out[9] = n >> 16;
  out[10] = (n >> 8) & 0xff;
  out[11] = n & 0xff;
  out.set(body, 12);
  return out;
}

/**
 * Reassembles fragmented messages (RFC 6347 §4.2.3). Bounded: at most a few
 * messages of at most MAX_HANDSHAKE_BODY bytes are buffered.
 */
export class Reassembler {
  private readonly pending = new Map<number, { type: number; buf: Uint8Array; have: Uint8Array; missing: number }>();

  /** Adds a fragment; returns the complete body when the message is whole. */
  add(f: HandshakeFragment): Uint8Array | undefined {
    if (f.fragmentOffset === 0 && f.body.length === f.length) return f.body;
    let p = this.pending.get(f.messageSeq);
    if (p === undefined) {
      if (this.pending.size >= 4) return undefined;
      p = { type: f.msgType, buf: new Uint8Array(f.length), have: new Uint8Array(f.length), missing: f.length };
      this.pending.set(f.messageSeq, p);
    }
    if (p.type !== f.msgType || p.buf.length !== f.length) return undefined;
    for (let i = 0; i < f.body.length; i++) {
      const at = f.fragmentOffset + i;
      if (p.have[at] === 0) {
        p.have[at] = 1;
        p.missing--;
      }
    }
    p.buf.set(f.body, f.fragmentOffset);
    if (p.missing > 0) return undefined;
    this.pending.delete(f.messageSeq);
    return p.buf;
  }
}

/** The fields of a ClientHello we use (RFC 6347 §4.2.1, RFC 5246 §7.4.1.2). */
export interface ClientHello {
  readonly clientVersion: number;
  readonly random: Uint8Array;
  readonly sessionId: Uint8Array;
  readonly cookie: Uint8Array;
  readonly cipherSuites: readonly number[];
  readonly compressionMethods: Uint8Array;
  readonly extensions: ReadonlyMap<number, Uint8Array>;
  /** version..session_id and cipher_suites..compression_methods, for the cookie MAC. */
  readonly cookieInput: Uint8Array;
}

/** Parses a ClientHello body; throws DecodeError when malformed. */
export function parseClientHello(body: Uint8Array): ClientHello {
  const r = new Reader(body);
  const clientVersion = r.u16();
  const random = r.bytes(32);
  const sidLen = r.u8();
  if (sidLen > 32) throw new DecodeError('session_id too long');
  const sessionId = r.bytes(sidLen);
  const cookieStart = r.off;
  const cookie = r.bytes(r.u8());
  const afterCookie = r.off;
  const csLen = r.u16();
  if (csLen < 2 || csLen % 2 !== 0) throw new DecodeError('bad cipher_suites length');
  const cipherSuites: number[] = [];
  for (let i = 0; i < csLen; i += 2) cipherSuites.push(r.u16());
  const compressionMethods = r.bytes(r.u8());
  if (compressionMethods.length < 1) throw new DecodeError('no compression methods');
  const paramsEnd = r.off;
  const extensions = new Map<number, Uint8Array>();
  if (r.left > 0) {
    const extLen = r.u16();
    if (extLen !== r.left) throw new DecodeError('bad extensions length');
    while (r.left > 0) {
      const type = r.u16();
      extensions.set(type, r.bytes(r.u16()));
    }
  }
  // RFC 6347 §4.2.1: version, random, session_id, cipher_suites and compression
  // must repeat unchanged in the second ClientHello; extensions may differ.
  const cookieInput = new Uint8Array(cookieStart + (paramsEnd - afterCookie));
  cookieInput.set(body.subarray(0, cookieStart), 0);
  cookieInput.set(body.subarray(afterCookie, paramsEnd), cookieStart);
  return { clientVersion, random, sessionId, cookie, cipherSuites, compressionMethods, extensions, cookieInput };
}

/** RFC 6347 §4.2.1 HelloVerifyRequest body. Version is DTLS 1.0 as the RFC recommends. */
export function helloVerifyRequestBody(cookie: Uint8Array): Uint8Array {
  const out = new Uint8Array(3 + cookie.length);
  out[0] = 0xfe;
  out[1] = 0xff;
  out[2] = cookie.length;
  out.set(cookie, 3);
  return out;
}

/** RFC 5246 §7.4.1.3 ServerHello body with an empty session id (no resumption). */
export function serverHelloBody(random: Uint8Array, suite: number, extensions: ReadonlyArray<[number, Uint8Array]>): Uint8Array {
  let extLen = 0;
  for (const [, data] of extensions) extLen += 4 + data.length;
  const out = new Uint8Array(2 + 32 + 1 + 2 + 1 + (extensions.length > 0 ? 2 + extLen : 0));
  out[0] = 0xfe;
  out[1] = 0xfd;
  out.set(random, 2);
  out[34] = 0; // session_id length
  out[35] = suite >> 8;
  out[36] = suite & 0xff;
  out[37] = 0; // compression null
  if (extensions.length > 0) {
    let o = 38;
    out[o++] = extLen >> 8;
    out[o++] = extLen & 0xff;
    for (const [type, data] of extensions) {
      out[o++] = type >> 8;
      out[o++] = type & 0xff;
      out[o++] = data.length >> 8;
      out[o++] = data.length & 0xff;
      out.set(data, o);
      o += data.length;
    }
  }
  return out;
}

/** RFC 4279 §2: ServerKeyExchange carrying a psk_identity_hint. */
export function pskHintBody(hint: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + hint.length);
  out[0] = hint.length >> 8;
  out[1] = hint.length & 0xff;
  out.set(hint, 2);
  return out;
}

/** RFC 4279 §2: ClientKeyExchange = psk_identity<0..2^16-1>. */
export function parseClientKeyExchange(body: Uint8Array): Uint8Array {
  const r = new Reader(body);
  const id = r.bytes(r.u16());
  if (r.left !== 0) throw new DecodeError('trailing bytes in ClientKeyExchange');
  return id;
}
