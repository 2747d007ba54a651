/**
 * How a manifest offers a differential update (src/delta/, format CFD1)
 * beside the full image, in SUIT's own terms (draft-ietf-suit-manifest-37):
 *
 * components: [ image-id, ['coapfw', 'delta'] ]
 * install = [
 *   try-each [                                        ; §8.4.10.2
 *     << [ set-component-index 0,                     ; 1. differential
 *          override-parameters { image-digest: SOURCE, image-size: source size },
 *          condition-image-match,                     ;    the installed image is the delta's source
 *          set-component-index 1,
 *          override-parameters { uri: delta URI, image-digest: DELTA, image-size: delta size,
 *                                ? coapfw-block-digests: of the delta },
 *          directive-fetch,
 *          condition-image-match,                     ;    the delta is the one signed
 *          set-component-index 0,
 *          override-parameters { source-component: 1, image-digest: NEW, image-size: new size,
 *                                coapfw-delta: << [1, frame-size] >>, ? coapfw-block-digests: of NEW },
 *          directive-copy,                            ;    with coapfw-delta: apply, not copy
 *          condition-image-match ] >>,                ;    the result is the new image
 *     << [ set-component-index 0,                     ; 2. the full image
 *          override-parameters { uri: image URI, image-digest: NEW, image-size: new size },
 *          directive-fetch, condition-image-match ] >>
 *   ]
 * ]
 *
 * A device whose installed image is not the source fails the first
 * condition, a soft failure inside try-each, and takes the full image; so
 * does a device that cannot apply deltas, which should treat coapfw-delta on
 * a copy as a failed condition. The delta component is never stored whole:
 * an updater fuses its fetch with the copy (the draft's processing model
 * lets an implementation optimise a fetch followed by a copy) and
 * streams delta blocks, each checked against the delta's block digests,
 * into the applier. coapfw-delta (key -25602, Private Use) is
 * `bstr .cbor [format: 1, frame-size: uint]`, so a device can refuse a frame
 * size that is not a multiple of its erase block before it fetches anything.
 */
import { CoapfwError } from '../errors.js';
import { bstr, decodeCbor, encodeCbor } from './cbor.js';
import { blockDigestsOf, blockDigestsParameter } from './block-digests-param.js';
import { ALG, COAPFW_PARAM, CONDITION, DIRECTIVE } from './constants.js';
import { DEFAULT_SUIT_LIMITS } from './limits.js';
import { mergeParameters } from './parameters.js';
import type { BlockDigestsInfo, ComponentId, SuitCommand, SuitDigest, SuitManifest, SuitParameters } from './types.js';
import { asArray, asBytes, asUint, malformed } from './values.js';

/** The delta component's id: ['coapfw', 'delta']. */
export const DELTA_COMPONENT_ID: ComponentId = [new TextEncoder().encode('coapfw'), new TextEncoder().encode('delta')];
/** The only delta format so far: CFD1. */
export const DELTA_FORMAT_CFD1 = 1;

/** What `createEnvelope({ ..., delta })` needs to offer a delta. */
export interface DeltaManifestInput {
  /** Where the delta is fetched (content-addressed). */
  readonly uri: string;
  /** SHA-256 of the delta (32 bytes) or a SUIT digest, and its size. */
  readonly digest: Uint8Array | SuitDigest;
  readonly size: number;
  /** The image the delta applies to: its digest and size. */
  readonly sourceDigest: Uint8Array | SuitDigest;
  readonly sourceSize: number;
  /** The delta's frame size (its header says the same). */
  readonly frameSize: number;
  /** Per-block digests of the delta bytes, so each delta block is checked before it is applied. */
  readonly blockDigests?: BlockDigestsInfo;
}

/** A decoded coapfw-delta parameter. */
export interface DeltaParam {
  readonly format: number;
  readonly frameSize: number;
}

function suitDigest(d: Uint8Array | SuitDigest, what: string): SuitDigest {
  const out = d instanceof Uint8Array ? { alg: ALG.sha256, bytes: d } : d;
  if (!out || !(out.bytes instanceof Uint8Array) || (out.alg === ALG.sha256 && out.bytes.length !== 32)) {
    throw new CoapfwError('INVALID_ARGUMENT', `createEnvelope: ${what}: expected 32 bytes of SHA-256`);
  }
  return out;
}

function uint(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new CoapfwError('INVALID_ARGUMENT', `createEnvelope: ${what}: expected an unsigned integer, got ${n}`);
  return n;
}

/** The coapfw-delta parameter as an entry for `SuitParameters.other`. */
export function deltaParameter(frameSize: number): [number, Uint8Array] {
  return [COAPFW_PARAM.delta, bstr(encodeCbor([DELTA_FORMAT_CFD1, uint(frameSize, 'delta frameSize')]))];
}

/** Decode a coapfw-delta value. Throws SUIT_MALFORMED, or SUIT_UNSUPPORTED for a format other than CFD1. */
export function decodeDeltaParam(v: unknown): DeltaParam {
  const a = asArray(decodeCbor(asBytes(v, 'coapfw-delta'), DEFAULT_SUIT_LIMITS, 'coapfw-delta'), 'coapfw-delta');
  if (a.length < 2) throw malformed('coapfw-delta: expected [format, frame-size]');
  const format = asUint(a[0], 'coapfw-delta format');
  if (format !== DELTA_FORMAT_CFD1) throw new CoapfwError('SUIT_UNSUPPORTED', `coapfw-delta: format ${format} is not known (1 = CFD1)`);
  return { format, frameSize: asUint(a[1], 'coapfw-delta frame-size') };
}

