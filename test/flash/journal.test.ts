import { describe, expect, it } from 'vitest';
import { isCoapfwError } from '../../src/errors.js';
import { createLayout, type FlashLayout } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { mulberry32 } from '../../src/flash/prng.js';
import { RecordLog, recordSize } from '../../src/flash/record-log.js';
import {
  Journal,
  RESUME_FORMAT_VERSION,
  decodeResumeRecord,
  digestPrefix,
  encodeResumeRecord,
  idleResumeRecord,
  matchesDigestPrefix,
  type ResumeRecord,
} from '../../src/flash/journal.js';

const EBS = 512;

function setup(seed = 1, writeAlignment = 8): { flash: MemoryFlash; layout: FlashLayout } {
  const flash = new MemoryFlash({ size: 10 * EBS, eraseBlockSize: EBS, writeAlignment, random: mulberry32(seed) });
  return { flash, layout: createLayout(flash, { slotSize: 2 * EBS }) };
}

function record(n: number): ResumeRecord {
  return {
    phase: n === 0 ? 'idle' : 'fetching',
    szx: n % 7,
    etag: Uint8Array.of(0xe7, n & 0xff, 3),
    nextBlock: n * 4,
    imageSize: 100_000 + n,
    installedSeq: 1_700_000_000_000 + (n >> 3),
    candidateSeq: 1_700_000_000_001 + (n >> 3),
    reverts: n % 3,
    envelopeDigestPrefix: new Uint8Array(16).fill(n & 0xff),
    imageDigestPrefix: new Uint8Array(16).fill(0xa0 ^ (n & 0xff)),
  };
}


