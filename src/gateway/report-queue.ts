/**
 * Device registrations and reports waiting to go upstream, on disk (a
 * {@link RecordJournal}), so that an uplink outage, a gateway restart or a
 * power cut loses none and repeats none:
 *
 * - An item is in the queue once {@link ReportQueue.enqueue} resolves (it was
 *   synced); only then does the device get its 2.04.
 * - It leaves only by {@link ReportQueue.complete}, written after the upstream
 *   answered. A crash between the forward and that record forwards it again
 *   after the restart, and the upstream answers the repeat with 4.09 (the
 *   report counter `rseq` is not above the last it accepted), which counts
 *   as delivered: the upstream has it exactly once.
 * - Bounded in items and bytes; when full, the oldest item is dropped and the
 *   loss counted (and written, so that it is not forwarded after a restart).
 *
 * Per device the queue remembers the highest `rseq` it took, across
 * compactions and restarts, so that a device repeating a report (its answer
 * was lost) is told 4.09 at once instead of filling the queue twice.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CoapfwError } from '../errors.js';
import { RecordJournal, type JournalRecord } from './journal.js';

/** What a device sent: a registration, a report (with `rseq`), or a legacy `/status` report. */
export type ReportKind = 'register' | 'report' | 'status';

/** One item to forward: where it goes upstream and what it carries. */
export interface ReportItem {
  readonly kind: ReportKind;
  /** The device it is for (upstream path id). */
  readonly device: string;
  /** Upstream Uri-Path segments, e.g. `['d', 'dev-1', 'r']`. */
  readonly path: readonly string[];
  readonly contentFormat?: number;
  readonly body: Uint8Array;
  /** The report counter, for `report` items. */
  readonly rseq?: number;
}

/** An item in the queue, numbered in arrival order. */
export interface QueuedReport extends ReportItem {
  readonly seq: number;
}

/** How an item left the queue. `replay`: the upstream already had it (4.09), counted as delivered. */
export type ReportOutcome = 'delivered' | 'replay' | 'rejected';

/** Limits of the queue; every one has a safe default. */
export interface ReportQueueOptions {
  /** Items waiting at most; beyond, the oldest is dropped (counted). Default 10,000. */
  readonly maxItems?: number;
  /** Bytes of bodies waiting at most; beyond, the oldest are dropped (counted). Default 8 MiB. */
  readonly maxBytes?: number;
  /** Largest single body. Default 1024 bytes. */
  readonly maxItemBytes?: number;
  /** Devices whose highest `rseq` is remembered (least recently heard from forgotten first). Default 50,000. */
  readonly maxDevices?: number;
  /** Sync every write (default true). */
  readonly sync?: boolean;
}

/** Counters. */
export interface ReportQueueStats {
  enqueued: number;
  delivered: number;
  /** Answered 4.09 upstream: it had the item already (a repeat after a crash), counted in `delivered` too. */
  replays: number;
  rejected: number;
  /** Dropped because the queue was full: reports lost. */
  dropped: number;
  /** Bytes cut from a torn journal tail at open. */
  truncatedBytes: number;
}

const ENQ = 1;
const DONE = 2;
const MARK = 3;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The persistent queue of reports for the upstream. */
export class ReportQueue {
  readonly stats: ReportQueueStats = { enqueued: 0, delivered: 0, replays: 0, rejected: 0, dropped: 0, truncatedBytes: 0 };
  private readonly pending = new Map<number, QueuedReport>();
  private readonly rseqs = new Map<string, number>();
  private pendingBytesNow = 0;
  private nextSeq = 1;
  private readonly limits: Required<Omit<ReportQueueOptions, 'sync'>>;

  private constructor(
    private readonly journal: RecordJournal,
    options: ReportQueueOptions,
  ) {
    this.limits = {
      maxItems: positive(options.maxItems, 10_000, 'maxItems'),
      maxBytes: positive(options.maxBytes, 8 << 20, 'maxBytes'),
      maxItemBytes: positive(options.maxItemBytes, 1024, 'maxItemBytes'),
      maxDevices: positive(options.maxDevices, 50_000, 'maxDevices'),
    };
  }