const other = (...entries: [number, Uint8Array][]): Pick<SuitParameters, 'other'> => (entries.length > 0 ? { other: new Map(entries) } : {});

/** The install sequence offering `delta`, falling back to the full image at `image.uri` (see the module comment). */
export function deltaInstallSequence(image: { uri: string; digest: SuitDigest; size: number; blockDigests?: BlockDigestsInfo }, delta: DeltaManifestInput): SuitCommand[] {
  const cond: SuitCommand = { kind: 'condition', code: CONDITION.imageMatch, policy: 15 };
  const fetch: SuitCommand = { kind: 'directive', code: DIRECTIVE.fetch, policy: 2 };
  const idx = (index: number): SuitCommand => ({ kind: 'set-component-index', index });
  const set = (params: SuitParameters): SuitCommand => ({ kind: 'override-parameters', params });
  const imageDigests = image.blockDigests ? [blockDigestsParameter(image.blockDigests)] : [];
  const differential: SuitCommand[] = [
    idx(0),
    set({ imageDigest: suitDigest(delta.sourceDigest, 'delta sourceDigest'), imageSize: uint(delta.sourceSize, 'delta sourceSize') }),
    cond,
    idx(1),
    set({ uri: delta.uri, imageDigest: suitDigest(delta.digest, 'delta digest'), imageSize: uint(delta.size, 'delta size'), ...other(...(delta.blockDigests ? [blockDigestsParameter(delta.blockDigests)] : [])) }),
    fetch,
    cond,
    idx(0),
    set({ sourceComponent: 1, imageDigest: image.digest, imageSize: image.size, ...other(deltaParameter(delta.frameSize), ...imageDigests) }),
    { kind: 'directive', code: DIRECTIVE.copy, policy: 2 },
    cond,
  ];
  const full: SuitCommand[] = [idx(0), set({ uri: image.uri, imageDigest: image.digest, imageSize: image.size, ...other(...imageDigests) }), fetch, cond];
  return [{ kind: 'try-each', branches: [differential, full], allowNone: false }];
}

/** A manifest's differential alternative, as `findDeltaAlternative` reads it. */
export interface DeltaAlternative {
  /** The image the delta applies to (the installed image must match it). */
  readonly source: { readonly componentIndex: number; readonly digest: SuitDigest; readonly size: number | undefined };
  /** The delta itself: where to fetch it, its digest and size, its frame size and block digests. */
  readonly delta: {
    readonly componentIndex: number;
    readonly uri: string;
    readonly digest: SuitDigest | undefined;
    readonly size: number | undefined;
    readonly frameSize: number;
    readonly blockDigests: BlockDigestsInfo | undefined;
  };
  /** The image the delta produces. */
  readonly target: { readonly digest: SuitDigest | undefined; readonly size: number | undefined; readonly blockDigests: BlockDigestsInfo | undefined };
}

/** Read one try-each branch; undefined unless it has the differential shape. */
function readBranch(m: SuitManifest, branch: readonly SuitCommand[]): DeltaAlternative | undefined {
  const params = new Map<number, SuitParameters>();
  let current = [0];
  const select = (c: SuitCommand): boolean => {
    if (c.kind === 'set-component-index') current = c.index === true ? m.components.map((_, i) => i) : typeof c.index === 'number' ? [c.index] : [...c.index];
    else if (c.kind === 'override-parameters') for (const i of current) params.set(i, mergeParameters(params.get(i), c.params));
    else return false;
    return true;
  };
  // §6.4: the shared sequence runs first, and each sequence starts at component 0.
  for (const c of m.sharedSequence) select(c);
  current = [0];
  let source: DeltaAlternative['source'] | undefined;
  const fetched = new Map<number, SuitParameters>();
  for (const c of branch) {
    if (select(c)) continue;
    if (c.kind === 'condition' && c.code === CONDITION.imageMatch && current.length === 1) {
      const p = params.get(current[0]!) ?? {};
      if (!source && !fetched.has(current[0]!) && p.imageDigest) source = { componentIndex: current[0]!, digest: p.imageDigest, size: p.imageSize };
    } else if (c.kind === 'directive' && c.code === DIRECTIVE.fetch && current.length === 1) fetched.set(current[0]!, params.get(current[0]!) ?? {});
    else if (c.kind === 'directive' && c.code === DIRECTIVE.copy && current.length === 1) {
      const p = params.get(current[0]!) ?? {};
      const d = p.other?.get(COAPFW_PARAM.delta);
      const fp = p.sourceComponent === undefined ? undefined : fetched.get(p.sourceComponent);
      if (d === undefined || !fp || !source || source.componentIndex !== current[0] || fp.uri === undefined) continue;
      return {
        source,
        delta: { componentIndex: p.sourceComponent!, uri: fp.uri, digest: fp.imageDigest, size: fp.imageSize, frameSize: decodeDeltaParam(d).frameSize, blockDigests: blockDigestsOf(fp) },
        target: { digest: p.imageDigest, size: p.imageSize, blockDigests: blockDigestsOf(p) },
      };
    }
  }
  return undefined;
}

/**
 * The differential alternative a manifest's install (or payload-fetch)
 * sequence offers in a try-each, or undefined. Throws SUIT_MALFORMED or
 * SUIT_UNSUPPORTED for a coapfw-delta or block-digest value it cannot read.
 */
export function findDeltaAlternative(m: SuitManifest): DeltaAlternative | undefined {
  for (const seq of [m.payloadFetch, m.install]) {
    for (const c of seq ?? []) {
      if (c.kind !== 'try-each') continue;
      for (const b of c.branches) {
        const alt = readBranch(m, b);
        if (alt) return alt;
      }
    }
  }
  return undefined;
}
