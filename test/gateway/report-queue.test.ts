/**
 * The journal and the report queue on their own: durable appends, a torn
 * tail cut at the next open (never records after it invented), compaction,
 * bounds with a counted loss, and the forwarder's exactly-once through a
 * crash between the forward and the dequeue.
 */
import { appendFile, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CoapMessage } from '../../src/codec/message.js';
import { Code, MessageType } from '../../src/codec/numbers.js';
import { uriPath } from '../../src/codec/options.js';
import type { RequestSpec } from '../../src/core/request.js';
import { CoapfwError, isCoapfwError } from '../../src/errors.js';
import { ReportForwarder } from '../../src/gateway/forwarder.js';
import { RecordJournal } from '../../src/gateway/journal.js';
import { ReportQueue, type ReportItem } from '../../src/gateway/report-queue.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { tempDir } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function dir(): Promise<string> {
  const t = await tempDir('queue');
  cleanups.push(t.remove);
  return t.dir;
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const report = (device: string, rseq: number, body = `{"rseq":${rseq}}`): ReportItem => ({ kind: 'report', device, path: ['d', device, 'r'], body: bytes(body), rseq });

describe('RecordJournal', () => {
  it('reads back what was appended, in order, after a reopen', async () => {
    const path = join(await dir(), 'j');
    const a = await RecordJournal.open(path);
    await Promise.all([a.journal.append(1, bytes('one')), a.journal.append(2, bytes('two')), a.journal.append(1, bytes('three'))]);
    await a.journal.close();
    const b = await RecordJournal.open(path);
    expect(b.records.map((r) => [r.type, new TextDecoder().decode(r.payload)])).toEqual([[1, 'one'], [2, 'two'], [1, 'three']]);
    expect(b.truncatedBytes).toBe(0);
    await b.journal.close();
  });

  it('cuts a torn last record at the next open, and appends after the cut', async () => {
    const path = join(await dir(), 'j');
    const a = await RecordJournal.open(path);
    await a.journal.append(1, bytes('kept'));
    await a.journal.append(1, bytes('torn by a power cut'));
    await a.journal.close();
    const full = (await stat(path)).size;
    await truncate(path, full - 5); // the last write only partly reached the disk
    const b = await RecordJournal.open(path);
    expect(b.records.map((r) => new TextDecoder().decode(r.payload))).toEqual(['kept']);
    expect(b.truncatedBytes).toBe(full - 5 - (8 + 9 + 4));
    await b.journal.append(1, bytes('after'));
    await b.journal.close();
    const c = await RecordJournal.open(path);
    expect(c.records.map((r) => new TextDecoder().decode(r.payload))).toEqual(['kept', 'after']);
    await c.journal.close();
  });

  it('stops at a record whose CRC fails, and refuses a file that is not a journal', async () => {
    const d = await dir();
    const path = join(d, 'j');
    const a = await RecordJournal.open(path);
    await a.journal.append(1, bytes('good'));
    await a.journal.append(1, bytes('flipped'));
    await a.journal.close();
    const raw = await readFile(path);
    raw[raw.length - 2] ^= 0x40;
    await writeFile(path, raw);
    const b = await RecordJournal.open(path);
    expect(b.records.length).toBe(1);
    await b.journal.close();
    const foreign = join(d, 'notes.txt');
    await writeFile(foreign, 'shopping list: milk, eggs');
    await expect(RecordJournal.open(foreign)).rejects.toMatchObject({ code: 'QUEUE_CORRUPT' });
    expect(await readFile(foreign, 'utf8')).toBe('shopping list: milk, eggs'); // never overwritten
  });

  it('compacts atomically: the rewritten file holds exactly the live records', async () => {
    const path = join(await dir(), 'j');
    const a = await RecordJournal.open(path);
    for (let i = 0; i < 50; i++) await a.journal.append(1, bytes(`r${i}`));
    const before = a.journal.bytes;
    await a.journal.rewrite([{ type: 3, payload: bytes('live') }]);
    expect(a.journal.bytes).toBeLessThan(before);
    await a.journal.append(1, bytes('next'));
    await a.journal.close();
    const b = await RecordJournal.open(path);
    expect(b.records.map((r) => new TextDecoder().decode(r.payload))).toEqual(['live', 'next']);
    await b.journal.close();
  });
});

