/**
 * Decoding of SUIT_Envelope and SUIT_Manifest (draft-ietf-suit-manifest-37
 * §8.2-§8.4). Decoding checks structure and the digests of severed members
 * that the envelope carries; it does NOT authenticate: use `verifyEnvelope`.
 */
import { CoapfwError } from '../errors.js';
import { Tag, bstrContent, decodeCbor, isTag, leadingTag, scanMap } from './cbor.js';
import { decodeSequence } from './commands.js';
import { COMMON, ENVELOPE, HEADER, MANIFEST, SEVERABLE, TAG_COSE_SIGN1, TAG_ENVELOPE, TAG_MANIFEST, TAG_TRUST_DOCUMENT } from './constants.js';
import { digestMatches } from './digest.js';
import { suitLimits, type SuitLimits } from './limits.js';
import type {
  ComponentId,
  CoseSign1,
  DecodedEnvelope,
  SeverableMember,
  SuitCommand,
  SuitDigest,
  SuitManifest,
  SuitTextLang,
} from './types.js';
import { asArray, asBigUint, asBytes, asDigest, asInt, asMap, asText, asUint, intKey, intKeyed, malformed } from './values.js';

/**
 * Decode a SUIT_Envelope (tag 107 or untagged). Unknown keys are skipped.
 * Throws SUIT_MALFORMED, SUIT_LIMIT, SUIT_UNSUPPORTED, DIGEST_MISMATCH (a
 * severed member whose bytes do not match the manifest's digest of it) or
 * DOCUMENT_TYPE (the bytes are a coapfw trust document, not an envelope).
 */
export function decodeEnvelope(bytes: Uint8Array, limits?: Partial<SuitLimits>): DecodedEnvelope {
  const lim = suitLimits(limits);
  if (!(bytes instanceof Uint8Array)) throw new CoapfwError('INVALID_ARGUMENT', 'envelope: expected a Uint8Array');
  if (bytes.length > lim.maxEnvelopeBytes) {
    throw new CoapfwError('SUIT_LIMIT', `envelope: ${bytes.length} bytes exceeds the limit of ${lim.maxEnvelopeBytes}`);
  }
  if (leadingTag(bytes)?.tag === TAG_TRUST_DOCUMENT) {
    throw new CoapfwError('DOCUMENT_TYPE', 'envelope: these bytes are a coapfw trust document (trust update, revocation list or owner transfer), not a SUIT envelope');
  }
  // The envelope map's entries as encoded: the single source of truth. The
  // digest covers the manifest bstr exactly as encoded (§8.3: "the
  // bstr-wrapped manifest"), whatever length encoding the producer chose, and
  // the manifest acted upon is decoded from those same bytes.
  const scanned = scanMap(bytes, lim, 'envelope');
  if (scanned.tags.length > 1 || (scanned.tags.length === 1 && scanned.tags[0] !== TAG_ENVELOPE)) {
    throw malformed(`envelope: expected a map, tagged ${TAG_ENVELOPE} or untagged`);
  }
  const tagged = scanned.tags.length === 1;
  const integratedPayloads = new Map<string, Uint8Array>();
  const members = new Map<number, Uint8Array>();
  for (const { key, valueBytes } of scanned.entries) {
    if (typeof key === 'string') {
      if (integratedPayloads.has(key)) throw malformed(`envelope: duplicate integrated payload '${key}'`);
      integratedPayloads.set(key, bstrContent(valueBytes, `envelope integrated payload '${key}'`));
      continue;
    }
    const n = intKey(key);
    if (n === undefined) continue;
    // scanMap already rejects keys equal in value; this keeps the invariant local.
    if (members.has(n)) throw malformed(`envelope: duplicate member ${n}`);
    members.set(n, valueBytes);
  }
  const authEncoded = members.get(ENVELOPE.authenticationWrapper);
  if (authEncoded === undefined) throw malformed('envelope: no authentication wrapper (key 2)');
  const authBytes = bstrContent(authEncoded, 'authentication wrapper');
  const manifestBstr = members.get(ENVELOPE.manifest);
  if (manifestBstr === undefined) throw malformed('envelope manifest (key 3): missing');
  const manifestBytes = bstrContent(manifestBstr, 'envelope manifest (key 3)');

  const auth = asArray(decodeCbor(authBytes, lim, 'authentication wrapper'), 'authentication wrapper');
  if (auth.length === 0) throw malformed('authentication wrapper: empty, the digest is missing');
  const digestBytes = asBytes(auth[0], 'authentication wrapper digest');
  const digest = asDigest(decodeCbor(digestBytes, lim, 'authentication wrapper digest'), 'authentication wrapper digest');
  if (auth.length - 1 > lim.maxSignatures) {
    throw new CoapfwError('SUIT_LIMIT', `authentication wrapper: ${auth.length - 1} blocks exceeds ${lim.maxSignatures}`);
  }
  const signatures: CoseSign1[] = [];
  let otherAuthBlocks = 0;
  auth.slice(1).forEach((b, i) => {
    const s = decodeSign1(asBytes(b, `authentication block ${i}`), lim, `authentication block ${i}`);
    if (s) signatures.push(s);
    else otherAuthBlocks++;
  });

  const severedBytes = new Map<SeverableMember, SeveredMember>();
  for (const [name, key] of SEVERABLE) {
    const encoded = members.get(key);
    if (encoded !== undefined) severedBytes.set(name, { content: bstrContent(encoded, `envelope severed member ${key}`), encoded });
  }
  const manifest = decodeManifest(manifestBytes, lim, severedBytes);
  return { digest, digestBytes, signatures, otherAuthBlocks, manifestBytes, manifestBstr, manifest, integratedPayloads, tagged };
}

