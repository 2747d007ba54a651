/**
 * Key formats for SUIT signing and verification, parsed from text or bytes
 * (no file access here: the CLI reads files and passes their content).
 *
 * Accepted formats, each for Ed25519 and for ECDSA P-256:
 * - PEM `PRIVATE KEY` (PKCS#8, RFC 5208/5958) and `PUBLIC KEY` (SPKI, RFC 5280),
 *   as `openssl genpkey -algorithm ed25519` / `openssl pkey -pubout` write them;
 *   P-256 also as `EC PRIVATE KEY` (SEC 1, RFC 5915).
 * - COSE_Key (RFC 9052 §7, RFC 9053 §7.1/§7.2) in CBOR: OKP/Ed25519 (kty 1, crv 6)
 *   or EC2/P-256 (kty 2, crv 1); `kid` (label 2) becomes the key's id.
 * - Hex: 32 bytes is an Ed25519 public key when parsed as public, an Ed25519
 *   seed when parsed as private; 33 or 65 bytes is a P-256 public point.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { CoapfwError } from '../errors.js';
import { bstr, decodeCbor, encodeCbor } from './cbor.js';
import { DEFAULT_SUIT_LIMITS } from './limits.js';
import { bytesEqual, fromHex, intKeyed } from './values.js';

/** A public key: Ed25519 (32 raw bytes) or P-256 (SEC 1 point, 33 or 65 bytes). */
export interface SuitPublicKey {
  readonly type: 'ed25519' | 'p256';
  readonly bytes: Uint8Array;
  /** Key id (COSE kid), if the key file gave one. */
  readonly kid?: Uint8Array;
}

/** A private key: Ed25519 32-byte seed or P-256 32-byte scalar, with its public key. */
export interface SuitPrivateKey {
  readonly type: 'ed25519' | 'p256';
  readonly secret: Uint8Array;
  readonly publicKey: SuitPublicKey;
  readonly kid?: Uint8Array;
}