  /** Open the queue kept in `dir` (created if missing): what was pending before a restart is pending again. */
  static async open(dir: string, options: ReportQueueOptions = {}): Promise<ReportQueue> {
    await mkdir(dir, { recursive: true });
    const maxItemBytes = options.maxItemBytes ?? 1024;
    const opened = await RecordJournal.open(join(dir, 'reports.journal'), { sync: options.sync, maxRecordBytes: 4 * maxItemBytes + 1024 });
    const q = new ReportQueue(opened.journal, options);
    q.stats.truncatedBytes = opened.truncatedBytes;
    try {
      for (const r of opened.records) q.replay(r);
    } catch (e) {
      await opened.journal.close();
      if (e instanceof CoapfwError) throw e;
      throw new CoapfwError('QUEUE_CORRUPT', `report queue: ${join(dir, 'reports.journal')} holds a record that does not decode`, { cause: e, path: dir });
    }
    return q;
  }

  /** Items waiting. */
  get size(): number {
    return this.pending.size;
  }

  /** Body bytes waiting. */
  get pendingBytes(): number {
    return this.pendingBytesNow;
  }

  /** The oldest item waiting, if any. */
  oldest(): QueuedReport | undefined {
    return this.pending.values().next().value;
  }

  /** Every item waiting, oldest first. */
  items(): QueuedReport[] {
    return [...this.pending.values()];
  }

  /** Whether anything for `device` is waiting (a new registration must not overtake it). */
  hasPendingFor(device: string): boolean {
    for (const i of this.pending.values()) if (i.device === device) return true;
    return false;
  }

  /** The highest report counter taken for `device`, if any. */
  highestRseq(device: string): number | undefined {
    return this.rseqs.get(device);
  }

  /**
   * Queue `item` durably. A `report` whose `rseq` is not above the highest
   * taken for its device is REPORT_REPLAY (answer 4.09: the queue has it).
   * When the queue is full the oldest items are dropped first, and counted.
   */
  async enqueue(item: ReportItem): Promise<QueuedReport> {
    if (item.body.length > this.limits.maxItemBytes) {
      throw new CoapfwError('TOO_LARGE', `report queue: body of ${item.body.length} bytes exceeds ${this.limits.maxItemBytes}`);
    }
    const before = this.rseqs.get(item.device);
    if (item.rseq !== undefined) {
      if (before !== undefined && item.rseq <= before) throw new CoapfwError('REPORT_REPLAY', `report ${item.rseq} of ${item.device}: already queued (highest ${before})`);
      this.markRseq(item.device, item.rseq);
    }
    const queued: QueuedReport = { ...item, path: [...item.path], seq: this.nextSeq++ };
    try {
      await this.makeRoom(queued.body.length);
      await this.journal.append(ENQ, encodeItem(queued));
    } catch (e) {
      if (item.rseq !== undefined && this.rseqs.get(item.device) === item.rseq) {
        if (before === undefined) this.rseqs.delete(item.device);
        else this.rseqs.set(item.device, before);
      }
      throw e;
    }
    this.pending.set(queued.seq, queued);
    this.pendingBytesNow += queued.body.length;
    this.stats.enqueued++;
    return queued;
  }

  /** Record how item `seq` left the queue (after the upstream answered). Unknown or already dropped items are ignored. */
  async complete(seq: number, outcome: ReportOutcome): Promise<void> {
    const item = this.pending.get(seq);
    if (item === undefined) return;
    await this.journal.append(DONE, encoder.encode(JSON.stringify({ seq, outcome })));
    if (!this.pending.delete(seq)) return;
    this.pendingBytesNow -= item.body.length;
    if (outcome === 'rejected') this.stats.rejected++;
    else this.stats.delivered++;
    if (outcome === 'replay') this.stats.replays++;
    await this.compactIfWorthIt();
  }

  /** Finish pending writes and close the journal. */
  close(): Promise<void> {
    return this.journal.close();
  }