describe('resume record encoding', () => {
  it('round-trips and has the documented size', () => {
    const r = record(5);
    expect(decodeResumeRecord(encodeResumeRecord(r))).toEqual(r);
    expect(encodeResumeRecord(r).length).toBe(68);
    expect(Journal.recordSize(1)).toBe(80);
    expect(Journal.recordSize(4)).toBe(80);
    expect(Journal.recordSize(8)).toBe(80);
    expect(Journal.recordSize(16)).toBe(80);
    expect(Journal.recordSize(32)).toBe(96);
  });

  it('puts every field at the offset the file comment documents, and round-trips each one', () => {
    const r: ResumeRecord = {
      phase: 'installing',
      szx: 5,
      etag: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8),
      nextBlock: 0xfedcba98,
      imageSize: 0x01020304,
      installedSeq: Number.MAX_SAFE_INTEGER,
      candidateSeq: 2 ** 40 + 7,
      reverts: 255,
      envelopeDigestPrefix: Uint8Array.from({ length: 16 }, (_, i) => 0x10 + i),
      imageDigestPrefix: Uint8Array.from({ length: 16 }, (_, i) => 0x80 + i),
    };
    const p = encodeResumeRecord(r);
    const view = new DataView(p.buffer);
    expect(p[0]).toBe(RESUME_FORMAT_VERSION);
    expect(p[1]).toBe(3); // installing; high nibble reserved, written 0
    expect(p[2]).toBe(5 | (8 << 4)); // szx 5, 8-byte ETag
    expect(p[3]).toBe(255);
    expect([...p.subarray(4, 12)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(view.getUint32(12)).toBe(0xfedcba98);
    expect(view.getUint32(16)).toBe(0x01020304);
    expect(view.getBigUint64(20)).toBe(BigInt(Number.MAX_SAFE_INTEGER));
    expect(view.getBigUint64(28)).toBe(2n ** 40n + 7n);
    expect(p.subarray(36, 52)).toEqual(r.envelopeDigestPrefix);
    expect(p.subarray(52, 68)).toEqual(r.imageDigestPrefix);
    expect(decodeResumeRecord(p)).toEqual(r);
    // Each field alone, so a swapped pair of fields cannot round-trip by accident.
    const variants: Partial<ResumeRecord>[] = [
      { phase: 'idle' }, { phase: 'fetching' }, { phase: 'fetched' }, { szx: 0 }, { szx: 6 },
      { etag: new Uint8Array(0) }, { etag: Uint8Array.of(0) }, { nextBlock: 0 }, { imageSize: 0xffffffff },
      { installedSeq: 0 }, { candidateSeq: 0 }, { candidateSeq: 1 }, { reverts: 0 }, { reverts: 1 },
      { envelopeDigestPrefix: new Uint8Array(16) }, { imageDigestPrefix: new Uint8Array(16).fill(0xff) },
    ];
    for (const v of variants) expect(decodeResumeRecord(encodeResumeRecord({ ...r, ...v }))).toEqual({ ...r, ...v });
  });

  it('rejects bad fields with labelled INVALID_ARGUMENT errors', () => {
    const bad: Partial<ResumeRecord>[] = [
      { szx: 7 },
      { etag: new Uint8Array(9) },
      { nextBlock: -1 },
      { imageSize: 2 ** 32 },
      { installedSeq: 2 ** 53 },
      { candidateSeq: -1 },
      { candidateSeq: 1.5 },
      { reverts: 256 },
      { reverts: -1 },
      { envelopeDigestPrefix: new Uint8Array(32) },
      { imageDigestPrefix: new Uint8Array(15) },
      { phase: 'done' as never },
    ];
    for (const b of bad) {
      expect(() => encodeResumeRecord({ ...record(1), ...b })).toThrow(/^journal: /);
    }
  });

  it('reads the reserved high nibble of byte 1 as 0 or 1 (records written with the dropped slot field), else corrupt', () => {
    const p = encodeResumeRecord(record(1));
    const q = p.slice();
    q[1] = p[1]! | 0x10; // what writers of the always-secondary slot field stored
    expect(decodeResumeRecord(q)).toEqual(record(1));
    q[1] = p[1]! | 0x20;
    expect(() => decodeResumeRecord(q)).toThrow(expect.objectContaining({ code: 'JOURNAL_CORRUPT' }));
  });

  it('decoding an impossible (CRC-valid) payload gives JOURNAL_CORRUPT', () => {
    const corrupt = { code: 'JOURNAL_CORRUPT' };
    const p = encodeResumeRecord(record(1));
    // Phase 4 is `applying` (a delta being applied); 5 and above are impossible.
    for (const [at, value] of [[2, 7], [2, 0x90], [1, 5], [1, 0x21], [0, 1], [0, 3], [28, 0x00_20]] as const) {
      const q = p.slice();
      q[at] = value;
      expect(() => decodeResumeRecord(q)).toThrow(expect.objectContaining(corrupt));
    }
    expect(() => decodeResumeRecord(p.subarray(0, 10))).toThrow(expect.objectContaining(corrupt));
    expect(() => decodeResumeRecord(new Uint8Array(92))).toThrow(expect.objectContaining(corrupt));
  });

  it('the applying phase (a delta: next frame, its offset in the delta) round-trips', () => {
    const r = { ...record(1), phase: 'applying' as const, nextBlock: 7, imageSize: 12_345 };
    expect(decodeResumeRecord(encodeResumeRecord(r))).toEqual(r);
  });
});

describe('Journal', () => {
  it('is empty on a fresh chip and returns the newest record after reopening', async () => {
    const { flash, layout } = setup();
    const j = await Journal.open(flash, layout);
    expect(j.latest()).toBeUndefined();
    for (let n = 0; n < 3; n++) await j.append(record(n));
    expect(j.latest()).toEqual(record(2));
    expect((await Journal.open(flash, layout)).latest()).toEqual(record(2));
    expect(j.stats).toEqual({ appends: 3, bytesWritten: 3 * 80, erases: 0 });
  });

  it('recycles its erase blocks as a ring, one erase per page switch, wear spread evenly', async () => {
    const { flash, layout } = setup();
    const perPage = Math.floor(EBS / 80);
    let j = await Journal.open(flash, layout);
    const total = perPage * 10 + 2;
    for (let n = 0; n < total; n++) {
      await j.append(record(n));
      if (n % 7 === 0) j = await Journal.open(flash, layout); // reopen now and then
      expect(j.latest()).toEqual(record(n));
    }
    const firstPage = layout.journal.offset / EBS;
    const wear = [flash.eraseCounts[firstPage]!, flash.eraseCounts[firstPage + 1]!];
    expect(wear[0]! + wear[1]!).toBe(10);
    expect(Math.abs(wear[0]! - wear[1]!)).toBeLessThanOrEqual(1);
  });

  it('survives a power cut at every byte of a record write', async () => {
    const { flash, layout } = setup();
    const perPage = Math.floor(EBS / 80);
    const j = await Journal.open(flash, layout);
    // Fill one page exactly, so that we also cut the first record of the next page.
    for (let n = 0; n < perPage - 1; n++) await j.append(record(n));
    const base = flash.snapshot();
    for (const k of [perPage - 1, perPage]) {
      for (let torn = 0; torn <= 80; torn++) {
        const f = new MemoryFlash({ size: flash.size, eraseBlockSize: EBS, writeAlignment: 8, contents: base });
        const jj = await Journal.open(f, layout);
        for (let n = perPage - 1; n < k; n++) await jj.append(record(n));
        // the page switch (if any) erases first: cut the record write itself
        f.cutAfter(k === perPage ? 1 : 0, { tornBytes: torn });
        await expect(jj.append(record(k))).rejects.toMatchObject({ code: 'POWER_CUT' });
        f.powerOn();
        const after = await Journal.open(f, layout);
        expect(after.latest()).toEqual(torn === 80 ? record(k) : record(k - 1));
        await after.append(record(1000));
        expect((await Journal.open(f, layout)).latest()).toEqual(record(1000));
      }
    }
  });

  it('survives a randomly torn cut at every operation of a long run, then continues', async () => {
    const perPage = Math.floor(EBS / 80);
    const count = perPage * 3 + 1;
    const run = async (flash: MemoryFlash, layout: FlashLayout, from: number): Promise<void> => {
      const j = await Journal.open(flash, layout);
      for (let n = from; n < count; n++) await j.append(record(n));
    };
    const probe = setup();
    await run(probe.flash, probe.layout, 0);
    const ops = probe.flash.ops;
    expect(ops).toBe(count + 3);
    for (let k = 0; k < ops; k++) {
      for (const seed of [11, 12]) {
        const { flash, layout } = setup(seed);
        flash.cutAfter(k);
        const err = await run(flash, layout, 0).catch((e: unknown) => e);
        expect(isCoapfwError(err, 'POWER_CUT')).toBe(true);
        flash.powerOn();
        const latest = (await Journal.open(flash, layout)).latest();
        // The record being written when the cut hit, or the one before: never anything else.
        const idx = latest === undefined ? -1 : latest.nextBlock / 4;
        if (latest !== undefined) expect(latest).toEqual(record(idx));
        const started = k - Math.floor(k / (perPage + 1)); // appends started before op k
        expect(idx === started - 1 || idx === started || (idx === -1 && started <= 1)).toBe(true);
        await run(flash, layout, idx + 1);
        expect((await Journal.open(flash, layout)).latest()).toEqual(record(count - 1));
      }
    }
  });

  it('ignores garbage and records of another kind', async () => {
    const { flash, layout } = setup();
    await flash.write(layout.journal.offset, new Uint8Array(80).fill(0x5a));
    const other = await RecordLog.open(flash, { offset: layout.journal.offset + EBS, size: 2 * EBS }, { kind: 9, payloadSize: 68 });
    await other.append(encodeResumeRecord(record(3)));
    const j = await Journal.open(flash, layout);
    expect(j.latest()).toBeUndefined();
    await j.append(record(4));
    expect((await Journal.open(flash, layout)).latest()).toEqual(record(4));
  });
});

describe('format versions (fail closed: the installed sequence number lives here)', () => {
  const corrupt = expect.objectContaining({ code: 'JOURNAL_CORRUPT', message: expect.stringMatching(/re-provisioned/) });

  it('a record of another payload size alone is not an empty journal: latest() throws JOURNAL_CORRUPT', async () => {
    const { flash, layout } = setup();
    const other = await RecordLog.open(flash, layout.journal, { kind: 1, payloadSize: 92 });
    await other.append(new Uint8Array(92).fill(1));
    await expect(Journal.open(flash, layout).then((j) => j.latest())).rejects.toThrow(corrupt);
    await expect(Journal.open(flash, layout).then((j) => j.latest())).rejects.toThrow(/92-byte payload/);
  });

  it('a newest current-size record with another format version throws JOURNAL_CORRUPT, even over older good records', async () => {
    const { flash, layout } = setup();
    const j = await Journal.open(flash, layout);
    await j.append(record(1));
    const raw = await RecordLog.open(flash, layout.journal, { kind: 1, payloadSize: 68 });
    const future = encodeResumeRecord(record(2));
    future[0] = RESUME_FORMAT_VERSION + 1;
    await raw.append(future);
    const reopened = await Journal.open(flash, layout);
    expect(() => reopened.latest()).toThrow(corrupt);
    expect(() => reopened.latest()).toThrow(/format version 3/);
  });

  it('a newer record of another size wins over an older current one (fail closed), an older one does not', async () => {
    const { flash, layout } = setup();
    const j = await Journal.open(flash, layout);
    await j.append(record(1));
    // Another format in the other page, with a higher log sequence number.
    const other = await RecordLog.open(flash, { offset: layout.journal.offset + EBS, size: 2 * EBS }, { kind: 1, payloadSize: 40 });
    await other.append(new Uint8Array(40));
    await other.append(new Uint8Array(40)); // seq 2 > record(1)'s seq 1
    await expect(Journal.open(flash, layout).then((x) => x.latest())).rejects.toThrow(corrupt);

    const fresh = setup();
    const old = await RecordLog.open(fresh.flash, { offset: fresh.layout.journal.offset + EBS, size: 2 * EBS }, { kind: 1, payloadSize: 40 });
    await old.append(new Uint8Array(40)); // seq 1
    const jj = await Journal.open(fresh.flash, fresh.layout);
    expect(() => jj.latest()).toThrow(corrupt); // nothing of ours yet
    // A current record with a higher sequence number (as after a migration) is the newest: usable.
    const raw = await RecordLog.open(fresh.flash, fresh.layout.journal, { kind: 1, payloadSize: 68 });
    await raw.append(encodeResumeRecord(record(7)));
    await raw.append(encodeResumeRecord(record(8))); // seq 2 > 1
    expect((await Journal.open(fresh.flash, fresh.layout)).latest()).toEqual(record(8));
  });

  it('a CRC-valid current record with impossible values throws JOURNAL_CORRUPT', async () => {
    const { flash, layout } = setup();
    const raw = await RecordLog.open(flash, layout.journal, { kind: 1, payloadSize: 68 });
    const bad = encodeResumeRecord(record(1));
    bad[2] = 7; // SZX 7
    await raw.append(bad);
    await expect(Journal.open(flash, layout).then((j) => j.latest())).rejects.toThrow(expect.objectContaining({ code: 'JOURNAL_CORRUPT' }));
  });

  it('a torn first record (no CRC-valid frame) is still an empty journal: a power cut never locks updates out', async () => {
    for (let torn = 0; torn < 80; torn++) {
      const { flash, layout } = setup();
      const j = await Journal.open(flash, layout);
      flash.cutAfter(0, { tornBytes: torn });
      await expect(j.append(record(1))).rejects.toMatchObject({ code: 'POWER_CUT' });
      flash.powerOn();
      expect((await Journal.open(flash, layout)).latest()).toBeUndefined();
    }
  });

  it('reset erases whatever the area holds; the journal is then empty and usable', async () => {
    const { flash, layout } = setup();
    const other = await RecordLog.open(flash, layout.journal, { kind: 1, payloadSize: 92 });
    await other.append(new Uint8Array(92).fill(1));
    const j = await Journal.reset(flash, layout);
    expect(j.latest()).toBeUndefined();
    await j.append(record(3));
    expect((await Journal.open(flash, layout)).latest()).toEqual(record(3));
  });
});

describe('digest prefixes', () => {
  it('digestPrefix keeps the first 16 bytes of a SHA-256 digest and checks its size', () => {
    const d = Uint8Array.from({ length: 32 }, (_, i) => i);
    const p = digestPrefix(d);
    expect([...p]).toEqual([...d.subarray(0, 16)]);
    d[0] = 0xff;
    expect(p[0]).toBe(0); // a copy
    for (const bad of [new Uint8Array(16), new Uint8Array(31), new Uint8Array(33)]) {
      expect(() => digestPrefix(bad)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
  });

  it('matchesDigestPrefix compares a full digest with a recorded prefix, nothing else', () => {
    const d = Uint8Array.from({ length: 32 }, (_, i) => i * 7);
    const p = digestPrefix(d);
    expect(matchesDigestPrefix(d, p)).toBe(true);
    const tail = d.slice();
    tail[31] ^= 1; // differs only after the prefix: the same as far as the journal knows
    expect(matchesDigestPrefix(tail, p)).toBe(true);
    for (const i of [0, 15]) {
      const other = d.slice();
      other[i] ^= 1;
      expect(matchesDigestPrefix(other, p)).toBe(false);
    }
    expect(matchesDigestPrefix(d, d)).toBe(false); // a full digest is not a prefix
    expect(matchesDigestPrefix(p, p)).toBe(false); // nor is a prefix a full digest
  });
});

describe('RecordLog', () => {
  it('validates its options', async () => {
    const { flash, layout } = setup();
    const area = layout.journal;
    await expect(RecordLog.open(flash, area, { kind: 0, payloadSize: 4 })).rejects.toThrow(/kind/);
    await expect(RecordLog.open(flash, area, { kind: 1, payloadSize: EBS })).rejects.toThrow(/does not fit/);
    await expect(RecordLog.open(flash, { offset: area.offset, size: EBS }, { kind: 1, payloadSize: 4 })).rejects.toThrow(/>= 2/);
    const log = await RecordLog.open(flash, area, { kind: 1, payloadSize: 4 });
    await expect(log.append(new Uint8Array(5))).rejects.toThrow(/4 bytes/);
    expect(recordSize(4, 8)).toBe(16);
    expect(log.recordSize).toBe(16);
  });
});

describe('idleResumeRecord', () => {
  it('is a valid record carrying only the installed sequence number', async () => {
    const { flash, layout } = setup();
    const j = await Journal.open(flash, layout);
    await j.append(idleResumeRecord(42));
    const got = (await Journal.open(flash, layout)).latest()!;
    expect(got).toMatchObject({ phase: 'idle', installedSeq: 42, candidateSeq: 0, reverts: 0 });
    expect(got.imageDigestPrefix).toEqual(new Uint8Array(16));
  });

  it('can name the installed envelope and image by digest prefix (copies)', () => {
    const installed = { envelopeDigestPrefix: new Uint8Array(16).fill(1), imageDigestPrefix: new Uint8Array(16).fill(2) };
    const r = idleResumeRecord(7, installed);
    installed.imageDigestPrefix[0] = 9;
    expect(decodeResumeRecord(encodeResumeRecord(r))).toEqual({ ...idleResumeRecord(7), envelopeDigestPrefix: new Uint8Array(16).fill(1), imageDigestPrefix: new Uint8Array(16).fill(2) });
  });
});
