/** Shared records and assertions of the store suites. */
import { expect } from 'vitest';
import { isCoapfwError, type CoapfwErrorCode } from '../../src/errors.js';
import type { DeviceRegistration, NewRelease } from '../../src/service/model.js';

/** The README's vendor and class UUIDs, as hex. */
export const VENDOR = 'fa6b4a53d5ad5fdfbe9de663e4d41ffe';
export const CLASS = '1492af1425695e48bf429b2d51f2ab45';
export const OTHER_CLASS = '00112233445566778899aabbccddeeff';
export const DIGEST = 'aa'.repeat(32);

/** A registration of device `id` (mode client, installed sequence 1). */
export function registration(id: string, over: Partial<DeviceRegistration> = {}): DeviceRegistration {
  return { id, vendorId: VENDOR, classId: CLASS, installedSeq: 1, mode: 'client', ...over };
}

/** Deterministic bytes of a given length, different per seed. */
export function bytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed * 2654435761;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** A release of CLASS with sequence `seq`, an envelope and one image. */
export function release(seq: number, over: Partial<NewRelease> = {}): NewRelease {
  return {
    classId: CLASS,
    vendorId: VENDOR,
    sequence: seq,
    urgency: 'normal',
    envelope: bytes(300, seq * 7 + 1),
    images: [bytes(5000, seq * 7 + 2)],
    publisher: 'oem',
    ...over,
  };
}

/** Await `p` and expect it to reject with a CoapfwError of `code`. */
export async function expectCode(p: Promise<unknown>, code: CoapfwErrorCode): Promise<void> {
  let error: unknown;
  try {
    await p;
  } catch (e) {
    error = e;
  }
  expect(error, `expected ${code}`).toBeDefined();
  expect(isCoapfwError(error) ? error.code : error).toBe(code);
}

/** Outcomes of settled promises: how many fulfilled, and the codes of the rejections. */
export function outcomes(results: readonly PromiseSettledResult<unknown>[]): { ok: number; codes: string[] } {
  const codes = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => (isCoapfwError(r.reason) ? r.reason.code : String(r.reason)));
  return { ok: results.filter((r) => r.status === 'fulfilled').length, codes };
}
