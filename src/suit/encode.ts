/**
 * Encoding and signing of SUIT envelopes (draft-ietf-suit-manifest-37 §8):
 * manifest model -> deterministic CBOR (map keys ascending, shortest
 * heads), SUIT_Digest over the bstr-wrapped manifest, one COSE_Sign1 per key,
 * severed members moved into the envelope on request.
 */
import { CoapfwError } from '../errors.js';
import { bstr, bstrContent, bstrWrap, cborInt, decodeCbor, encodeCbor, scanMap, tagged } from './cbor.js';
import { encodeDigest, encodeSequence } from './commands.js';
import { ALG, COMMON, ENVELOPE, MANIFEST, SEVERABLE, TAG_ENVELOPE } from './constants.js';
import { signSign1, type SignOptions } from './cose.js';
import { decodeEnvelope } from './decode.js';
import { computeDigest, digestMatches } from './digest.js';
import type { SuitPrivateKey } from './keys.js';
import { DEFAULT_SUIT_LIMITS } from './limits.js';
import type { SeverableMember, SuitManifest, SuitTextLang } from './types.js';
import { asArray, asBytes, intKey } from './values.js';

/** What to encode: a manifest without the `severed` bookkeeping of decoding. */
export type ManifestInput = Omit<SuitManifest, 'severed'> & { readonly severed?: SuitManifest['severed'] };

/** Options of `createSignedEnvelope`. */
export interface EnvelopeOptions {
  /** Members to sever: the manifest keeps their digest, the envelope their bytes (§8.4.11). */
  readonly sever?: readonly SeverableMember[];
  /** Integrated payloads (§7.5) to carry under text keys. */
  readonly integratedPayloads?: ReadonlyMap<string, Uint8Array>;
  /** Per-signature options (alg, kid), by key position. */
  readonly signOptions?: readonly SignOptions[];
  /** Write tag 107 (default true). */
  readonly tagged?: boolean;
}

function encodeText(text: readonly SuitTextLang[]): Uint8Array {
  const top = new Map<string, Map<unknown, unknown>>();
  for (const l of text) {
    const lm = new Map<unknown, unknown>([...l.fields].sort((a, b) => a[0] - b[0]));
    for (const c of l.components) {
      lm.set(c.componentId.map((p) => bstr(p)), new Map([...c.fields].sort((a, b) => a[0] - b[0])));
    }
    top.set(l.lang, lm);
  }
  return encodeCbor(top);
}

/**
 * Encode a manifest. Returns the manifest bytes and, for each severed member,
 * its bytes (the content of the bstr the envelope carries under the same key).
 */
export function encodeManifest(m: ManifestInput, sever: readonly SeverableMember[] = []): { manifest: Uint8Array; severed: Map<number, Uint8Array> } {
  if (m.version !== 1) throw new CoapfwError('INVALID_ARGUMENT', `manifest version: only 1 is defined, got ${m.version}`);
  if (typeof m.sequenceNumber !== 'bigint' || m.sequenceNumber < 0n || m.sequenceNumber >= 1n << 64n) {
    throw new CoapfwError('INVALID_ARGUMENT', 'manifest sequence number: expected a bigint 0..2^64-1');
  }
  const common = new Map<number, unknown>();
  if (m.components.length > 0) common.set(COMMON.components, m.components.map((c) => c.map((p) => bstr(p))));
  if (m.sharedSequence.length > 0) common.set(COMMON.sharedSequence, bstr(encodeSequence(m.sharedSequence)));
  const out = new Map<number, unknown>([
    [MANIFEST.version, 1],
    [MANIFEST.sequenceNumber, cborInt(m.sequenceNumber)],
    [MANIFEST.common, bstr(encodeCbor(common))],
  ]);
  if (m.referenceUri !== undefined) out.set(MANIFEST.referenceUri, m.referenceUri);
  if (m.validate) out.set(MANIFEST.validate, bstr(encodeSequence(m.validate)));
  if (m.load) out.set(MANIFEST.load, bstr(encodeSequence(m.load)));
  if (m.invoke) out.set(MANIFEST.invoke, bstr(encodeSequence(m.invoke)));
  const severed = new Map<number, Uint8Array>();
  for (const [name, key] of SEVERABLE) {
    const v = m[name];
    if (v === undefined) continue;
    const bytes = name === 'text' ? encodeText(v as readonly SuitTextLang[]) : encodeSequence(v as SuitManifest['install'] & object);
    if (sever.includes(name)) {
      const d = computeDigest(ALG.sha256, bstrWrap(bytes));
      out.set(key, [d.alg, bstr(d.bytes)]);
      severed.set(key, bytes);
    } else {
      out.set(key, bstr(bytes));
    }
  }
  return { manifest: encodeCbor(out), severed };
}