describe('ReportQueue', () => {
  it('keeps what is pending across a reopen, in order, with the per-device rseq high-water', async () => {
    const d = await dir();
    const q = await ReportQueue.open(d);
    await q.enqueue(report('a', 1));
    await q.enqueue(report('b', 1));
    const second = await q.enqueue(report('a', 2));
    await q.complete(1, 'delivered');
    await q.close();
    const again = await ReportQueue.open(d);
    expect(again.items().map((i) => [i.device, i.rseq])).toEqual([['b', 1], ['a', 2]]);
    expect(again.highestRseq('a')).toBe(2);
    await expect(again.enqueue(report('a', 2))).rejects.toMatchObject({ code: 'REPORT_REPLAY' });
    const next = await again.enqueue(report('a', 3));
    expect(next.seq).toBeGreaterThan(second.seq);
    await again.close();
  });

  it('drops the oldest only when full (count and bytes), counting the loss, and never forwards a dropped item after a restart', async () => {
    const d = await dir();
    const q = await ReportQueue.open(d, { maxItems: 3, maxBytes: 1000 });
    for (let i = 1; i <= 5; i++) await q.enqueue(report('a', i));
    expect(q.items().map((i) => i.rseq)).toEqual([3, 4, 5]);
    expect(q.stats.dropped).toBe(2);
    await q.enqueue(report('b', 1, 'x'.repeat(985))); // one item over the count, then 2 x 10 + 985 bytes over 1000: two go
    expect(q.items().map((i) => `${i.device}${i.rseq}`)).toEqual(['a5', 'b1']);
    expect(q.stats.dropped).toBe(4);
    await expect(q.enqueue(report('c', 1, 'y'.repeat(2000)))).rejects.toMatchObject({ code: 'TOO_LARGE' });
    await q.close();
    const again = await ReportQueue.open(d, { maxItems: 3, maxBytes: 1000 });
    expect(again.items().map((i) => `${i.device}${i.rseq}`)).toEqual(['a5', 'b1']);
    await again.close();
  });

  it('compacts once mostly done, keeping pending items and high-water marks', async () => {
    const d = await dir();
    const q = await ReportQueue.open(d);
    for (let i = 1; i <= 3000; i++) {
      const item = await q.enqueue(report(`dev-${i % 7}`, i, `{"rseq":${i},"state":"${'x'.repeat(300)}"}`));
      if (i < 2999) await q.complete(item.seq, 'delivered');
    }
    const size = (await stat(join(d, 'reports.journal'))).size;
    expect(size).toBeLessThan(1 << 21); // 3000 x 340 bytes were appended: compaction ran
    await q.close();
    const again = await ReportQueue.open(d);
    expect(again.items().map((i) => i.rseq)).toEqual([2999, 3000]);
    expect(again.highestRseq('dev-1')).toBe(2997);
    await again.close();
  });
});

/** An upstream as the forwarder sees it: accepts each rseq once per device (4.09 after), counts. */
function upstreamDouble() {
  const last = new Map<string, number>();
  const accepted: string[] = [];
  let replays = 0;
  let down = false;
  const send = async (spec: RequestSpec): Promise<CoapMessage> => {
    if (down) throw new CoapfwError('TIMEOUT', 'upstream down');
    const path = uriPath({ type: MessageType.CON, code: spec.code, messageId: 0, token: new Uint8Array(0), options: spec.options ?? [], payload: new Uint8Array(0) });
    const rseq = JSON.parse(new TextDecoder().decode(spec.payload)).rseq as number;
    const device = path[1]!;
    let code: number = Code.CHANGED;
    if (rseq <= (last.get(device) ?? 0)) {
      replays++;
      code = Code.CONFLICT;
    } else {
      last.set(device, rseq);
      accepted.push(`${device}#${rseq}`);
    }
    return { type: MessageType.ACK, code, messageId: 0, token: new Uint8Array(0), options: [], payload: new Uint8Array(0) };
  };
  return { send, accepted, get replays() { return replays; }, setDown: (v: boolean) => void (down = v) };
}

