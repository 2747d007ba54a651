/**
 * Unsigned LEB128 integers up to 2^32 - 1 (at most 5 bytes) and their
 * zig-zag signed form, as the delta format uses them. Reading is strict:
 * a value past 2^32 - 1, a sixth byte, or an overlong encoding (a last byte
 * of 0 after the first) is malformed, so every value has one encoding.
 */
import { CoapfwError } from '../errors.js';

/** Largest value a varint carries. */
export const VARINT_MAX = 0xffff_ffff;

/** A growable byte buffer for the encoder. */
export class ByteWriter {
  private buf = new Uint8Array(256);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.length++] = b;
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  uvar(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > VARINT_MAX) throw new CoapfwError('INVALID_ARGUMENT', `varint: ${v} is outside 0..2^32-1`);
    let x = v;
    while (x >= 0x80) {
      this.byte((x % 0x80) | 0x80);
      x = Math.floor(x / 0x80);
    }
    this.byte(x);
  }

  svar(v: number): void {
    this.uvar(v >= 0 ? v * 2 : -v * 2 - 1);
  }

  /** The bytes written (a view; copy before writing more). */
  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

/** A bounds-checked reader over one frame; every error is typed. */
export class ByteReader {
  pos = 0;
  constructor(private readonly b: Uint8Array, private readonly what: string) {}

  get remaining(): number {
    return this.b.length - this.pos;
  }

  private truncated(): CoapfwError {
    return new CoapfwError('DELTA_MALFORMED', `${this.what}: command stream ends inside a command at byte ${this.pos}`);
  }

  byte(): number {
    if (this.pos >= this.b.length) throw this.truncated();
    return this.b[this.pos++]!;
  }

  bytes(n: number): Uint8Array {
    if (n > this.remaining) throw this.truncated();
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  uvar(): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 5; i++) {
      const c = this.byte();
      v += (c & 0x7f) * mul;
      if ((c & 0x80) === 0) {
        if (i > 0 && c === 0) throw new CoapfwError('DELTA_MALFORMED', `${this.what}: overlong varint at byte ${this.pos - 1}`);
        if (v > VARINT_MAX) break;
        return v;
      }
      mul *= 0x80;
    }
    throw new CoapfwError('DELTA_MALFORMED', `${this.what}: varint beyond 2^32 - 1 at byte ${this.pos}`);
  }

  svar(): number {
    const u = this.uvar();
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }
}
