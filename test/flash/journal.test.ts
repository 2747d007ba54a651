import { describe, expect, it } from 'vitest';
import { isCoapfwError } from '../../src/errors.js';
import { createLayout, type FlashLayout } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { mulberry32 } from '../../src/flash/prng.js';
import { RecordLog, recordSize } from '../../src/flash/record-log.js';
import { Journal, decodeResumeRecord, encodeResumeRecord, idleResumeRecord, type ResumeRecord } from '../../src/flash/journal.js';

const EBS = 512;

function setup(seed = 1, writeAlignment = 8): { flash: MemoryFlash; layout: FlashLayout } {
  const flash = new MemoryFlash({ size: 10 * EBS, eraseBlockSize: EBS, writeAlignment, random: mulberry32(seed) });
  return { flash, layout: createLayout(flash, { slotSize: 2 * EBS }) };
}

function record(n: number): ResumeRecord {
  return {
    phase: n === 0 ? 'idle' : 'fetching',
    slot: 'secondary',
    szx: n % 7,
    etag: Uint8Array.of(0xe7, n & 0xff, 3),
    nextBlock: n * 4,
    imageSize: 100_000 + n,
    installedSeq: 1_700_000_000_000 + (n >> 3),
    envelopeDigest: new Uint8Array(32).fill(n & 0xff),
    imageDigest: new Uint8Array(32).fill(0xa0 ^ (n & 0xff)),
  };
}

describe('resume record encoding', () => {
  it('round-trips and has the documented size', () => {
    const r = record(5);
    expect(decodeResumeRecord(encodeResumeRecord(r))).toEqual(r);
    expect(encodeResumeRecord(r).length).toBe(92);
    expect(Journal.recordSize(4)).toBe(104);
    expect(Journal.recordSize(8)).toBe(104);
    expect(Journal.recordSize(16)).toBe(112);
  });

  it('rejects bad fields with labelled INVALID_ARGUMENT errors', () => {
    const bad: Partial<ResumeRecord>[] = [
      { szx: 7 },
      { etag: new Uint8Array(9) },
      { nextBlock: -1 },
      { imageSize: 2 ** 32 },
      { installedSeq: 2 ** 53 },
      { envelopeDigest: new Uint8Array(31) },
      { imageDigest: new Uint8Array(33) },
      { phase: 'done' as never },
      { slot: 'third' as never },
    ];
    for (const b of bad) {
      expect(() => encodeResumeRecord({ ...record(1), ...b })).toThrow(/^journal: /);
    }
  });

  it('decoding an impossible (CRC-valid) payload gives JOURNAL_CORRUPT', () => {
    const p = encodeResumeRecord(record(1));
    p[2] = 7;
    expect(() => decodeResumeRecord(p)).toThrow(expect.objectContaining({ code: 'JOURNAL_CORRUPT' }));
    expect(() => decodeResumeRecord(p.subarray(0, 10))).toThrow(expect.objectContaining({ code: 'JOURNAL_CORRUPT' }));
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
    expect(j.stats).toEqual({ appends: 3, bytesWritten: 3 * 104, erases: 0 });
  });

  it('recycles its erase blocks as a ring, one erase per page switch, wear spread evenly', async () => {
    const { flash, layout } = setup();
    const perPage = Math.floor(EBS / 104);
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
    const perPage = Math.floor(EBS / 104);
    const j = await Journal.open(flash, layout);
    // Fill one page exactly, so that we also cut the first record of the next page.
    for (let n = 0; n < perPage - 1; n++) await j.append(record(n));
    const base = flash.snapshot();
    for (const k of [perPage - 1, perPage]) {
      for (let torn = 0; torn <= 104; torn++) {
        const f = new MemoryFlash({ size: flash.size, eraseBlockSize: EBS, writeAlignment: 8, contents: base });
        const jj = await Journal.open(f, layout);
        for (let n = perPage - 1; n < k; n++) await jj.append(record(n));
        // the page switch (if any) erases first: cut the record write itself
        f.cutAfter(k === perPage ? 1 : 0, { tornBytes: torn });
        await expect(jj.append(record(k))).rejects.toMatchObject({ code: 'POWER_CUT' });
        f.powerOn();
        const after = await Journal.open(f, layout);
        expect(after.latest()).toEqual(torn === 104 ? record(k) : record(k - 1));
        await after.append(record(1000));
        expect((await Journal.open(f, layout)).latest()).toEqual(record(1000));
      }
    }
  });

  it('survives a randomly torn cut at every operation of a long run, then continues', async () => {
    const perPage = Math.floor(EBS / 104);
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
    await flash.write(layout.journal.offset, new Uint8Array(104).fill(0x5a));
    const other = await RecordLog.open(flash, { offset: layout.journal.offset + EBS, size: 2 * EBS }, { kind: 9, payloadSize: 92 });
    await other.append(encodeResumeRecord(record(3)));
    const j = await Journal.open(flash, layout);
    expect(j.latest()).toBeUndefined();
    await j.append(record(4));
    expect((await Journal.open(flash, layout)).latest()).toEqual(record(4));
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
    expect(got.phase).toBe('idle');
    expect(got.installedSeq).toBe(42);
  });
});
