/** Fixtures for the issue-13 device tests: releases with block digests (and deltas), served from a MemUpdateServer. */
import { buildRelease, type Release, type ReleaseInput } from '../../src/delta/release.js';
import type { UpdateOptions } from '../../src/device/states.js';
import type { FlashLayout } from '../../src/flash/layout.js';
import type { MemoryFlash } from '../../src/flash/memory.js';
import type { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { CLASS, KEY, MANIFEST_URI, TRUST, VENDOR, type MemUpdateServer } from './update-helpers.js';

/** A signed release of `image` (sequence `sequence`) with 1 KiB block digests unless told otherwise. */
export function release(image: Uint8Array, sequence: number, more: Partial<ReleaseInput> = {}): Release {
  return buildRelease({ sequence, vendorId: VENDOR, classId: CLASS, image, ...more }, [KEY]);
}

/** Serve every blob of `r` at its content address and its envelope at /manifest.suit. */
export function serveRelease(server: MemUpdateServer, r: Release): void {
  for (const b of r.blobs) server.put(b.uri, b.bytes);
  server.put('manifest.suit', r.envelope);
}

/** The path a blob of `r` is served at (for counting and tampering). */
export function blobPath(r: Release, role: Release['blobs'][number]['role']): string {
  const b = r.blobs.find((x) => x.role === role);
  if (!b) throw new Error(`release has no ${role}`);
  return b.uri.replace(/^\//, '');
}

/** `bytes` with byte `at` inverted. */
export function flipped(bytes: Uint8Array, at: number): Uint8Array {
  const out = bytes.slice();
  out[at] = out[at]! ^ 0xff;
  return out;
}

/** runUpdate options for a device on `flash`/`layout` talking to `server` with a fresh client port. */
export function updateOptions(server: MemUpdateServer, flash: MemoryFlash, layout: FlashLayout, runtime: FakeRuntime, extra: Partial<UpdateOptions> = {}): { opts: UpdateOptions; close: () => Promise<void> } {
  const c = server.client(runtime);
  return {
    opts: { flash, layout, request: c.request, manifestUri: MANIFEST_URI, runtime, trust: TRUST, vendorId: VENDOR, classId: CLASS, statusPath: '/status/dev', ...extra },
    close: c.close,
  };
}
