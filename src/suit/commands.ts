/**
 * SUIT_Command_Sequence and SUIT_Parameters, decode and encode
 * (draft-ietf-suit-manifest-37 §8.4.6-§8.4.10).
 */
import { CoapfwError } from '../errors.js';
import { bstr, decodeCbor, encodeCbor, isTag, tagged } from './cbor.js';
import { DIRECTIVE, PARAM, isConditionCode } from './constants.js';
import type { SuitLimits } from './limits.js';
import type { SuitCommand, SuitDigest, SuitParameters } from './types.js';
import {
  asArray,
  asBool,
  asBytes,
  asDigest,
  asInt,
  asText,
  asUint,
  intKeyed,
  malformed,
} from './values.js';

/** CBOR tag of an IANA Private Enterprise Number (§8.4.8.3). */
const TAG_PEN = 112;

/** Directives whose argument is a reporting policy (§8.4.10). */
const POLICY_DIRECTIVES: ReadonlySet<number> = new Set([
  DIRECTIVE.write,
  DIRECTIVE.fetch,
  DIRECTIVE.copy,
  DIRECTIVE.invoke,
  DIRECTIVE.swap,
]);

/** Decode a bstr .cbor SUIT_Command_Sequence. `depth` counts nested sequences (try-each, run-sequence). */
export function decodeSequence(bytes: Uint8Array, limits: SuitLimits, what: string, depth = 0): SuitCommand[] {
  if (depth > limits.maxSequenceDepth) {
    throw new CoapfwError('SUIT_LIMIT', `${what}: command sequences nested deeper than ${limits.maxSequenceDepth}`);
  }
  const arr = asArray(decodeCbor(bytes, limits, what), what);
  if (arr.length === 0 || arr.length % 2 !== 0) throw malformed(`${what}: a command sequence is a non-empty list of (code, argument) pairs`);
  const out: SuitCommand[] = [];
  for (let i = 0; i < arr.length; i += 2) {
    const code = asInt(arr[i], `${what} command ${i / 2} code`);
    out.push(decodeCommand(code, arr[i + 1], limits, `${what} command ${i / 2}`, depth));
  }
  return out;
}

function decodeCommand(code: number, arg: unknown, limits: SuitLimits, what: string, depth: number): SuitCommand {
  if (isConditionCode(code)) return { kind: 'condition', code, policy: asUint(arg, `${what} reporting policy`) };
  if (POLICY_DIRECTIVES.has(code)) return { kind: 'directive', code, policy: asUint(arg, `${what} reporting policy`) };
  switch (code) {
    case DIRECTIVE.setComponentIndex: {
      if (arg === true) return { kind: 'set-component-index', index: true };
      if (Array.isArray(arg)) {
        // §8.4.10.1: a list of components. Each later command runs once per
        // listed component, so a long (or repeated) list multiplies work.
        if (arg.length === 0) throw malformed(`${what}: empty component index list`);
        if (arg.length > limits.maxComponents) {
          throw new CoapfwError('SUIT_LIMIT', `${what}: component index list of ${arg.length} exceeds ${limits.maxComponents} components`);
        }
        const index = arg.map((x, j) => asUint(x, `${what} index ${j}`));
        if (new Set(index).size !== index.length) throw malformed(`${what}: component index list repeats an index`);
        return { kind: 'set-component-index', index };
      }
      return { kind: 'set-component-index', index: asUint(arg, `${what} component index`) };
    }
    case DIRECTIVE.overrideParameters:
      return { kind: 'override-parameters', params: decodeParameters(arg, limits, `${what} parameters`) };
    case DIRECTIVE.tryEach: {
      const a = asArray(arg, `${what} try-each`);
      const allowNone = a.length > 0 && a[a.length - 1] === null;
      const items = allowNone ? a.slice(0, -1) : a;
      if (items.length === 0) throw malformed(`${what}: try-each without alternatives`);
      const branches = items.map((b, j) => decodeSequence(asBytes(b, `${what} try-each ${j}`), limits, `${what} try-each ${j}`, depth + 1));
      return { kind: 'try-each', branches, allowNone };
    }
    case DIRECTIVE.runSequence:
      return { kind: 'run-sequence', sequence: decodeSequence(asBytes(arg, `${what} run-sequence`), limits, `${what} run-sequence`, depth + 1) };
    default:
      return { kind: 'unknown', code, arg };
  }
}

