/**
 * Stateless cookies for the DTLS HelloVerifyRequest exchange (RFC 6347 §4.2.1).
 *
 * cookie = HMAC-SHA256(secret, client address:port || ClientHello parameters),
 * truncated to 16 bytes. Nothing is stored per client: a spoofed ClientHello costs
 * the server one HMAC and one small datagram, and only a client that can read the
 * HelloVerifyRequest at its claimed address can go on. The secret rotates every
 * `lifetimeMs`; cookies from the previous secret are still accepted, so a cookie
 * is valid for between one and two lifetimes.
 */
import { timingSafeEqual } from 'node:crypto';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';

const COOKIE_LEN = 16;
const enc = new TextEncoder();

/** Options of {@link CookieJar}; clock and randomness come from the caller. */
export interface CookieJarOptions {
  readonly lifetimeMs: number;
  readonly now: () => number;
  readonly random: (n: number) => Uint8Array;
}

/** Makes and checks HelloVerifyRequest cookies with a rotating secret. */
export class CookieJar {
  private current: Uint8Array;
  private previous: Uint8Array;
  private rotatedAt: number;

  constructor(private readonly opts: CookieJarOptions) {
    this.current = opts.random(32);
    this.previous = opts.random(32);
    this.rotatedAt = opts.now();
  }

  /** The cookie for this peer and these ClientHello parameters. */
  make(peer: string, params: Uint8Array): Uint8Array {
    this.rotate();
    return this.mac(this.current, peer, params);
  }

  /** True when `cookie` was made by `make()` with the current or previous secret. */
  verify(peer: string, params: Uint8Array, cookie: Uint8Array): boolean {
    this.rotate();
    if (cookie.length !== COOKIE_LEN) return false;
    return (
      timingSafeEqual(cookie, this.mac(this.current, peer, params)) ||
      timingSafeEqual(cookie, this.mac(this.previous, peer, params))
    );
  }

  private mac(secret: Uint8Array, peer: string, params: Uint8Array): Uint8Array {
    const h = hmac.create(sha256, secret);
    const p = enc.encode(peer);
    h.update(new Uint8Array([p.length]));
    h.update(p);
    h.update(params);
    return h.digest().subarray(0, COOKIE_LEN);
  }

  private rotate(): void {
    const now = this.opts.now();
    if (now - this.rotatedAt < this.opts.lifetimeMs) return;
    // Two lifetimes or more without traffic: both secrets are stale.
    this.previous = now - this.rotatedAt >= 2 * this.opts.lifetimeMs ? this.opts.random(32) : this.current;
    this.current = this.opts.random(32);
    this.rotatedAt = now;
  }
}