/**
 * Decode a COSE_Sign1 (RFC 9052 §4.2), tagged 18 or untagged. Returns
 * undefined for the other tagged COSE structures (COSE_Sign, COSE_Mac,
 * COSE_Mac0), which are counted but not used.
 */
export function decodeSign1(bytes: Uint8Array, lim: SuitLimits, what: string): CoseSign1 | undefined {
  let v = decodeCbor(bytes, lim, what);
  if (v instanceof Tag && v.tag !== TAG_COSE_SIGN1) {
    if (v.tag === 98 || v.tag === 97 || v.tag === 17) return undefined;
    throw malformed(`${what}: not a COSE structure (tag ${String(v.tag)})`);
  }
  if (isTag(v, TAG_COSE_SIGN1)) v = v.value;
  const a = asArray(v, what);
  if (a.length !== 4) throw malformed(`${what}: COSE_Sign1 must have 4 elements`);
  const protectedBytes = asBytes(a[0], `${what} protected header`);
  const prot = protectedBytes.length === 0 ? new Map<number, unknown>() : intKeyed(decodeCbor(protectedBytes, lim, `${what} protected header`), `${what} protected header`);
  const unprot = intKeyed(a[1], `${what} unprotected header`);
  if (!prot.has(HEADER.alg)) throw malformed(`${what}: no algorithm in the protected header`);
  // RFC 9052 §3.1: crit lists labels the recipient must understand; we process
  // none beyond alg and kid, so any crit header is unsupported (and crit is
  // only meaningful in the protected header).
  if (unprot.has(HEADER.crit)) throw malformed(`${what}: crit in the unprotected header`);
  if (prot.has(HEADER.crit)) throw new CoapfwError('SUIT_UNSUPPORTED', `${what}: critical header parameters are not supported`);
  const alg = asInt(prot.get(HEADER.alg), `${what} alg`);
  const kidV = prot.get(HEADER.kid) ?? unprot.get(HEADER.kid);
  const payload = a[2] === null ? null : asBytes(a[2], `${what} payload`);
  const signature = asBytes(a[3], `${what} signature`);
  const ctV = prot.get(HEADER.contentType);
  const ct = ctV === undefined || typeof ctV === 'string' ? ctV : asUint(ctV, `${what} content type`);
  return {
    protectedBytes,
    alg,
    ...(kidV === undefined ? {} : { kid: asBytes(kidV, `${what} kid`) }),
    ...(ct === undefined ? {} : { contentType: ct }),
    payload,
    signature,
  };
}

/** A severed member as the envelope carries it: the bstr's content and its full encoding. */
export interface SeveredMember {
  readonly content: Uint8Array;
  /** The bstr as encoded in the envelope, header included: what the manifest's digest covers. */
  readonly encoded: Uint8Array;
}

/**
 * Decode a SUIT_Manifest (the content of the envelope's manifest bstr, or a
 * SUIT_Manifest_Tagged). `severedBytes` are the envelope's copies of severed
 * members; each must match the digest the manifest holds for it.
 */
