/**
 * Manifest from a JSON description in the input format of the SUIT WG's
 * `examples/example*.json` (suit-tool, "suit-manifest-generator"), so that the
 * same input yields the same manifest here and there. The command sequences
 * follow the WG examples 0-5 (draft-ietf-suit-manifest-37 Appendix B):
 * - shared: per install component, override vendor/class/digest/size, then
 *   vendor and class conditions; components with several entries for the same
 *   install-id (A/B slots) choose digest and size by slot in a try-each;
 * - validate: image-match per install component;
 * - payload-fetch (download-id): fetch into the download component;
 * - install: fetch from the uri (or copy from the download component);
 * - load (load-id): copy into the load component, image-match;
 * - invoke: the bootable components (not for slot choices, as suit-tool).
 * Set-component-index only appears when the manifest has several components.
 */
import { CoapfwError } from '../errors.js';
import { ALG, CONDITION, DIRECTIVE } from './constants.js';
import type { ManifestInput } from './encode.js';
import { checkManifestJson, COMPONENT_TEXT, MANIFEST_TEXT } from './json-input.js';
import type { ComponentId, SeverableMember, SuitCommand, SuitDigest, SuitParameters, SuitTextLang } from './types.js';
import { parseUuid } from './uuid.js';
import { fromHex, toHex } from './values.js';

/** One component entry of the JSON input. */
export interface JsonComponent {
  'install-id': string[];
  'install-digest'?: JsonDigest;
  'install-size'?: number;
  uri?: string;
  'vendor-id'?: string;
  'class-id'?: string;
  slot?: number;
  bootable?: boolean;
  'download-id'?: string[];
  'download-digest'?: JsonDigest;
  'download-size'?: number;
  'install-on-download'?: boolean;
  loadable?: boolean;
  'load-id'?: string[];
  'load-digest'?: JsonDigest;
  'load-size'?: number;
  description?: Record<string, Record<string, string>>;
  /**
   * Not in the WG format: the image file, from which {@link withImages} fills in
   * install-digest, install-size and (when absent) the content-address uri.
   */
  file?: string;
}
export interface JsonDigest {
  'algorithm-id': string | number;
  'digest-bytes': string;
}
/** The JSON input, as the WG's example*.json files. */
export interface JsonManifest {
  'manifest-version'?: number;
  'manifest-sequence-number': number | string;
  'reference-uri'?: string;
  components: JsonComponent[];
  description?: Record<string, Record<string, string>>;
  /** Sever install, payload-fetch and text into the envelope. */
  severable?: boolean;
  /** In the WG's example 2; accepted for compatibility, no effect (as in suit-tool's output). */
  'include-json'?: boolean;
}

const REP_ALL = 15; // send record and sysinfo on success and failure, as the WG examples
const REP_FAIL = 2;

function bad(msg: string): CoapfwError {
  return new CoapfwError('INVALID_ARGUMENT', msg);
}

function digest(d: JsonDigest | undefined, what: string): SuitDigest | undefined {
  if (d === undefined) return undefined;
  const a = d['algorithm-id'];
  const alg = a === 'sha256' || a === 'sha-256' ? ALG.sha256 : a === 'sha384' ? -43 : a === 'sha512' ? -44 : typeof a === 'number' ? a : NaN;
  if (Number.isNaN(alg)) throw bad(`${what}: unknown algorithm-id '${String(a)}'`);
  return { alg, bytes: fromHex(String(d['digest-bytes'] ?? ''), `${what} digest-bytes`) };
}

function cid(v: unknown, what: string): ComponentId {
  if (!Array.isArray(v) || v.length === 0) throw bad(`${what}: expected an array of hex strings`);
  return v.map((p, i) => fromHex(String(p), `${what}[${i}]`));
}

function size(v: unknown, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(`${what}: expected an unsigned integer`);
  return v;
}

const cond = (code: number): SuitCommand => ({ kind: 'condition', code, policy: REP_ALL });
const dir = (code: number): SuitCommand => ({ kind: 'directive', code, policy: REP_FAIL });
const override = (params: SuitParameters): SuitCommand => ({ kind: 'override-parameters', params });

