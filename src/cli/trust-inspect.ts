/**
 * `coapfw trust inspect`: what a trust state, a trust document, a trust
 * chain or a public key file says, as text or JSON. Nothing is verified
 * (a document's signatures are listed by algorithm and key id, the RFC 9679
 * thumbprint of the signer); `coapfw trust apply` verifies on a device.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import {
  TRUST_KIND,
  decodeOwnerTransfer,
  decodeRevocationList,
  decodeTrustChain,
  decodeTrustDocument,
  decodeTrustState,
  decodeTrustUpdate,
  formatUuid,
  keyThumbprint,
  parsePublicKey,
  type SuitPublicKey,
  type TrustAnchorEntry,
  type TrustRole,
  type TrustScope,
  type TrustSet,
  type TrustState,
} from '../suit/index.js';

/** A description, JSON-ready. */
export type Described = Record<string, unknown>;

const key = (k: SuitPublicKey): Described => ({ keyType: k.type, thumbprint: bytesToHex(keyThumbprint(k)) });

function scope(s: TrustScope): unknown {
  if (s.kind !== 'component') return s.kind;
  return {
    ...(s.componentId ? { componentId: s.componentId.map((p) => bytesToHex(p)) } : {}),
    ...(s.vendorId ? { vendorId: formatUuid(s.vendorId) } : {}),
    ...(s.classId ? { classId: formatUuid(s.classId) } : {}),
  };
}

function setParts(anchors: readonly TrustAnchorEntry[], roles: readonly TrustRole[]): Described {
  return {
    anchors: anchors.map((a) => ({ name: a.name, ...key(a.publicKey) })),
    roles: roles.map((r) => ({ name: r.name, scope: scope(r.scope), threshold: r.threshold, signers: r.signers })),
  };
}

function describeSet(set: TrustSet): Described {
  return { version: set.version, ...(set.source === undefined ? {} : { source: set.source }), ...setParts(set.anchors, set.roles) };
}

/** A stored trust state. */
export function describeState(s: TrustState): Described {
  return {
    type: 'trust state',
    ...describeSet(s),
    owner: s.owner ? key(s.owner) : null,
    revocation: { sequence: s.revocation.sequence, revoked: s.revocation.revoked.map((r) => bytesToHex(r)) },
  };
}

function describeDocument(bytes: Uint8Array): Described {
  const { kind, signatures } = decodeTrustDocument(bytes);
  const sigs = signatures.map((g) => ({ alg: g.alg, ...(g.kid ? { kid: bytesToHex(g.kid) } : {}) }));
  if (kind === TRUST_KIND.trustUpdate) return { type: 'trust update', ...describeSet(decodeTrustUpdate(bytes).set), signatures: sigs };
  if (kind === TRUST_KIND.revocationList) {
    const { list } = decodeRevocationList(bytes);
    return { type: 'revocation list', sequence: list.sequence, revoked: list.revoked.map((r) => bytesToHex(r)), signatures: sigs };
  }
  const { transfer: t } = decodeOwnerTransfer(bytes);
  return {
    type: 'owner transfer',
    version: t.version,
    ...(t.source === undefined ? {} : { source: t.source }),
    ...(t.trust ? setParts(t.trust.anchors, t.trust.roles) : {}),
    ...(t.owner ? { newOwner: key(t.owner) } : {}),
    signatures: sigs,
  };
}

/** Whatever `bytes` holds (see the file comment); throws the decoder's typed error when it is none of them. */
export function describeTrustFile(bytes: Uint8Array): Described {
  const major = bytes.length > 0 ? bytes[0]! >> 5 : -1;
  if (major === 6) return describeDocument(bytes);
  if (major === 4) return { type: 'trust chain', documents: decodeTrustChain(bytes).map(describeDocument) };
  try {
    return describeState(decodeTrustState(bytes));
  } catch (e) {
    // A COSE_Key is a map too; any key format parsePublicKey reads is a key file.
    try {
      return { type: 'public key', ...key(parsePublicKey(bytes)) };
    } catch {
      throw e;
    }
  }
}

function scopeText(s: unknown): string {
  if (typeof s === 'string') return s;
  return Object.entries(s as Described)
    .map(([k, v]) => `${k} ${Array.isArray(v) ? `[${v.join(' ')}]` : String(v)}`)
    .join(', ');
}

/** The description as text for people. */
export function trustText(d: Described, indent = ''): string {
  const lines = [`${indent}${String(d.type)}${d.type === 'trust state' ? '' : ' (not verified)'}`];
  const put = (k: string, v: unknown): void => void lines.push(`${indent}  ${`${k}:`.padEnd(12)} ${String(v)}`);
  if (d.type === 'public key') put('thumbprint', `${String(d.thumbprint)} (${String(d.keyType)}, RFC 9679)`);
  for (const k of ['version', 'sequence', 'source'] as const) if (d[k] !== undefined) put(k, d[k]);
  for (const a of (d.anchors as Described[] | undefined) ?? []) put('anchor', `${String(a.name)} ${String(a.keyType)} ${String(a.thumbprint)}`);
  for (const r of (d.roles as Described[] | undefined) ?? []) {
    put('role', `${String(r.name)}: ${scopeText(r.scope)}; ${String(r.threshold)} of ${(r.signers as string[]).join(', ')}`);
  }
  if (d.owner !== undefined) put('owner', d.owner === null ? 'none (ownership cannot be transferred)' : String((d.owner as Described).thumbprint));
  if (d.newOwner !== undefined) put('new owner', (d.newOwner as Described).thumbprint);
  const rev = d.revocation as { sequence: number; revoked: string[] } | undefined;
  if (rev) put('revocation', `list ${rev.sequence}${rev.revoked.length > 0 ? `, revoked ${rev.revoked.join(', ')}` : ''}`);
  for (const r of (d.revoked as string[] | undefined) ?? []) put('revoked', r);
  for (const g of (d.signatures as Described[] | undefined) ?? []) put('signature', `alg ${String(g.alg)}${g.kid ? ` kid ${String(g.kid)}` : ''}`);
  if (d.type === 'trust chain') for (const doc of d.documents as Described[]) lines.push(trustText(doc, `${indent}  `).trimEnd());
  return `${lines.join('\n')}\n`;
}
