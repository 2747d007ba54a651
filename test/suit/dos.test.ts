/**
 * Resource bounds of the interpreter and of describeEnvelope (manifest
 * inspect runs it on unauthenticated input): hostile manifests must fail with
 * SUIT_LIMIT (or SUIT_MALFORMED), not burn seconds of CPU and memory.
 */
import { describe, expect, test } from 'vitest';
import {
  createSignedEnvelope,
  decodeEnvelope,
  describeEnvelope,
  planUpdate,
  type ManifestInput,
  type SuitCommand,
  type SuitManifest,
} from '../../src/suit/index.js';

const limit = expect.objectContaining({ code: 'SUIT_LIMIT' });
const malformed = expect.objectContaining({ code: 'SUIT_MALFORMED' });
const digest = { alg: -16, bytes: new Uint8Array(32) };
const uri: SuitCommand = { kind: 'override-parameters', params: { uri: 'coap://x/a', imageDigest: digest } };
const fetch: SuitCommand = { kind: 'directive', code: 21, policy: 0 };
const imageMatch: SuitCommand = { kind: 'condition', code: 3, policy: 0 };
const abort: SuitCommand = { kind: 'condition', code: 14, policy: 0 };
const comps = (n: number): Uint8Array[][] => Array.from({ length: n }, (_, i) => [new Uint8Array([i])]);
const manifest = (over: Partial<ManifestInput>): SuitManifest => ({ version: 1, sequenceNumber: 1n, components: comps(1), sharedSequence: [], severed: {}, ...over });

describe('reviewer DoS envelopes', () => {
  test('dos: 255 repeated component indices, try-each fan-out: SUIT_LIMIT at decode', () => {
    const idx: SuitCommand = { kind: 'set-component-index', index: Array(255).fill(0) };
    const seqA = [idx, uri, ...Array<SuitCommand>(120).fill(fetch)];
    const seqB = [idx, uri, ...Array<SuitCommand>(120).fill({ kind: 'try-each', branches: [[imageMatch]], allowNone: false })];
    const env = createSignedEnvelope({
      version: 1, sequenceNumber: 1n, components: comps(1), sharedSequence: [],
      payloadFetch: seqA, install: seqA, validate: seqA, load: seqA,
      invoke: [{ kind: 'run-sequence', sequence: seqA }, { kind: 'run-sequence', sequence: seqB }, { kind: 'run-sequence', sequence: seqB }],
    }, []);
    expect(() => decodeEnvelope(env)).toThrow(limit);
    expect(() => describeEnvelope(env)).toThrow(limit);
  });

  test('dos2: describeEnvelope with 8 slot choices and 255-index lists: SUIT_LIMIT', () => {
    const idx: SuitCommand = { kind: 'set-component-index', index: Array(255).fill(0) };
    const seqA = [idx, { kind: 'override-parameters', params: { uri: 'coap://x/a', imageDigest: digest, componentSlot: 0 } } as SuitCommand, ...Array<SuitCommand>(120).fill(fetch)];
    const shared: SuitCommand[] = [];
    for (let s = 1; s < 8; s++) shared.push({ kind: 'override-parameters', params: { componentSlot: s } });
    const env = createSignedEnvelope({ version: 1, sequenceNumber: 1n, components: comps(1), sharedSequence: shared, invoke: Array(12).fill({ kind: 'run-sequence', sequence: seqA }) }, []);
    expect(() => describeEnvelope(env)).toThrow(limit);
  });

  test('the same shape within the index rules is charged per component and bounded by maxImages', () => {
    const seqA = [{ kind: 'set-component-index', index: 0 } as SuitCommand, uri, ...Array<SuitCommand>(120).fill(fetch)];
    const env = createSignedEnvelope({ version: 1, sequenceNumber: 1n, components: comps(1), sharedSequence: [], install: seqA }, []);
    expect(() => planUpdate(decodeEnvelope(env).manifest, {})).toThrow(limit);
    const s = describeEnvelope(env);
    expect(s.planError).toMatch(/more than 64/);
  });
});

describe('set-component-index', () => {
  test('the decoder rejects repeated indices and lists longer than maxComponents', () => {
    const mk = (index: number[]): Uint8Array => createSignedEnvelope({ version: 1, sequenceNumber: 1n, components: comps(2), sharedSequence: [], install: [{ kind: 'set-component-index', index }, uri, fetch] }, []);
    expect(() => decodeEnvelope(mk([0, 0]))).toThrow(malformed);
    expect(() => decodeEnvelope(mk(Array.from({ length: 17 }, (_, i) => i)))).toThrow(limit);
    expect(planUpdate(decodeEnvelope(mk([1, 0])).manifest, {}).images.map((i) => i.componentIndex)).toEqual([1, 0]);
  });

  test('the planner rejects repeated, too many or undeclared indices', () => {
    for (const index of [[0, 0], [0, 1], [1]]) {
      expect(() => planUpdate(manifest({ install: [{ kind: 'set-component-index', index }, uri, fetch] }), {})).toThrow(malformed);
    }
  });

  test('each command is charged once per selected component', () => {
    const install = (n: number): SuitCommand[] => [{ kind: 'set-component-index', index: true }, ...Array<SuitCommand>(n).fill(uri)];
    // 16 components: 1 + 120 * 16 = 1921 commands run, then 1 + 130 * 16 = 2081 > 2048.
    expect(() => planUpdate(manifest({ components: comps(16), install: install(120) }), {})).not.toThrow();
    expect(() => planUpdate(manifest({ components: comps(16), install: install(130) }), {})).toThrow(limit);
    expect(() => planUpdate(manifest({ components: comps(16), install: install(60) }), {}, { maxCommands: 900 })).toThrow(limit);
  });
});

describe('plan size and try-each rollback', () => {
  test('more than maxImages fetches is SUIT_LIMIT', () => {
    expect(planUpdate(manifest({ install: [uri, ...Array<SuitCommand>(64).fill(fetch)] }), {}).images).toHaveLength(64);
    expect(() => planUpdate(manifest({ install: [uri, ...Array<SuitCommand>(65).fill(fetch)] }), {})).toThrow(limit);
    expect(() => planUpdate(manifest({ install: [uri, fetch, fetch] }), {}, { maxImages: 1 })).toThrow(limit);
  });

  test('a failed try-each alternative leaves no image, check or parameter behind', () => {
    const p = planUpdate(manifest({
      install: [uri, fetch, {
        kind: 'try-each',
        branches: [
          [imageMatch, { kind: 'override-parameters', params: { uri: 'coap://x/b' } }, fetch, imageMatch, abort],
          [{ kind: 'override-parameters', params: { componentSlot: 1 } }],
        ],
        allowNone: false,
      }, fetch],
    }), {});
    expect(p.images.map((i) => [i.uri, i.slot, i.checks.length])).toEqual([['coap://x/a', undefined, 0], ['coap://x/a', 1, 0]]);
  });
});