export function decodeManifest(
  bytes: Uint8Array,
  limits?: Partial<SuitLimits>,
  severedBytes: ReadonlyMap<SeverableMember, SeveredMember> = new Map(),
): SuitManifest {
  const lim = suitLimits(limits);
  let top = decodeCbor(bytes, lim, 'manifest');
  if (isTag(top, TAG_MANIFEST)) top = top.value;
  const m = intKeyed(top, 'manifest');
  const version = asInt(m.get(MANIFEST.version), 'manifest version (key 1)');
  if (version !== 1) throw new CoapfwError('SUIT_UNSUPPORTED', `manifest version ${version}: only version 1 is supported`);
  const sequenceNumber = asBigUint(m.get(MANIFEST.sequenceNumber), 'manifest sequence number (key 2)');
  if (sequenceNumber >= 1n << 64n) throw malformed('manifest sequence number: above 2^64 - 1');
  const common = intKeyed(decodeCbor(asBytes(m.get(MANIFEST.common) ?? null, 'manifest common (key 3)'), lim, 'common'), 'common');
  const components = decodeComponents(common.get(COMMON.components), lim);
  const shared = common.get(COMMON.sharedSequence);
  const sharedSequence = shared === undefined ? [] : decodeSequence(asBytes(shared, 'shared sequence'), lim, 'shared sequence');
  const seq = (key: number, name: string): SuitCommand[] | undefined => {
    const v = m.get(key);
    return v === undefined ? undefined : decodeSequence(asBytes(v, name), lim, name);
  };
  const out: {
    -readonly [K in keyof SuitManifest]: SuitManifest[K];
  } = { version, sequenceNumber, components, sharedSequence, severed: {} };
  const ref = m.get(MANIFEST.referenceUri);
  if (ref !== undefined) out.referenceUri = asText(ref, 'reference URI');
  const validate = seq(MANIFEST.validate, 'validate');
  if (validate) out.validate = validate;
  const load = seq(MANIFEST.load, 'load');
  if (load) out.load = load;
  const invoke = seq(MANIFEST.invoke, 'invoke');
  if (invoke) out.invoke = invoke;

  const severed: Partial<Record<SeverableMember, SuitDigest>> = {};
  for (const [name, key] of SEVERABLE) {
    let v = m.get(key);
    if (v === undefined) {
      if (severedBytes.has(name)) throw malformed(`envelope: severed member ${key} without its digest in the manifest`);
      continue;
    }
    if (Array.isArray(v)) {
      // §8.4.11: the manifest holds the digest of the bstr-wrapped member.
      const d = asDigest(v, `severed ${name} digest`);
      severed[name] = d;
      const b = severedBytes.get(name);
      if (b === undefined) continue;
      if (!digestMatches(d, b.encoded)) throw new CoapfwError('DIGEST_MISMATCH', `severed ${name} (key ${key}): bytes do not match the manifest's digest`);
      v = b.content;
    } else if (severedBytes.has(name)) {
      throw malformed(`envelope: member ${key} both in the manifest and severed`);
    }
    const bytesV = asBytes(v, name);
    if (name === 'text') out.text = decodeText(bytesV, lim);
    else out[name] = decodeSequence(bytesV, lim, name === 'install' ? 'install' : 'payload-fetch');
  }
  out.severed = severed;
  return out;
}

function decodeComponents(v: unknown, lim: SuitLimits): ComponentId[] {
  if (v === undefined) return [];
  const a = asArray(v, 'components');
  if (a.length === 0) throw malformed('components: empty list');
  if (a.length > lim.maxComponents) throw new CoapfwError('SUIT_LIMIT', `components: ${a.length} exceeds ${lim.maxComponents}`);
  return a.map((c, i) => asArray(c, `component ${i}`).map((p, j) => asBytes(p, `component ${i} part ${j}`)));
}

/** SUIT_Text_Map (§8.4.4): language tag -> fields and per-component fields. */
function decodeText(bytes: Uint8Array, lim: SuitLimits): SuitTextLang[] {
  const top = asMap(decodeCbor(bytes, lim, 'text'), 'text');
  const out: SuitTextLang[] = [];
  for (const [lang, lmap] of top) {
    if (typeof lang !== 'string') continue;
    const fields = new Map<number, string>();
    const components: { componentId: ComponentId; fields: Map<number, string> }[] = [];
    for (const [k, v] of asMap(lmap, `text '${lang}'`)) {
      const n = intKey(k);
      if (n !== undefined) {
        if (typeof v === 'string') fields.set(n, v);
      } else if (Array.isArray(k)) {
        const cf = new Map<number, string>();
        for (const [ck, cv] of intKeyed(v, `text '${lang}' component`)) if (typeof cv === 'string') cf.set(ck, cv);
        components.push({ componentId: k.map((p, j) => asBytes(p, `text component id part ${j}`)), fields: cf });
      }
    }
    out.push({ lang, fields, components });
  }
  return out;
}