/** The encoded SUIT_Digest (SHA-256) of a manifest: the payload every signature covers. */
export function manifestDigest(manifest: Uint8Array): Uint8Array {
  return encodeDigest(computeDigest(ALG.sha256, bstrWrap(manifest)));
}

/** Assemble an envelope from its parts (no signing). */
export function assembleEnvelope(parts: {
  digest: Uint8Array;
  signatures: readonly Uint8Array[];
  manifest: Uint8Array;
  severed?: ReadonlyMap<number, Uint8Array>;
  integratedPayloads?: ReadonlyMap<string, Uint8Array>;
  tagged?: boolean;
}): Uint8Array {
  const auth = encodeCbor([bstr(parts.digest), ...parts.signatures.map((s) => bstr(s))]);
  const env = new Map<unknown, unknown>([
    [ENVELOPE.authenticationWrapper, bstr(auth)],
    [ENVELOPE.manifest, bstr(parts.manifest)],
  ]);
  for (const [k, v] of parts.severed ?? []) env.set(k, bstr(v));
  for (const [k, v] of parts.integratedPayloads ?? []) env.set(k, bstr(v));
  return encodeCbor(parts.tagged === false ? env : tagged(TAG_ENVELOPE, env));
}

/**
 * Encode a manifest and sign it with every key (multi-party: one COSE_Sign1
 * each, Ed25519 as -19 by default). With no keys the envelope has a
 * digest-only wrapper, as the WG's `*.unsigned.cbor` examples.
 */
export function createSignedEnvelope(m: ManifestInput, keys: readonly SuitPrivateKey[], opts: EnvelopeOptions = {}): Uint8Array {
  const { manifest, severed } = encodeManifest(m, opts.sever);
  const digest = manifestDigest(manifest);
  const signatures = keys.map((k, i) => signSign1(digest, k, opts.signOptions?.[i]));
  return assembleEnvelope({ digest, signatures, manifest, severed, integratedPayloads: opts.integratedPayloads, tagged: opts.tagged });
}

/**
 * Add signatures to an existing envelope (for example the operator
 * countersigning what the OEM signed). Only the authentication wrapper is
 * rebuilt; every other member (key and value) is copied byte for byte from
 * the input, whatever length encoding it used. Throws DIGEST_MISMATCH unless
 * the wrapper's digest is the digest of the manifest in this very envelope
 * (as encoded): the new signatures must never cover a different manifest.
 * Does not check the existing signatures (verify the envelope first for that).
 */
export function addSignatures(envelope: Uint8Array, keys: readonly SuitPrivateKey[], signOptions: readonly SignOptions[] = []): Uint8Array {
  const env = decodeEnvelope(envelope);
  // §8.3: the digest covers the manifest bstr exactly as encoded.
  if (!digestMatches(env.digest, env.manifestBstr)) {
    throw new CoapfwError('DIGEST_MISMATCH', 'authentication wrapper: its digest is not the digest of the manifest in this envelope; refusing to sign');
  }
  const lim = DEFAULT_SUIT_LIMITS;
  const scanned = scanMap(envelope, lim, 'envelope');
  const wrapper = scanned.entries.find((e) => intKey(e.key) === ENVELOPE.authenticationWrapper)!;
  const auth = asArray(decodeCbor(bstrContent(wrapper.valueBytes, 'authentication wrapper'), lim, 'authentication wrapper'), 'authentication wrapper');
  if (auth.length - 1 + keys.length > lim.maxSignatures) {
    throw new CoapfwError('SUIT_LIMIT', `authentication wrapper: ${auth.length - 1 + keys.length} blocks would exceed ${lim.maxSignatures}`);
  }
  const added = keys.map((k, i) => bstr(signSign1(env.digestBytes, k, signOptions[i])));
  const newAuth = bstrWrap(encodeCbor([...auth.map((a, i) => bstr(asBytes(a, `authentication block ${i}`))), ...added]));
  const parts: Uint8Array[] = [scanned.head];
  for (const e of scanned.entries) parts.push(e.keyBytes, e === wrapper ? newAuth : e.valueBytes);
  return Uint8Array.from(Buffer.concat(parts));
}