// DER prefixes of the fixed-shape structures (RFC 8410 §4, §7; RFC 5480 §2).
const ED_SPKI = fromHex('302a300506032b6570032100', 'prefix');
const ED_PKCS8 = fromHex('302e020100300506032b657004220420', 'prefix');
const P256_SPKI = fromHex('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'prefix');
const P256_OID = fromHex('06082a8648ce3d030107', 'prefix');

function keyError(msg: string): CoapfwError {
  return new CoapfwError('KEY_INVALID', msg);
}

function startsWith(b: Uint8Array, p: Uint8Array): boolean {
  return b.length >= p.length && bytesEqual(b.subarray(0, p.length), p);
}

function pemBody(text: string, label: string): Uint8Array | undefined {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`);
  const m = re.exec(text);
  if (!m) return undefined;
  return new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
}

function toText(input: string | Uint8Array): string | undefined {
  if (typeof input === 'string') return input;
  const s = Buffer.from(input).toString('latin1');
  return /^[\x09\x0a\x0d\x20-\x7e]*$/.test(s) ? s : undefined;
}

/** Build a public key, checking it is a valid point. */
export function publicKeyFromBytes(type: SuitPublicKey['type'], bytes: Uint8Array, kid?: Uint8Array): SuitPublicKey {
  try {
    if (type === 'ed25519') {
      if (bytes.length !== 32) throw new Error(`expected 32 bytes, got ${bytes.length}`);
      ed25519.Point.fromBytes(bytes);
    } else {
      p256.Point.fromBytes(bytes);
    }
  } catch (e) {
    throw keyError(`${type} public key: not a valid key (${(e as Error).message})`);
  }
  return kid ? { type, bytes, kid } : { type, bytes };
}

/** Build a private key from its secret (Ed25519 seed or P-256 scalar). */
export function privateKeyFromSecret(type: SuitPrivateKey['type'], secret: Uint8Array, kid?: Uint8Array): SuitPrivateKey {
  if (secret.length !== 32) throw keyError(`${type} private key: expected 32 bytes, got ${secret.length}`);
  let pub: Uint8Array;
  try {
    pub = type === 'ed25519' ? ed25519.getPublicKey(secret) : p256.getPublicKey(secret, false);
  } catch (e) {
    throw keyError(`${type} private key: invalid (${(e as Error).message})`);
  }
  const publicKeyV = publicKeyFromBytes(type, pub, kid);
  return kid ? { type, secret, publicKey: publicKeyV, kid } : { type, secret, publicKey: publicKeyV };
}

/** Parse a public key from PEM (SPKI), COSE_Key CBOR, or hex. Throws KEY_INVALID. */
export function parsePublicKey(input: string | Uint8Array): SuitPublicKey {
  const text = toText(input);
  if (text !== undefined) {
    const der = pemBody(text, 'PUBLIC KEY');
    if (der) {
      if (startsWith(der, ED_SPKI) && der.length === ED_SPKI.length + 32) return publicKeyFromBytes('ed25519', der.subarray(ED_SPKI.length));
      if (startsWith(der, P256_SPKI) && der.length === P256_SPKI.length + 65) return publicKeyFromBytes('p256', der.subarray(P256_SPKI.length));
      throw keyError('PEM public key: neither Ed25519 nor P-256 SubjectPublicKeyInfo');
    }
    if (/-----BEGIN/.test(text)) throw keyError('PEM: expected a PUBLIC KEY block');
    const raw = fromHexKey(text);
    if (raw.length === 32) return publicKeyFromBytes('ed25519', raw);
    if (raw.length === 33 || raw.length === 65) return publicKeyFromBytes('p256', raw);
    throw keyError(`hex public key: ${raw.length} bytes is neither Ed25519 (32) nor P-256 (33/65)`);
  }
  const k = parseCoseKey(input as Uint8Array);
  return k.pub;
}

/** Parse a private key from PEM (PKCS#8 or SEC 1), COSE_Key CBOR, or hex (Ed25519 seed). Throws KEY_INVALID. */
export function parsePrivateKey(input: string | Uint8Array): SuitPrivateKey {
  const text = toText(input);
  if (text !== undefined) {
    const der = pemBody(text, 'PRIVATE KEY') ?? pemBody(text, 'EC PRIVATE KEY');
    if (der) {
      if (startsWith(der, ED_PKCS8) && der.length === ED_PKCS8.length + 32) return privateKeyFromSecret('ed25519', der.slice(ED_PKCS8.length));
      const scalar = ecScalar(der);
      if (scalar) return privateKeyFromSecret('p256', scalar);
      throw keyError('PEM private key: neither Ed25519 nor P-256');
    }
    if (/-----BEGIN/.test(text)) throw keyError('PEM: expected a PRIVATE KEY block');
    const raw = fromHexKey(text);
    if (raw.length === 32) return privateKeyFromSecret('ed25519', raw);
    throw keyError(`hex private key: expected a 32-byte Ed25519 seed, got ${raw.length} bytes`);
  }
  const k = parseCoseKey(input as Uint8Array);
  if (!k.priv) throw keyError('COSE_Key: no private part (label -4 / d)');
  return k.priv;
}

function fromHexKey(text: string): Uint8Array {
  try {
    return fromHex(text, 'key');
  } catch {
    throw keyError('key: not PEM, hex or COSE_Key');
  }
}

/** The P-256 private scalar of a PKCS#8 or SEC 1 DER structure (RFC 5915 §3: OCTET STRING of 32 after version 1). */
function ecScalar(der: Uint8Array): Uint8Array | undefined {
  let hasOid = false;
  for (let i = 0; i + P256_OID.length <= der.length && !hasOid; i++) hasOid = bytesEqual(der.subarray(i, i + P256_OID.length), P256_OID);
  if (!hasOid) return undefined;
  const marker = fromHex('0201010420', 'marker'); // ECPrivateKey: version 1, privateKey OCTET STRING (32)
  for (let i = 0; i + marker.length + 32 <= der.length; i++) {
    if (bytesEqual(der.subarray(i, i + marker.length), marker)) return der.slice(i + marker.length, i + marker.length + 32);
  }
  return undefined;
}

function parseCoseKey(bytes: Uint8Array): { pub: SuitPublicKey; priv?: SuitPrivateKey } {
  let m: Map<number, unknown>;
  try {
    m = intKeyed(decodeCbor(bytes, DEFAULT_SUIT_LIMITS, 'COSE_Key'), 'COSE_Key');
  } catch (e) {
    throw new CoapfwError('KEY_INVALID', `key: not PEM, hex or a COSE_Key (${(e as Error).message})`, { cause: e });
  }
  const b = (label: number): Uint8Array | undefined => {
    const v = m.get(label);
    return v instanceof Uint8Array ? new Uint8Array(v) : undefined;
  };
  const kid = b(2);
  const kty = m.get(1);
  const crv = m.get(-1);
  const d = b(-4);
  if (kty === 1 && crv === 6) {
    const x = b(-2);
    if (d) {
      const priv = privateKeyFromSecret('ed25519', d, kid);
      if (x && !bytesEqual(x, priv.publicKey.bytes)) throw keyError('COSE_Key: x does not match d');
      return { pub: priv.publicKey, priv };
    }
    if (!x) throw keyError('COSE_Key OKP: no x');
    return { pub: publicKeyFromBytes('ed25519', x, kid) };
  }
  if (kty === 2 && crv === 1) {
    if (d) {
      const priv = privateKeyFromSecret('p256', d, kid);
      return { pub: priv.publicKey, priv };
    }
    const x = b(-2);
    const y = b(-3);
    if (!x || !y || x.length !== 32 || y.length !== 32) throw keyError('COSE_Key EC2: x and y must be 32 bytes each');
    const point = new Uint8Array(65);
    point[0] = 4;
    point.set(x, 1);
    point.set(y, 33);
    return { pub: publicKeyFromBytes('p256', point, kid) };
  }
  throw keyError(`COSE_Key: unsupported kty ${String(kty)} / crv ${String(crv)} (Ed25519 or P-256 only)`);
}

/** Encode a key as COSE_Key (RFC 9053 §7): OKP/Ed25519 or EC2/P-256, with `d` for a private key. */
export function encodeCoseKey(key: SuitPublicKey | SuitPrivateKey): Uint8Array {
  const pub = 'secret' in key ? key.publicKey : key;
  const m = new Map<number, unknown>();
  if (pub.type === 'ed25519') {
    m.set(1, 1).set(-1, 6).set(-2, bstr(pub.bytes));
  } else {
    const pt = p256.Point.fromBytes(pub.bytes).toBytes(false);
    m.set(1, 2).set(-1, 1).set(-2, bstr(pt.subarray(1, 33))).set(-3, bstr(pt.subarray(33)));
  }
  if (key.kid) m.set(2, bstr(key.kid));
  if ('secret' in key) m.set(-4, bstr(key.secret));
  return encodeCbor(m);
}

/** Encode an Ed25519 or P-256 public key as SPKI PEM. */
export function publicKeyToPem(key: SuitPublicKey): string {
  const der = key.type === 'ed25519' ? concat(ED_SPKI, key.bytes) : concat(P256_SPKI, p256.Point.fromBytes(key.bytes).toBytes(false));
  return pem('PUBLIC KEY', der);
}

/** Encode an Ed25519 private key as PKCS#8 PEM (as OpenSSL writes it). P-256 is not written. */
export function privateKeyToPem(key: SuitPrivateKey): string {
  if (key.type !== 'ed25519') throw keyError('PEM export: only Ed25519 private keys are written');
  return pem('PRIVATE KEY', concat(ED_PKCS8, key.secret));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').trimEnd();
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
