/**
 * The planner with what the device knows (issue 13): an image-match before
 * any fetch in install is evaluated against the installed image, so a delta
 * whose source is not installed fails softly and try-each takes the full
 * image; plans carry the block digests and the delta parameter; overrides
 * merge custom parameters key by key.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { bstr, encodeCbor } from '../../src/suit/cbor.js';
import { buildBlockDigests } from '../../src/suit/block-digests.js';
import { blockDigestsParameter } from '../../src/suit/block-digests-param.js';
import { COAPFW_PARAM } from '../../src/suit/constants.js';
import { createEnvelope } from '../../src/suit/create.js';
import { deltaParameter } from '../../src/suit/delta-manifest.js';
import { privateKeyFromSecret } from '../../src/suit/keys.js';
import { planUpdate, type DeviceIdentity } from '../../src/suit/plan.js';
import type { SuitCommand, SuitManifest } from '../../src/suit/types.js';
import { verifyEnvelope } from '../../src/suit/verify.js';

const key = privateKeyFromSecret('ed25519', new Uint8Array(32).fill(3));
const OLD = new Uint8Array(5000).fill(1);
const NEW = new Uint8Array(6000).fill(2);
const DELTA = new Uint8Array(700).fill(3);
const newDigests = buildBlockDigests(NEW, { blockSize: 1024, uri: '/fw/sha256/nd' }).info;
const deltaDigests = buildBlockDigests(DELTA, { blockSize: 1024, uri: '/fw/sha256/dd' }).info;

function manifest(): SuitManifest {
  const env = createEnvelope(
    {
      sequence: 2, vendorId: new Uint8Array(16).fill(1), classId: new Uint8Array(16).fill(2), uri: '/fw/sha256/new', digest: sha256(NEW), size: NEW.length, blockDigests: newDigests,
      delta: { uri: '/fw/sha256/delta', digest: sha256(DELTA), size: DELTA.length, sourceDigest: sha256(OLD), sourceSize: OLD.length, frameSize: 1024, blockDigests: deltaDigests },
    },
    [key],
  );
  return verifyEnvelope(env, { trust: { anchors: [{ name: 'k', publicKey: key.publicKey }] } }).manifest;
}

const installed = (img: Uint8Array | null): DeviceIdentity['installed'] => () => (img === null ? null : { digest: { alg: -16, bytes: sha256(img) }, size: img.length });
const shape = (d: DeviceIdentity) => planUpdate(manifest(), d).images.map((i) => [i.action, i.componentIndex, i.uri ?? `copy from ${i.sourceComponent}`]);

describe('planning a delta against the installed image', () => {
  it('the installed image is the source: fetch the delta (its block digests), apply it into the image (coapfw-delta, the new block digests)', () => {
    const p = planUpdate(manifest(), { installed: installed(OLD) });
    expect(p.images.map((i) => [i.action, i.componentIndex])).toEqual([['fetch', 1], ['copy', 0]]);
    expect(p.images[0]).toMatchObject({ uri: '/fw/sha256/delta', blockDigests: deltaDigests });
    expect(p.images[1]).toMatchObject({ sourceComponent: 1, delta: { format: 1, frameSize: 1024 }, blockDigests: newDigests });
    expect(p.images[1]!.checks).toEqual([{ kind: 'image-match', digest: { alg: -16, bytes: sha256(NEW) }, size: NEW.length }]);
    expect(p.conditionsChecked).toContain('image-match');
    expect(p.unchecked).not.toContain('image-match');
    // The source check is not left for secure boot: only the manifest's own validate check of the new image is.
    expect(p.validate.map((v) => v.check.digest!.bytes)).toEqual([sha256(NEW)]);
  });

  it('another image installed, or none: a soft failure, and try-each takes the full image', () => {
    const full = [['fetch', 0, '/fw/sha256/new']];
    expect(shape({ installed: installed(NEW) })).toEqual(full);
    expect(shape({ installed: installed(null) })).toEqual(full);
    expect(shape({ installed: () => ({ digest: { alg: -16, bytes: sha256(OLD) }, size: OLD.length + 1 }) })).toEqual(full);
    expect(planUpdate(manifest(), { installed: installed(NEW) }).images[0]!.blockDigests).toEqual(newDigests);
  });

  it('a device that does not apply deltas takes the full image even when its image is the source', () => {
    expect(shape({ installed: installed(OLD), applyDeltas: false })).toEqual([['fetch', 0, '/fw/sha256/new']]);
  });

  it('a device that does not say what it runs: the delta branch, with image-match listed as unchecked', () => {
    const p = planUpdate(manifest(), {});
    expect(p.images.map((i) => i.action)).toEqual(['fetch', 'copy']);
    expect(p.unchecked).toContain('image-match');
  });

  it('a delta format this planner does not know is a delta it cannot apply: the full image', () => {
    const m = manifest();
    const fix = (cmds: readonly SuitCommand[]): SuitCommand[] =>
      cmds.map((c) =>
        c.kind === 'try-each'
          ? { ...c, branches: c.branches.map(fix) }
          : c.kind === 'override-parameters' && c.params.other?.has(COAPFW_PARAM.delta)
            ? { ...c, params: { ...c.params, other: new Map([...c.params.other, [COAPFW_PARAM.delta, bstr(encodeCbor([2, 1024]))]]) } }
            : c,
      );
    const p = planUpdate({ ...m, install: fix(m.install!) }, { installed: installed(OLD) });
    expect(p.images.map((i) => [i.action, i.componentIndex])).toEqual([['fetch', 0]]);
  });
});

describe('override-parameters and custom keys', () => {
  it('a later override adding one custom key keeps the custom keys set before (key by key, §8.4.10.3)', () => {
    const cmds: SuitCommand[] = [
      { kind: 'set-component-index', index: 0 },
      { kind: 'override-parameters', params: { imageDigest: { alg: -16, bytes: sha256(NEW) }, imageSize: NEW.length, other: new Map([blockDigestsParameter(newDigests), [-30000, 7]]) } },
      { kind: 'override-parameters', params: { sourceComponent: 1, other: new Map([deltaParameter(1024)]) } },
      { kind: 'directive', code: 22, policy: 2 },
    ];
    const m: SuitManifest = { version: 1, sequenceNumber: 1n, components: [[Uint8Array.of(0)], [Uint8Array.of(1)]], sharedSequence: [], install: cmds, severed: {} };
    const copy = planUpdate(m, {}).images[0]!;
    expect(copy.blockDigests).toEqual(newDigests);
    expect(copy.delta).toEqual({ format: 1, frameSize: 1024 });
  });
});