describe('ReportForwarder', () => {
  it('forwards in order; while the uplink is down nothing leaves the queue; then all of it, once', async () => {
    const q = await ReportQueue.open(await dir());
    const up = upstreamDouble();
    const rt = new FakeRuntime();
    const fwd = new ReportForwarder(q, up.send, { runtime: rt, maxBackoffMs: 1000 });
    up.setDown(true);
    for (let i = 1; i <= 5; i++) await q.enqueue(report('a', i));
    fwd.kick();
    await fwd.whenIdle();
    expect(q.size).toBe(5);
    expect(fwd.stats.failedAttempts).toBe(1);
    up.setDown(false);
    rt.advance(1000); // the back-off timer fires
    await fwd.whenIdle();
    await new Promise((r) => setImmediate(r));
    await fwd.whenIdle();
    expect(up.accepted).toEqual(['a#1', 'a#2', 'a#3', 'a#4', 'a#5']);
    expect(q.size).toBe(0);
    await fwd.stop();
    await q.close();
  });

  it('a crash between the forward and the dequeue: after the restart the item goes again, the upstream answers 4.09, it has it once', async () => {
    const d = await dir();
    const up = upstreamDouble();
    const q1 = await ReportQueue.open(d);
    await q1.enqueue(report('a', 1));
    await q1.enqueue(report('a', 2));
    // The process dies right after the upstream took item 1: its "done" record is never written.
    q1.complete = async () => {
      throw new CoapfwError('IO_ERROR', 'killed');
    };
    const rt = new FakeRuntime();
    const f1 = new ReportForwarder(q1, up.send, { runtime: rt });
    f1.kick();
    await f1.whenIdle();
    await f1.stop();
    await q1.close();
    expect(up.accepted).toEqual(['a#1']);
    const q2 = await ReportQueue.open(d);
    expect(q2.items().map((i) => i.rseq)).toEqual([1, 2]);
    const f2 = new ReportForwarder(q2, up.send, { runtime: rt });
    f2.kick();
    await f2.whenIdle();
    expect(up.accepted).toEqual(['a#1', 'a#2']);
    expect(up.replays).toBe(1);
    expect(q2.stats.replays).toBe(1);
    expect(q2.stats.delivered).toBe(2);
    expect(q2.size).toBe(0);
    await f2.stop();
    await q2.close();
  });

  it('rejects for good what the upstream refuses (4.00), and moves on', async () => {
    const q = await ReportQueue.open(await dir());
    const outcomes: string[] = [];
    const send = async (spec: RequestSpec): Promise<CoapMessage> => ({
      type: MessageType.ACK, code: new TextDecoder().decode(spec.payload).includes('bad') ? Code.BAD_REQUEST : Code.CHANGED, messageId: 0, token: new Uint8Array(0), options: [], payload: new Uint8Array(0),
    });
    const fwd = new ReportForwarder(q, send, { runtime: new FakeRuntime(), onOutcome: (i, o) => outcomes.push(`${i.rseq}:${o}`) });
    await q.enqueue(report('a', 1, '{"rseq":1,"bad":1}'));
    await q.enqueue(report('a', 2));
    fwd.kick();
    await fwd.whenIdle();
    expect(outcomes).toEqual(['1:rejected', '2:delivered']);
    expect(q.stats.rejected).toBe(1);
    await q.close();
  });
});

describe('ReportQueue bounds', () => {
  it('validates its limits', async () => {
    await expect(ReportQueue.open(await dir(), { maxItems: 0 })).rejects.toSatisfy((e: unknown) => isCoapfwError(e, 'INVALID_ARGUMENT'));
  });

  it('ignores a torn tail of the queue itself after a power cut', async () => {
    const d = await dir();
    const q = await ReportQueue.open(d);
    await q.enqueue(report('a', 1));
    await q.close();
    await appendFile(join(d, 'reports.journal'), Uint8Array.of(0, 0, 0, 40, 1, 2)); // half a record
    const again = await ReportQueue.open(d);
    expect(again.items().map((i) => i.rseq)).toEqual([1]);
    expect(again.stats.truncatedBytes).toBe(6);
    await again.close();
  });
});
