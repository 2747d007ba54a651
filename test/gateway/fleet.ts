/** Simulated devices behind a gateway: a device on MemoryFlash that registers, updates (runUpdate) and reports. */
import { openClient, type CoapClient } from '../../src/client/open.js';
import { Code, ContentFormat, OptionNumber } from '../../src/codec/numbers.js';
import { pathOptions, uintOption } from '../../src/codec/options.js';
import { provisionDevice } from '../../src/device/device.js';
import type { UpdateStatus } from '../../src/device/report.js';
import { runUpdate } from '../../src/device/updater.js';
import { createLayout, type FlashLayout } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { encodeBody } from '../../src/gateway/body.js';
import { systemRuntime } from '../../src/transport/runtime.js';
import { CLASS, CLASS_HEX, TRUST, VENDOR } from './upstream.js';

/** One simulated device. */
export class SimDevice {
  readonly flash: MemoryFlash;
  readonly layout: FlashLayout;
  rseq = 0;
  private client: CoapClient | undefined;

  private constructor(
    readonly id: string,
    private readonly base: string,
    slotSize: number,
  ) {
    this.flash = new MemoryFlash({ size: 2 * slotSize + 8 * 4096, eraseBlockSize: 4096 });
    this.layout = createLayout(this.flash, { slotSize });
  }

  /** A provisioned device at sequence 1 talking to the gateway at `base` (coap://host:port). */
  static async create(id: string, base: string, slotSize: number): Promise<SimDevice> {
    const d = new SimDevice(id, base, slotSize);
    await provisionDevice(d.flash, d.layout, new TextEncoder().encode(`factory image of ${id}`), 1);
    d.client = await openClient(`${base}/`);
    return d;
  }

  /** POST /d/<id>: the answer code. */
  async register(): Promise<number> {
    const body = encodeBody({ vendor: Buffer.from(VENDOR).toString('hex'), class: CLASS_HEX, seq: 1, mode: 'client' }, ContentFormat.CBOR);
    const r = await this.client!.request({ code: Code.POST, options: [...pathOptions(`/d/${this.id}`), uintOption(OptionNumber.CONTENT_FORMAT, ContentFormat.CBOR)], payload: body }, {});
    return r.code;
  }

  /** POST /d/<id>/r with the next rseq: the answer code. */
  async report(state: string, extra: Record<string, unknown> = {}): Promise<number> {
    const rseq = ++this.rseq;
    const body = encodeBody({ rseq, state, ...extra }, ContentFormat.CBOR);
    const r = await this.client!.request({ code: Code.POST, options: [...pathOptions(`/d/${this.id}/r`), uintOption(OptionNumber.CONTENT_FORMAT, ContentFormat.CBOR)], payload: body }, {});
    return r.code;
  }

  /** Update from the gateway's `/m/<class>`. */
  update(): Promise<UpdateStatus> {
    return runUpdate({
      flash: this.flash,
      layout: this.layout,
      request: this.client!.request,
      manifestUri: `${this.base}/m/${CLASS_HEX}`,
      runtime: systemRuntime,
      trust: TRUST,
      vendorId: VENDOR,
      classId: CLASS,
      blockRetry: { attempts: 30, baseMs: 200, maxMs: 2000, maxRetryAfterMs: 5000 },
      retry: { attempts: 3, baseMs: 200, maxMs: 1000 },
    });
  }

  close(): Promise<void> {
    return this.client?.close() ?? Promise.resolve();
  }
}
