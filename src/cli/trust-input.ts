/**
 * What `coapfw trust` reads: a trust set as JSON (anchors naming public key
 * files, roles with their scopes), trust states (what `trust init` writes
 * and the device's trust store holds) and trust documents, each file read
 * with a size bound.
 *
 * ```json
 * {
 *   "version": 1,
 *   "source": "coaps://fw.example.com",
 *   "anchors": { "vendor-a": "keys/vendor-a.pub", "integrator": "keys/integrator.pub" },
 *   "roles": [
 *     { "name": "trust", "scope": "trust", "signers": ["integrator"] },
 *     { "name": "radio", "scope": { "component-id": ["01"], "vendor-id": "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe" },
 *       "signers": ["vendor-a"], "threshold": 1 }
 *   ]
 * }
 * ```
 * Key files are relative to the JSON file. A scope is "any-component",
 * "trust", or an object with at least one of component-id (hex parts, as
 * the SUIT WG's install-id), vendor-id, class-id (UUIDs). Unknown keys are
 * an error naming the closest known one: a typo must never widen a role.
 */
import { dirname, resolve } from 'node:path';
import { hexToBytes } from '@noble/hashes/utils.js';
import { readFileBounded } from '../bounded-read.js';
import { CoapfwError } from '../errors.js';
import { didYouMean } from '../suggest.js';
import { DEFAULT_TRUST_LIMITS, decodeTrustState, parseUuid, type TrustRole, type TrustScope, type TrustSet, type TrustState } from '../suit/index.js';
import { INPUT_LIMITS, labelled, readPublicKey } from './inputs.js';

/** Bound of a trust set JSON file. */
const JSON_LIMIT = 256 * 1024;
/** A trust chain: at most maxChainLength documents of maxDocumentBytes. */
export const TRUST_FILE_LIMIT = DEFAULT_TRUST_LIMITS.maxDocumentBytes * DEFAULT_TRUST_LIMITS.maxChainLength;

type Json = Record<string, unknown>;

function invalid(file: string, msg: string): CoapfwError {
  return new CoapfwError('INVALID_ARGUMENT', `${file}: ${msg}`, { path: file });
}

function object(v: unknown, file: string, what: string, keys: readonly string[]): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(file, `${what}: expected an object`);
  for (const k of Object.keys(v)) {
    if (!keys.includes(k)) {
      const near = didYouMean(k, keys);
      throw invalid(file, `${what}: unknown key "${k}"${near ? ` (did you mean "${near}"?)` : ''}`);
    }
  }
  return v as Json;
}

function text(v: unknown, file: string, what: string): string {
  if (typeof v !== 'string' || v === '') throw invalid(file, `${what}: expected a non-empty string`);
  return v;
}

function hexPart(v: unknown, file: string, what: string): Uint8Array {
  const s = typeof v === 'string' ? v : '';
  if (!/^([0-9a-fA-F]{2})*$/.test(s)) throw invalid(file, `${what}: expected hex digits (pairs), got ${JSON.stringify(v)}`);
  return hexToBytes(s.toLowerCase());
}

function scopeOf(v: unknown, file: string, what: string): TrustScope {
  if (v === 'any-component' || v === 'trust') return { kind: v };
  if (typeof v === 'string') throw invalid(file, `${what}: expected "any-component", "trust" or an object, got "${v}"`);
  const o = object(v, file, what, ['component-id', 'vendor-id', 'class-id']);
  const id = o['component-id'];
  if (id !== undefined && (!Array.isArray(id) || id.length === 0)) throw invalid(file, `${what}: component-id must be a non-empty array of hex strings`);
  const uuid = (k: string): Uint8Array | undefined => (o[k] === undefined ? undefined : labelled(file, () => parseUuid(text(o[k], file, `${what} ${k}`), `${what} ${k}`)));
  const vendorId = uuid('vendor-id');
  const classId = uuid('class-id');
  const componentId = (id as unknown[] | undefined)?.map((p, i) => hexPart(p, file, `${what} component-id[${i}]`));
  if (!componentId && !vendorId && !classId) throw invalid(file, `${what}: give component-id, vendor-id or class-id`);
  return { kind: 'component', ...(componentId ? { componentId } : {}), ...(vendorId ? { vendorId } : {}), ...(classId ? { classId } : {}) };
}

function roleOf(v: unknown, file: string, i: number): TrustRole {
  const what = `roles[${i}]`;
  const o = object(v, file, what, ['name', 'scope', 'signers', 'threshold']);
  const signers = o.signers;
  if (!Array.isArray(signers) || signers.length === 0) throw invalid(file, `${what}: signers must be a non-empty array of anchor names`);
  const threshold = o.threshold ?? 1;
  if (!Number.isSafeInteger(threshold)) throw invalid(file, `${what}: threshold must be an integer`);
  return { name: text(o.name, file, `${what} name`), scope: scopeOf(o.scope, file, `${what} scope`), signers: signers.map((s, j) => text(s, file, `${what} signers[${j}]`)), threshold: threshold as number };
}

/**
 * Read a trust set from JSON (see the file comment). `versionRequired`
 * false: a transfer may give anchors and roles and take its version from
 * `--version`; `versionGiven` says whether the file had one.
 */
export async function readTrustSetJson(file: string, versionRequired = true): Promise<TrustSet & { readonly versionGiven: boolean }> {
  const raw = new TextDecoder().decode(await readFileBounded(file, JSON_LIMIT, 'trust set JSON'));
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    throw invalid(file, `not JSON (${(e as Error).message})`);
  }
  const o = object(json, file, 'trust set', ['version', 'source', 'anchors', 'roles']);
  if (versionRequired && o.version === undefined) throw invalid(file, 'trust set: "version" is required');
  if (o.version !== undefined && (!Number.isSafeInteger(o.version) || (o.version as number) < 0)) throw invalid(file, 'trust set: version must be an integer >= 0');
  const anchorsJson = object(o.anchors, file, 'anchors', Object.keys((o.anchors ?? {}) as Json));
  if (!Array.isArray(o.roles)) throw invalid(file, 'trust set: "roles" must be an array');
  const anchors = [];
  for (const [name, keyFile] of Object.entries(anchorsJson)) {
    anchors.push({ name, publicKey: await readPublicKey(resolve(dirname(file), text(keyFile, file, `anchors.${name}`))) });
  }
  const set: TrustSet = {
    version: (o.version as number | undefined) ?? 0,
    anchors,
    roles: o.roles.map((r, i) => roleOf(r, file, i)),
    ...(o.source === undefined ? {} : { source: text(o.source, file, 'source') }),
  };
  return { ...set, versionGiven: o.version !== undefined };
}

/** A trust state file (`coapfw trust init` writes one). */
export async function readTrustStateFile(file: string): Promise<TrustState> {
  const bytes = await readFileBounded(file, INPUT_LIMITS.keyFile, 'trust state');
  return labelled(file, () => decodeTrustState(bytes));
}

/** A trust document or chain file. */
export function readTrustFile(file: string): Promise<Uint8Array> {
  return readFileBounded(file, TRUST_FILE_LIMIT, 'trust document');
}
