import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { isCoapfwError } from '../../src/errors.js';
import { DeltaApplier, checkDeltaSource, createDelta, decodeDeltaHeader } from '../../src/delta/index.js';
import { DELTA_HEADER_BYTES } from '../../src/delta/format.js';
import { buildBlockDigests } from '../../src/suit/block-digests.js';
import { BlockVerifier } from '../../src/suit/block-verifier.js';
import { bstr, encodeCbor } from '../../src/suit/cbor.js';
import { createEnvelope } from '../../src/suit/create.js';
import { DELTA_COMPONENT_ID, decodeDeltaParam, findDeltaAlternative } from '../../src/suit/delta-manifest.js';
import { privateKeyFromSecret } from '../../src/suit/keys.js';
import { verifyEnvelope } from '../../src/suit/verify.js';
import { toyExecutable } from './helpers.js';

const key = privateKeyFromSecret('ed25519', new Uint8Array(32).fill(9));
const trust = { anchors: [{ name: 'oem', publicKey: key.publicKey }] };
const OLD = toyExecutable(20_000, 21);
const NEW = toyExecutable(20_000, 21, 1, 5_000, 300);
const DELTA = createDelta(OLD, NEW, { frameSize: 1024 });
const BS = 256;
const newDigests = buildBlockDigests(NEW, { blockSize: BS, uri: '/fw/sha256/digests-of-new' });
const deltaDigests = buildBlockDigests(DELTA, { blockSize: BS, uri: '/fw/sha256/digests-of-delta' });

function envelope(): Uint8Array {
  return createEnvelope(
    {
      sequence: 2,
      vendorId: new Uint8Array(16).fill(1),
      classId: new Uint8Array(16).fill(2),
      uri: '/fw/sha256/new',
      digest: sha256(NEW),
      size: NEW.length,
      blockDigests: newDigests.info,
      delta: { uri: '/fw/sha256/delta', digest: sha256(DELTA), size: DELTA.length, sourceDigest: sha256(OLD), sourceSize: OLD.length, frameSize: 1024, blockDigests: deltaDigests.info },
    },
    [key],
  );
}

describe('the delta in the manifest', () => {
  it('names the delta (URI, digest, size, block digests), its source and its target, with the full image as the fallback', () => {
    const v = verifyEnvelope(envelope(), { trust });
    expect(v.manifest.components[1]).toEqual(DELTA_COMPONENT_ID);
    const alt = findDeltaAlternative(v.manifest)!;
    expect(alt.source).toEqual({ componentIndex: 0, digest: { alg: -16, bytes: sha256(OLD) }, size: OLD.length });
    expect(alt.delta).toEqual({ componentIndex: 1, uri: '/fw/sha256/delta', digest: { alg: -16, bytes: sha256(DELTA) }, size: DELTA.length, frameSize: 1024, blockDigests: deltaDigests.info });
    expect(alt.target).toEqual({ digest: { alg: -16, bytes: sha256(NEW) }, size: NEW.length, blockDigests: newDigests.info });
    const te = v.manifest.install![0]!;
    expect(te.kind === 'try-each' && te.branches[1]!.some((c) => c.kind === 'override-parameters' && c.params.uri === '/fw/sha256/new')).toBe(true);
  });

  it('a manifest without a delta has no alternative, and a bad coapfw-delta value is a typed error', () => {
    const plain = createEnvelope({ sequence: 1, vendorId: new Uint8Array(16), classId: new Uint8Array(16), uri: '/u', digest: sha256(NEW), size: NEW.length }, [key]);
    expect(findDeltaAlternative(verifyEnvelope(plain, { trust }).manifest)).toBeUndefined();
    const err = (v: unknown): string | undefined => {
      try {
        decodeDeltaParam(v);
        return undefined;
      } catch (e) {
        return isCoapfwError(e) ? e.code : 'other';
      }
    };
    expect(err(bstr(encodeCbor([2, 1024])))).toBe('SUIT_UNSUPPORTED');
    expect(err(bstr(encodeCbor([1])))).toBe('SUIT_MALFORMED');
    expect(err(5)).toBe('SUIT_MALFORMED');
  });
});

/**
 * What the integration phase will do on a device, with memory for flash and
 * network: verify the envelope, check the installed image is the source,
 * fetch the delta block by block checking each against the delta's signed
 * block digests before applying it, and check each output block against the
 * new image's block digests before writing it.
 */
async function deviceApply(delta: Uint8Array, installed: Uint8Array): Promise<{ slot: Uint8Array; written: number }> {
  const alt = findDeltaAlternative(verifyEnvelope(envelope(), { trust }).manifest)!;
  const header = decodeDeltaHeader(delta.subarray(0, DELTA_HEADER_BYTES));
  await checkDeltaSource(header, installed.length, (o, n) => installed.subarray(o, o + n));
  const dv = new BlockVerifier(alt.delta.blockDigests!);
  const resource = deltaDigests.resource;
  dv.acceptResource(resource);
  const tv = new BlockVerifier(alt.target.blockDigests!);
  tv.acceptResource(newDigests.resource);
  const slot = new Uint8Array(alt.target.size!).fill(0xff);
  let written = 0;
  // Output is collected into blocks of BS; a block is written only once it checks.
  const buf = new Uint8Array(BS);
  let fill = 0;
  let block = 0;
  const applier = new DeltaApplier(header, {
    readSource: (o, n) => installed.subarray(o, o + n),
    write: (o, b) => {
      expect(o).toBe(block * BS + fill);
      for (let k = 0; k < b.length; ) {
        const n = Math.min(BS - fill, b.length - k);
        buf.set(b.subarray(k, k + n), fill);
        fill += n;
        k += n;
        if (fill === BS || block * BS + fill === slot.length) {
          tv.checkBlock(block, buf.subarray(0, fill));
          slot.set(buf.subarray(0, fill), block * BS);
          written += fill;
          block++;
          fill = 0;
        }
      }
    },
  });
  for (let i = 0; i * BS < delta.length; i++) {
    const blk = delta.subarray(i * BS, (i + 1) * BS);
    dv.checkBlock(i, blk); // before any of it is applied
    await applier.push(i === 0 ? blk.subarray(DELTA_HEADER_BYTES) : blk);
  }
  applier.end();
  return { slot, written };
}

describe('device flow over the pieces (integration preview)', () => {
  it('rebuilds the new image with every delta block and every output block checked', async () => {
    const { slot } = await deviceApply(DELTA, OLD);
    expect(Buffer.from(slot).equals(Buffer.from(NEW))).toBe(true);
  });

  it('a flipped byte in delta block k stops at block k, before anything of it is applied', async () => {
    const k = Math.floor(DELTA.length / BS / 2);
    const bad = DELTA.slice();
    bad[k * BS + 17]! ^= 1;
    const e = await deviceApply(bad, OLD).catch((x: unknown) => x);
    expect(isCoapfwError(e, 'DIGEST_MISMATCH') && e.block).toBe(k);
  });

  it('an installed image that is not the source is refused before anything is written', async () => {
    const other = OLD.slice();
    other[100]! ^= 1;
    const e = await deviceApply(DELTA, other).catch((x: unknown) => x);
    expect(isCoapfwError(e, 'DELTA_SOURCE_MISMATCH')).toBe(true);
  });
});
