/**
 * The reorder memory of a Q-Block2 device update stays within its bound
 * (3 x maxAhead blocks: device/qblock2-download.ts; past it the buffer fails
 * with LIMIT_EXCEEDED) when flash is slow and blocks are lost, so later ones
 * pile up behind holes and behind writes: the update completes, with small
 * and large bounds alike.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeBlock } from '../../src/codec/block.js';
import { decodeMessage } from '../../src/codec/message.js';
import { OptionNumber } from '../../src/codec/numbers.js';
import { getOption } from '../../src/codec/options.js';
import { powerOn, provisionDevice } from '../../src/device/device.js';
import { runUpdate } from '../../src/device/updater.js';
import type { FlashBackend } from '../../src/flash/backend.js';
import { hashArea } from '../../src/flash/image.js';
import { createLayout } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { systemRuntime } from '../../src/transport/runtime.js';
import { CLASS, hex, image, MANIFEST_URI, MemUpdateServer, SERVER, TRUST, VENDOR } from './update-helpers.js';

const A = image(10_000, 1);
const B = image(48 * 1024, 3); // 48 blocks

/** `inner` with every write and erase taking `ms` of real time (a slow NOR part). */
function slow(inner: MemoryFlash, ms: number): FlashBackend {
  const wait = (): Promise<void> => new Promise((r) => setTimeout(r, ms));
  return {
    size: inner.size,
    eraseBlockSize: inner.eraseBlockSize,
    writeAlignment: inner.writeAlignment,
    read: (o, n) => inner.read(o, n),
    write: async (o, d) => (await wait(), inner.write(o, d)),
    erase: async (o, n) => (await wait(), inner.erase(o, n)),
  };
}

let server: MemUpdateServer;
afterEach(async () => server?.close());

describe('Q-Block2 reorder memory under slow flash and loss', () => {
  for (const maxAhead of [1, 2, 8]) {
    it(`maxAhead ${maxAhead}: completes with the right image (no LIMIT_EXCEEDED)`, async () => {
      server = new MemUpdateServer(6, true);
      server.publish(B, 2);
      // The first copy of every fifth block is lost: later blocks wait behind each hole.
      const lost = new Set<number>();
      server.net.filter = (from, _to, data) => {
        if (from.port !== SERVER.port) return true;
        const raw = getOption(decodeMessage(data), OptionNumber.Q_BLOCK2);
        if (raw === undefined) return true;
        const n = decodeBlock(raw).num;
        if (n % 5 !== 2 || lost.has(n)) return true;
        lost.add(n);
        return false;
      };
      const mem = new MemoryFlash({ size: 2 * 52 * 1024 + 6 * 4096, eraseBlockSize: 4096 });
      const layout = createLayout(mem, { slotSize: 52 * 1024 });
      await provisionDevice(mem, layout, A, 1);
      const flash = slow(mem, 2);
      const c = server.client(systemRuntime);
      try {
        const st = await runUpdate({ flash, layout, request: c.request, openStream: c.openStream, maxAhead, manifestUri: MANIFEST_URI, runtime: systemRuntime, trust: TRUST, vendorId: VENDOR, classId: CLASS });
        expect(st, JSON.stringify(st)).toMatchObject({ result: 'installed', blocksFetched: 48, restarts: 0 });
      } finally {
        await c.close();
      }
      expect(lost.size).toBeGreaterThan(5);
      expect(hex(await hashArea(mem, layout.secondary, B.length))).toBe(hex(sha256(B)));
      expect(hex((await powerOn(mem, layout)).boot.image.digest)).toBe(hex(sha256(B)));
    }, 60_000);
  }
});