/** Decode SUIT_Parameters (§8.4.8); unknown keys are kept in `other`. */
export function decodeParameters(v: unknown, limits: SuitLimits, what: string): SuitParameters {
  const m = intKeyed(v, what);
  const p: SuitParameters = {};
  const other = new Map<number, unknown>();
  for (const [k, val] of m) {
    const w = `${what} key ${k}`;
    switch (k) {
      case PARAM.vendorId:
        // §8.4.8.3: RFC 4122 UUID, or a tagged PEN (#6.112(bstr)); keep the bytes of either.
        if (isTag(val, TAG_PEN)) {
          p.vendorId = asBytes(val.value, w);
          p.vendorIdIsPen = true;
        } else {
          p.vendorId = asBytes(val, w);
        }
        break;
      case PARAM.classId: p.classId = asBytes(val, w); break;
      case PARAM.imageDigest: p.imageDigest = asDigest(decodeCbor(asBytes(val, w), limits, w), w); break;
      case PARAM.componentSlot: p.componentSlot = asUint(val, w); break;
      case PARAM.imageSize: p.imageSize = asUint(val, w); break;
      case PARAM.uri: p.uri = asText(val, w); break;
      case PARAM.sourceComponent: p.sourceComponent = asUint(val, w); break;
      case PARAM.invokeArgs: p.invokeArgs = asBytes(val, w); break;
      case PARAM.deviceId: p.deviceId = asBytes(val, w); break;
      case PARAM.fetchArguments: p.fetchArguments = asBytes(val, w); break;
      case PARAM.content: p.content = asBytes(val, w); break;
      case PARAM.strictOrder: p.strictOrder = asBool(val, w); break;
      case PARAM.softFailure: p.softFailure = asBool(val, w); break;
      default: other.set(k, val);
    }
  }
  if (other.size > 0) p.other = other;
  return p;
}

/** Encode a SUIT_Digest as CBOR. */
export function encodeDigest(d: SuitDigest): Uint8Array {
  return encodeCbor([d.alg, bstr(d.bytes)]);
}

/** SUIT_Parameters as a cbor-x Map, keys in ascending order (as suit-tool writes them). */
export function parametersToCbor(p: SuitParameters): Map<number, unknown> {
  const entries: [number, unknown][] = [];
  if (p.vendorId) entries.push([PARAM.vendorId, p.vendorIdIsPen ? tagged(TAG_PEN, bstr(p.vendorId)) : bstr(p.vendorId)]);
  if (p.classId) entries.push([PARAM.classId, bstr(p.classId)]);
  if (p.imageDigest) entries.push([PARAM.imageDigest, bstr(encodeDigest(p.imageDigest))]);
  if (p.componentSlot !== undefined) entries.push([PARAM.componentSlot, p.componentSlot]);
  if (p.strictOrder !== undefined) entries.push([PARAM.strictOrder, p.strictOrder]);
  if (p.softFailure !== undefined) entries.push([PARAM.softFailure, p.softFailure]);
  if (p.imageSize !== undefined) entries.push([PARAM.imageSize, p.imageSize]);
  if (p.content) entries.push([PARAM.content, bstr(p.content)]);
  if (p.uri !== undefined) entries.push([PARAM.uri, p.uri]);
  if (p.sourceComponent !== undefined) entries.push([PARAM.sourceComponent, p.sourceComponent]);
  if (p.invokeArgs) entries.push([PARAM.invokeArgs, bstr(p.invokeArgs)]);
  if (p.deviceId) entries.push([PARAM.deviceId, bstr(p.deviceId)]);
  if (p.fetchArguments) entries.push([PARAM.fetchArguments, bstr(p.fetchArguments)]);
  for (const [k, v] of p.other ?? []) entries.push([k, v]);
  entries.sort((a, b) => a[0] - b[0]);
  return new Map(entries);
}

function commandToCbor(c: SuitCommand): [number, unknown] {
  switch (c.kind) {
    case 'condition':
    case 'directive':
      return [c.code, c.policy];
    case 'set-component-index':
      return [DIRECTIVE.setComponentIndex, c.index === true ? true : Array.isArray(c.index) ? [...c.index] : c.index];
    case 'override-parameters':
      return [DIRECTIVE.overrideParameters, parametersToCbor(c.params)];
    case 'try-each': {
      const branches: unknown[] = c.branches.map((b) => bstr(encodeSequence(b)));
      if (c.allowNone) branches.push(null);
      return [DIRECTIVE.tryEach, branches];
    }
    case 'run-sequence':
      return [DIRECTIVE.runSequence, bstr(encodeSequence(c.sequence))];
    case 'unknown':
      return [c.code, c.arg];
  }
}

/** Encode a command sequence (the content of its bstr). */
export function encodeSequence(cmds: readonly SuitCommand[]): Uint8Array {
  if (cmds.length === 0) throw new CoapfwError('INVALID_ARGUMENT', 'command sequence: must not be empty');
  return encodeCbor(cmds.flatMap((c) => commandToCbor(c)));
}