/**
 * Compile the JSON description into a manifest and the members to sever.
 * Unknown keys, a component's unresolved "file" (see {@link withImages}) and
 * invalid URIs throw INVALID_ARGUMENT.
 */
export function compileManifest(json: JsonManifest): { manifest: ManifestInput; sever: SeverableMember[] } {
  checkManifestJson(json);
  const unresolved = json.components.findIndex((c) => c.file !== undefined);
  if (unresolved >= 0) throw bad(`components[${unresolved}] file: '${json.components[unresolved]!.file}' is not resolved: pass the image bytes through withImages() first`);
  const version = json['manifest-version'] ?? 1;
  if (version !== 1) throw bad(`manifest-version: only 1 is supported, got ${String(version)}`);
  const seqRaw = json['manifest-sequence-number'];
  if (!(typeof seqRaw === 'number' && Number.isSafeInteger(seqRaw) && seqRaw >= 0) && !(typeof seqRaw === 'string' && /^\d+$/.test(seqRaw))) {
    throw bad('manifest-sequence-number: expected an unsigned integer (a decimal string above 2^53)');
  }
  const sequenceNumber = BigInt(seqRaw);
  if (sequenceNumber >= 1n << 64n) throw bad('manifest-sequence-number: above 2^64 - 1');
  if (!Array.isArray(json.components) || json.components.length === 0) throw bad('components: expected a non-empty array');

  // Component ids: install-id, download-id, load-id of each entry, first appearance first.
  const ids: ComponentId[] = [];
  const index = new Map<string, number>();
  const idx = (c: ComponentId): number => {
    const k = c.map(toHex).join('/');
    let i = index.get(k);
    if (i === undefined) {
      i = ids.length;
      index.set(k, i);
      ids.push(c);
    }
    return i;
  };
  const groups = new Map<number, JsonComponent[]>();
  json.components.forEach((c, n) => {
    const w = `components[${n}]`;
    if (c === null || typeof c !== 'object') throw bad(`${w}: expected an object`);
    const i = idx(cid(c['install-id'], `${w} install-id`));
    if (c['download-id'] !== undefined) idx(cid(c['download-id'], `${w} download-id`));
    if (c['load-id'] !== undefined) idx(cid(c['load-id'], `${w} load-id`));
    groups.set(i, [...(groups.get(i) ?? []), c]);
  });
  const many = ids.length > 1;
  const setIndex = (i: number): SuitCommand[] => (many ? [{ kind: 'set-component-index', index: i }] : []);

  const shared: SuitCommand[] = [];
  const validate: SuitCommand[] = [];
  const install: SuitCommand[] = [];
  const payloadFetch: SuitCommand[] = [];
  const load: SuitCommand[] = [];
  const invoke: SuitCommand[] = [];
  for (const [i, choices] of groups) {
    const w = `component ${toHex(ids[i]![0] ?? new Uint8Array())}`;
    const params = choices.map((c): SuitParameters => ({
      vendorId: c['vendor-id'] === undefined ? undefined : parseUuid(c['vendor-id'], `${w} vendor-id`),
      classId: c['class-id'] === undefined ? undefined : parseUuid(c['class-id'], `${w} class-id`),
      imageDigest: digest(c['install-digest'], `${w} install-digest`),
      imageSize: size(c['install-size'], `${w} install-size`),
    }));
    const first = choices[0]!;
    shared.push(...setIndex(i));
    if (choices.length === 1) {
      shared.push(override(clean(params[0]!)));
    } else {
      // A/B: identity parameters common to all choices first, then digest and size by slot (example 3).
      shared.push(override(clean({ vendorId: params[0]!.vendorId, classId: params[0]!.classId })));
      shared.push(slotChoice(choices, (_c, k) => override(clean({ imageDigest: params[k]!.imageDigest, imageSize: params[k]!.imageSize })), w));
    }
    if (first['vendor-id'] !== undefined) shared.push(cond(CONDITION.vendorId));
    if (first['class-id'] !== undefined) shared.push(cond(CONDITION.classId));
    if (first['install-digest'] !== undefined) validate.push(...setIndex(i), cond(CONDITION.imageMatch));

    if (first['download-id'] !== undefined) {
      const d = idx(cid(first['download-id'], `${w} download-id`));
      payloadFetch.push(...setIndex(d), override(clean({
        imageDigest: digest(first['download-digest'], `${w} download-digest`),
        imageSize: size(first['download-size'], `${w} download-size`),
        uri: first.uri,
      })), dir(DIRECTIVE.fetch), cond(CONDITION.imageMatch));
      install.push(...setIndex(i), override({ sourceComponent: d }), dir(DIRECTIVE.copy), cond(CONDITION.imageMatch));
    } else if (choices.some((c) => c.uri !== undefined)) {
      install.push(...setIndex(i));
      if (choices.length === 1) install.push(override({ uri: first.uri! }));
      else install.push(slotChoice(choices, (c) => override({ uri: c.uri! }), w));
      install.push(dir(DIRECTIVE.fetch), cond(CONDITION.imageMatch));
    }
    if (first['load-id'] !== undefined) {
      const l = idx(cid(first['load-id'], `${w} load-id`));
      load.push(...setIndex(l), override(clean({
        imageDigest: digest(first['load-digest'], `${w} load-digest`),
        imageSize: size(first['load-size'], `${w} load-size`),
        sourceComponent: i,
      })), dir(DIRECTIVE.copy), cond(CONDITION.imageMatch));
    }
    if (first.bootable === true && choices.length === 1) {
      const target = first.loadable === true && first['load-id'] !== undefined ? idx(cid(first['load-id'], w)) : i;
      invoke.push(...setIndex(target), dir(DIRECTIVE.invoke));
    }
  }
  const text = compileText(json, ids, idx);
  const manifest: ManifestInput = {
    version: 1,
    sequenceNumber,
    components: ids,
    sharedSequence: shared,
    ...(json['reference-uri'] !== undefined ? { referenceUri: String(json['reference-uri']) } : {}),
    ...(validate.length ? { validate } : {}),
    ...(load.length ? { load } : {}),
    ...(invoke.length ? { invoke } : {}),
    ...(payloadFetch.length ? { payloadFetch } : {}),
    ...(install.length ? { install } : {}),
    ...(text.length ? { text } : {}),
  };
  const sever: SeverableMember[] = json.severable === true ? ['payloadFetch', 'install', 'text'] : [];
  return { manifest, sever };
}