  /** Drop the oldest items until one more of `bytes` fits (each drop written and counted). */
  private async makeRoom(bytes: number): Promise<void> {
    while (this.pending.size > 0 && (this.pending.size + 1 > this.limits.maxItems || this.pendingBytesNow + bytes > this.limits.maxBytes)) {
      const oldest = this.oldest()!;
      this.pending.delete(oldest.seq);
      this.pendingBytesNow -= oldest.body.length;
      this.stats.dropped++;
      await this.journal.append(DONE, encoder.encode(JSON.stringify({ seq: oldest.seq, outcome: 'dropped' })));
    }
  }

  /** Rewrite the journal with only what is still needed once it is mostly finished items. */
  private async compactIfWorthIt(): Promise<void> {
    const live = this.pendingBytesNow + this.pending.size * 200 + this.rseqs.size * 64;
    if (this.journal.bytes < Math.max(1 << 20, 4 * live)) return;
    const records: JournalRecord[] = [];
    for (const [device, rseq] of this.rseqs) records.push({ type: MARK, payload: encoder.encode(JSON.stringify({ device, rseq })) });
    for (const item of this.pending.values()) records.push({ type: ENQ, payload: encodeItem(item) });
    await this.journal.rewrite(records);
  }

  private markRseq(device: string, rseq: number): void {
    this.rseqs.delete(device); // re-insert: most recently heard from last
    this.rseqs.set(device, rseq);
    while (this.rseqs.size > this.limits.maxDevices) this.rseqs.delete(this.rseqs.keys().next().value!);
  }

  /** Rebuild the state from one journal record (records we do not know are skipped: a newer coapfw's). */
  private replay(r: JournalRecord): void {
    const value = JSON.parse(decoder.decode(r.payload)) as Record<string, unknown>;
    if (r.type === ENQ) {
      const item = decodeItem(value);
      this.pending.set(item.seq, item);
      this.pendingBytesNow += item.body.length;
      this.nextSeq = Math.max(this.nextSeq, item.seq + 1);
      if (item.rseq !== undefined && item.rseq > (this.rseqs.get(item.device) ?? -1)) this.markRseq(item.device, item.rseq);
    } else if (r.type === DONE) {
      const item = this.pending.get(Number(value.seq));
      if (item === undefined) return;
      this.pending.delete(item.seq);
      this.pendingBytesNow -= item.body.length;
    } else if (r.type === MARK && typeof value.device === 'string' && typeof value.rseq === 'number') {
      if (value.rseq > (this.rseqs.get(value.device) ?? -1)) this.markRseq(value.device, value.rseq);
    }
  }
}

function encodeItem(i: QueuedReport): Uint8Array {
  const { body, ...rest } = i;
  return encoder.encode(JSON.stringify({ ...rest, body: Buffer.from(body).toString('base64') }));
}

function decodeItem(v: Record<string, unknown>): QueuedReport {
  const kinds: readonly string[] = ['register', 'report', 'status'];
  if (
    typeof v.seq !== 'number' ||
    typeof v.kind !== 'string' ||
    !kinds.includes(v.kind) ||
    typeof v.device !== 'string' ||
    !Array.isArray(v.path) ||
    !v.path.every((s) => typeof s === 'string') ||
    typeof v.body !== 'string'
  ) {
    throw new CoapfwError('QUEUE_CORRUPT', 'report queue: a queued item does not have the expected fields');
  }
  return {
    seq: v.seq,
    kind: v.kind as ReportKind,
    device: v.device,
    path: v.path as string[],
    contentFormat: typeof v.contentFormat === 'number' ? v.contentFormat : undefined,
    rseq: typeof v.rseq === 'number' ? v.rseq : undefined,
    body: new Uint8Array(Buffer.from(v.body, 'base64')),
  };
}

function positive(v: number | undefined, dflt: number, name: string): number {
  const n = v ?? dflt;
  if (!Number.isSafeInteger(n) || n < 1) throw new CoapfwError('INVALID_ARGUMENT', `report queue: ${name} must be an integer >= 1, got ${n}`);
  return n;
}
