/**
 * The client's 'rfc' pacing (RFC 9177 §4.4, §7.2 to the letter): after the
 * request for the entire body, a 'Continue' when a whole MAX_PAYLOADS_SET
 * arrived; NON_RECEIVE_TIMEOUT after the last payload, one request listing
 * every missing block (a run reaching the end of its set as one option with
 * M set, Figure 11); the wait doubles per repeat (Time-to-Wait =
 * NON_RECEIVE_TIMEOUT * 2^(Re-Request-Count - 1)); after NON_MAX_RETRANSMIT
 * requests without an answer the body is given up.
 */
import { CoapfwError } from '../errors.js';
import type { BlockBitmap } from './bitmap.js';
import type { Pacer, PacerHost } from './qblock2-types.js';
import { continueRequest, missingRequests, type QBlockItem } from './qblock2-options.js';
import { nonReceiveWait } from './qblock2-params.js';

/** §7.2 pacing for one body. */
export class RfcPacer implements Pacer {
  private readonly continued = new Set<number>();
  private highestSet = 0;
  private rerequests = 0;

  constructor(private readonly h: PacerHost) {}

  begin(): void {
    this.h.armTimer(nonReceiveWait(this.h.params, 1));
  }

  onPayload(): void {
    // Duplicates change nothing here: the timers run from the last new payload.
  }

  onBlock(num: number): void {
    const mp = this.h.params.maxPayloads;
    const set = Math.floor(num / mp);
    this.highestSet = Math.max(this.highestSet, set);
    this.rerequests = 0;
    this.maybeContinue(set);
    // §4.4: wait NON_RECEIVE_TIMEOUT after the last received payload before asking for missing ones.
    this.h.armTimer(nonReceiveWait(this.h.params, 1));
  }

  onTimer(): void {
    const { params, shape, bitmap, stats } = this.h;
    const mp = params.maxPayloads;
    this.rerequests++;
    if (this.rerequests > params.nonMaxRetransmit) {
      // §7.2: past NON_MAX_RETRANSMIT the client discards the partial body.
      throw new CoapfwError('TIMEOUT', `q-block2: blocks still missing after ${params.nonMaxRetransmit} requests (NON_MAX_RETRANSMIT)`);
    }
    const end = Math.min(shape.total, (this.highestSet + 1) * mp);
    const items = compressRuns(bitmap, end, mp);
    if (items.length > 0) {
      stats.rerequested += bitmap.missingIn(0, end);
      for (const spec of missingRequests(this.h.o.options, items, shape.szx, this.h.o.limits)) this.h.send(spec);
    } else {
      // Every set seen is whole: the Continue (or the next set) was lost; continue again.
      stats.continues++;
      this.h.send(continueRequest(this.h.o.options, end, shape.szx, mp));
    }
    this.h.armTimer(nonReceiveWait(params, this.rerequests + 1));
  }

  /** §7.2: on receipt of all of a MAX_PAYLOADS_SET, a 'Continue' for the next, once. */
  private maybeContinue(set: number): void {
    const { params, shape, bitmap, stats } = this.h;
    const mp = params.maxPayloads;
    const next = (set + 1) * mp;
    if (next >= shape.total || this.continued.has(next)) return;
    if (bitmap.missingIn(set * mp, next) > 0 || bitmap.missingIn(next, Math.min(shape.total, next + mp)) < Math.min(mp, shape.total - next)) return;
    this.continued.add(next);
    stats.continues++;
    this.h.send(continueRequest(this.h.o.options, next, shape.szx, mp));
  }
}

/**
 * The missing blocks below `end` as Q-Block2 items: a run of missing blocks
 * that reaches the end of its MAX_PAYLOADS_SET becomes one item with M set
 * (Figure 11), other blocks one item each (Figure 10).
 */
export function compressRuns(bitmap: BlockBitmap, end: number, maxPayloads: number): QBlockItem[] {
  const items: QBlockItem[] = [];
  for (const r of bitmap.missingRanges(Number.MAX_SAFE_INTEGER)) {
    if (r.start >= end) break;
    pushRun(items, r.start, Math.min(r.end, end), bitmap.total, maxPayloads);
  }
  return items;
}

/**
 * Append the blocks [start, stop) as items: the part of the run reaching the
 * end of its MAX_PAYLOADS_SET as one item with M set, the rest singly. A NUM
 * of 0 or a multiple of MAX_PAYLOADS with M set would mean 'entire body' or
 * 'Continue' (§4.4), so such a block is listed on its own.
 */
export function pushRun(items: QBlockItem[], start: number, stop: number, total: number, maxPayloads: number): void {
  let n = start;
  while (n < stop) {
    const setEnd = Math.min(total, (Math.floor(n / maxPayloads) + 1) * maxPayloads);
    if (stop >= setEnd && setEnd - n > 1 && n % maxPayloads !== 0) {
      items.push({ num: n, more: true });
      n = setEnd;
    } else {
      items.push({ num: n, more: false });
      n++;
    }
  }
}
