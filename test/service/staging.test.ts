/**
 * The staging area of blob uploads: hashed as it is written, kept only when
 * the digest matches, bounded in count, bytes and lifetime, and an upload
 * that stops leaves no file behind.
 */
import { existsSync, readdirSync } from 'node:fs';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { afterEach, describe, expect, it } from 'vitest';
import type { UploadSink } from '../../src/blockwise/block1-stream.js';
import { Code } from '../../src/codec/numbers.js';
import { isCoapfwError } from '../../src/errors.js';
import type { ResponseSpec } from '../../src/messaging/endpoint.js';
import { BlobStaging } from '../../src/service/staging.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { bytes } from './fixtures.js';

const hex = (b: Uint8Array): string => bytesToHex(sha256(b));
const isSink = (v: UploadSink | ResponseSpec): v is UploadSink => 'write' in v;
let staging: BlobStaging | undefined;
afterEach(async () => {
  await staging?.close();
  staging = undefined;
});

async function upload(s: BlobStaging, data: Uint8Array, name = hex(data), chunk = 1024): Promise<ResponseSpec> {
  const sink = await s.begin(name, data.length);
  if (!isSink(sink)) return sink;
  for (let at = 0; at < data.length; at += chunk) await sink.write(data.subarray(at, at + chunk));
  return sink.finish();
}

describe('BlobStaging', () => {
  it('keeps an upload whose SHA-256 matches under its address, readable, until removed', async () => {
    const rt = new FakeRuntime();
    staging = await BlobStaging.open(rt);
    const data = bytes(5000, 3);
    expect((await upload(staging, data)).code).toBe(Code.CREATED);
    const blob = staging.get(hex(data))!;
    expect(blob.size).toBe(5000);
    expect(await staging.read(blob)).toEqual(data);
    expect(staging.stagedBytes).toBe(5000);
    await staging.remove(hex(data));
    expect(staging.get(hex(data))).toBeUndefined();
    expect(staging.stagedBytes).toBe(0);
    expect(readdirSync(staging.dir)).toEqual([]);
  });

  it('an upload whose bytes do not match its address is DIGEST_MISMATCH and leaves nothing', async () => {
    staging = await BlobStaging.open(new FakeRuntime());
    const err = await upload(staging, bytes(3000, 1), hex(bytes(3000, 2))).catch((e: unknown) => e);
    expect(isCoapfwError(err, 'DIGEST_MISMATCH')).toBe(true);
    expect(staging.list()).toEqual([]);
    expect(staging.stagedBytes).toBe(0);
    expect(readdirSync(staging.dir)).toEqual([]);
  });

  it('an aborted upload (stopped half-way) removes its file and frees its bytes', async () => {
    staging = await BlobStaging.open(new FakeRuntime());
    const data = bytes(4096, 5);
    const sink = (await staging.begin(hex(data), data.length)) as UploadSink;
    await sink.write(data.subarray(0, 2048));
    expect(staging.stagedBytes).toBe(2048);
    expect(readdirSync(staging.dir)).toHaveLength(1);
    sink.abort('no block for 120000 ms');
    expect(staging.stagedBytes).toBe(0);
    expect(staging.uploading).toBe(0);
    await new Promise((r) => setTimeout(r, 50)); // the unlink runs after the close
    expect(readdirSync(staging.dir)).toEqual([]);
  });

  it('is bounded: entries, bytes (announced and written) and blob size', async () => {
    staging = await BlobStaging.open(new FakeRuntime(), { maxEntries: 2, maxBytes: 10_000, maxBlobBytes: 6000 });
    await expect(staging.begin('aa'.repeat(32), 7000)).rejects.toMatchObject({ code: 'TOO_LARGE' });
    await expect(staging.begin('aa'.repeat(32), 20_000)).rejects.toMatchObject({ code: 'TOO_LARGE' });
    expect((await upload(staging, bytes(5000, 1))).code).toBe(Code.CREATED);
    await expect(staging.begin('bb'.repeat(32), 6000)).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED', maxAge: 60 });
    // Without Size1 the bytes are counted as they are written.
    const sink = (await staging.begin('cc'.repeat(32), undefined)) as UploadSink;
    await sink.write(bytes(4000, 2));
    await expect(sink.write(bytes(2000, 2))).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
    await expect(staging.begin('dd'.repeat(32), 10)).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' }); // two entries in use
    sink.abort('test');
    expect(staging.stagedBytes).toBe(5000);
  });

  it('a staged blob no release takes expires after keepMs', async () => {
    const rt = new FakeRuntime();
    staging = await BlobStaging.open(rt, { keepMs: 60_000 });
    const data = bytes(100, 9);
    await upload(staging, data);
    rt.advance(59_000);
    expect(staging.get(hex(data))).toBeDefined();
    rt.advance(1000);
    expect(staging.get(hex(data))).toBeUndefined();
    await new Promise((r) => setTimeout(r, 50));
    expect(staging.list()).toEqual([]);
    expect(readdirSync(staging.dir)).toEqual([]);
  });

  it('close() removes the staging directory with everything in it', async () => {
    const s = await BlobStaging.open(new FakeRuntime());
    await upload(s, bytes(10, 1));
    const sink = (await s.begin('ee'.repeat(32), 100)) as UploadSink;
    await sink.write(bytes(50, 1));
    await s.close();
    expect(existsSync(s.dir)).toBe(false);
  });
});