function clean(p: SuitParameters): SuitParameters {
  return Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) as SuitParameters;
}

/** try-each over slots: [override slot, condition-component-slot, then `rest`] per choice (example 3). */
function slotChoice(choices: JsonComponent[], rest: (c: JsonComponent, k: number) => SuitCommand, w: string): SuitCommand {
  const branches = choices.map((c, k) => {
    if (typeof c.slot !== 'number') throw bad(`${w}: several entries for one install-id need a slot each`);
    // The WG's example 3 asks for records on success and sysinfo on success (policy 5) here.
    return [override({ componentSlot: c.slot }), { kind: 'condition', code: CONDITION.componentSlot, policy: 5 } as SuitCommand, rest(c, k)];
  });
  return { kind: 'try-each', branches, allowNone: false };
}

function fields(src: Record<string, string> | undefined, names: Readonly<Record<string, number>>): Map<number, string> {
  const out = new Map<number, string>();
  for (const [k, v] of Object.entries(src ?? {})) {
    const n = names[k];
    if (n !== undefined && typeof v === 'string') out.set(n, v);
  }
  return out;
}

function compileText(json: JsonManifest, ids: ComponentId[], idx: (c: ComponentId) => number): SuitTextLang[] {
  const langs = new Set<string>(Object.keys(json.description ?? {}));
  for (const c of json.components) for (const l of Object.keys(c.description ?? {})) langs.add(l);
  const out: SuitTextLang[] = [];
  for (const lang of langs) {
    const components = json.components
      .filter((c) => c.description?.[lang])
      .map((c) => ({ componentId: ids[idx(cid(c['install-id'], 'install-id'))]!, fields: fields(c.description![lang], COMPONENT_TEXT) }));
    out.push({ lang, fields: fields(json.description?.[lang], MANIFEST_TEXT), components });
  }
  return out;
}
