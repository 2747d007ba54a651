/**
 * A JSON-friendly summary of an envelope for people and scripts (`coapfw
 * manifest inspect`): sequence number, components, and each image's digest,
 * size and URI. A/B manifests list the image of every slot choice.
 */
import { CoapfwError } from '../errors.js';
import { decodeEnvelope } from './decode.js';
import { commandName } from './constants.js';
import type { SuitLimits } from './limits.js';
import { planUpdate, type PlannedImage } from './plan.js';
import type { DecodedEnvelope, SuitCommand, SuitManifest } from './types.js';
import { formatUuid } from './uuid.js';
import { toHex } from './values.js';

/** Summary of an envelope; byte strings as hex, the sequence number as a decimal string if above 2^53. */
export interface EnvelopeSummary {
  readonly sequenceNumber: number | string;
  readonly components: string[][];
  readonly images: {
    readonly component: string[];
    readonly sequence: string;
    readonly action: 'fetch' | 'copy';
    readonly slot?: number;
    readonly uri?: string;
    readonly digest?: { readonly alg: number; readonly hex: string };
    readonly size?: number;
  }[];
  readonly signatures: { readonly alg: number; readonly kid?: string }[];
  /** Vendor and class ids the manifest sets, whichever component: UUIDs with dashes (plain hex when not 16 bytes). */
  readonly vendorIds: string[];
  readonly classIds: string[];
  readonly digest: { readonly alg: number; readonly hex: string };
  readonly severed: string[];
  readonly referenceUri?: string;
  readonly text: Record<string, Record<string, string>>;
  readonly sequences: Record<string, string[]>;
  /** Why no image could be planned, if so. */
  readonly planError?: string;
}

/** Most slot values `describeEnvelope` plans for. */
const MAX_SLOT_CHOICES = 8;

function slotsIn(seq: readonly SuitCommand[] | undefined, out: Set<number>): void {
  for (const c of seq ?? []) {
    if (c.kind === 'override-parameters' && c.params.componentSlot !== undefined) out.add(c.params.componentSlot);
    else if (c.kind === 'try-each') for (const b of c.branches) slotsIn(b, out);
    else if (c.kind === 'run-sequence') slotsIn(c.sequence, out);
  }
}

function ids(seq: readonly SuitCommand[] | undefined, vendor: Set<string>, cls: Set<string>): void {
  for (const c of seq ?? []) {
    if (c.kind === 'override-parameters') {
      if (c.params.vendorId) vendor.add(formatUuid(c.params.vendorId));
      if (c.params.classId) cls.add(formatUuid(c.params.classId));
    } else if (c.kind === 'try-each') for (const b of c.branches) ids(b, vendor, cls);
    else if (c.kind === 'run-sequence') ids(c.sequence, vendor, cls);
  }
}

function images(m: SuitManifest, limits?: Partial<SuitLimits>): { list: PlannedImage[]; error?: string } {
  const slots = new Set<number>();
  for (const s of [m.sharedSequence, m.payloadFetch, m.install, m.validate, m.load, m.invoke]) slotsIn(s, slots);
  // Bounded: a hostile manifest could name thousands of slots, each costing a plan.
  const choices: (number | undefined)[] = slots.size > 0 ? [...slots].sort((a, b) => a - b).slice(0, MAX_SLOT_CHOICES) : [undefined];
  const seen = new Set<string>();
  const list: PlannedImage[] = [];
  let error: string | undefined;
  for (const slot of choices) {
    try {
      for (const img of planUpdate(m, { componentSlot: slot }, limits).images) {
        const key = `${img.componentIndex}|${img.sequence}|${img.action}|${img.slot}|${img.uri}|${img.digest ? toHex(img.digest.bytes) : ''}|${img.size}`;
        if (!seen.has(key)) {
          seen.add(key);
          list.push(img);
        }
      }
    } catch (e) {
      error = (e as Error).message;
      // A resource limit would be hit again for every other slot: stop here.
      if (e instanceof CoapfwError && e.code === 'SUIT_LIMIT') break;
    }
  }
  return list.length > 0 || error === undefined ? { list } : { list, error };
}

function names(seq: readonly SuitCommand[] | undefined): string[] {
  return (seq ?? []).map((c) => (c.kind === 'condition' || c.kind === 'directive' || c.kind === 'unknown' ? commandName(c.code) : `directive-${c.kind}`));
}

/** Summarise a decoded envelope (not verified: say so to the user). */
export function summarizeEnvelope(env: DecodedEnvelope, limits?: Partial<SuitLimits>): EnvelopeSummary {
  const m = env.manifest;
  const seq = m.sequenceNumber <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(m.sequenceNumber) : m.sequenceNumber.toString();
  const imgs = images(m, limits);
  const text: Record<string, Record<string, string>> = {};
  for (const l of m.text ?? []) {
    const t: Record<string, string> = {};
    for (const [k, v] of l.fields) t[String(k)] = v;
    for (const c of l.components) for (const [k, v] of c.fields) t[`${c.componentId.map(toHex).join('/')}:${k}`] = v;
    text[l.lang] = t;
  }
  const vendorIds = new Set<string>();
  const classIds = new Set<string>();
  for (const sq of [m.sharedSequence, m.payloadFetch, m.install, m.validate, m.load, m.invoke]) ids(sq, vendorIds, classIds);
  const sequences: Record<string, string[]> = {};
  const all: [string, readonly SuitCommand[] | undefined][] = [
    ['shared', m.sharedSequence], ['validate', m.validate], ['load', m.load], ['invoke', m.invoke], ['payload-fetch', m.payloadFetch], ['install', m.install],
  ];
  for (const [k, s] of all) if (s && s.length > 0) sequences[k] = names(s);
  return {
    sequenceNumber: seq,
    components: m.components.map((c) => c.map(toHex)),
    images: imgs.list.map((i) => ({
      component: i.componentId.map(toHex),
      sequence: i.sequence,
      action: i.action,
      ...(i.slot !== undefined ? { slot: i.slot } : {}),
      ...(i.uri !== undefined ? { uri: i.uri } : {}),
      ...(i.digest ? { digest: { alg: i.digest.alg, hex: toHex(i.digest.bytes) } } : {}),
      ...(i.size !== undefined ? { size: i.size } : {}),
    })),
    signatures: env.signatures.map((s) => (s.kid ? { alg: s.alg, kid: toHex(s.kid) } : { alg: s.alg })),
    vendorIds: [...vendorIds],
    classIds: [...classIds],
    digest: { alg: env.digest.alg, hex: toHex(env.digest.bytes) },
    severed: Object.keys(m.severed),
    ...(m.referenceUri !== undefined ? { referenceUri: m.referenceUri } : {}),
    text,
    sequences,
    ...(imgs.error !== undefined ? { planError: imgs.error } : {}),
  };
}

/** Decode (without verifying) and summarise an envelope. */
export function describeEnvelope(bytes: Uint8Array, limits?: Partial<SuitLimits>): EnvelopeSummary {
  return summarizeEnvelope(decodeEnvelope(bytes, limits), limits);
}
