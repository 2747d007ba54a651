/**
 * Benchmark: differential updates on real binaries of consecutive versions.
 * For each pair (the native executable inside a bundler's platform package at
 * two versions, fetched with `npm pack` into .cache/bench-delta/, which git
 * ignores), it reports the full image, gzip -9 of it, the CFD1 delta with and
 * without DEFLATE, the encode and apply times, and the decoder's working
 * memory (the RAM a device needs to apply it; matching time is the
 * publisher's, shared by the variants), plus the per-block digest
 * list a device fetches beside it, and one simulated device update over
 * loopback UDP from `coapfw serve` (bench/device-small.ts) as the delta
 * against as the full image: time on the device, bytes received, the
 * applier's RAM. Prints one JSON object.
 * Run: `npm run -s build && node dist/bench/delta.js [pair ...]`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { applyDelta } from '../src/delta/image.js';
import { encodeDelta } from '../src/delta/encode.js';
import { diffOps } from '../src/delta/match.js';
import { buildBlockDigests } from '../src/suit/block-digests.js';
import { deviceRun, digestsFor, releaseFiles, serveFiles } from './device-small.js';

/** A pair: one npm package at two versions and the path of the executable inside. */
interface Pair {
  readonly name: string;
  readonly pkg: string;
  readonly from: string;
  readonly to: string;
  readonly file: string;
}

const PAIRS: readonly Pair[] = [
  { name: 'esbuild-0.24.0-0.24.1', pkg: '@esbuild/linux-x64', from: '0.24.0', to: '0.24.1', file: 'package/bin/esbuild' },
  { name: 'esbuild-0.24.1-0.24.2', pkg: '@esbuild/linux-x64', from: '0.24.1', to: '0.24.2', file: 'package/bin/esbuild' },
  { name: 'rollup-4.28.0-4.28.1', pkg: '@rollup/rollup-linux-x64-gnu', from: '4.28.0', to: '4.28.1', file: 'package/rollup.linux-x64-gnu.node' },
];

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cache = join(root, '.cache', 'bench-delta');

/** The executable of `pkg@version`, downloaded once with `npm pack` and unpacked with tar. */
function fetchBinary(pkg: string, version: string, file: string): Uint8Array {
  const dir = join(cache, `${pkg.replace(/[@/]/g, '_')}-${version}`);
  const path = join(dir, file);
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true });
    const pack = spawnSync('npm', ['pack', `${pkg}@${version}`, '--silent', '--pack-destination', dir], { encoding: 'utf8', timeout: 300_000 });
    if (pack.status !== 0) throw new Error(`npm pack ${pkg}@${version} failed: ${pack.stderr}`);
    const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    if (!tgz) throw new Error(`npm pack ${pkg}@${version}: no tarball`);
    const tar = spawnSync('tar', ['-xzf', join(dir, tgz), '-C', dir], { encoding: 'utf8' });
    if (tar.status !== 0) throw new Error(`tar: ${tar.stderr}`);
  }
  return new Uint8Array(readFileSync(path));
}

const ratio = (a: number, b: number): number => Math.round((a / b) * 10000) / 10000;

async function measure(p: Pair): Promise<Record<string, unknown>> {
  const a = fetchBinary(p.pkg, p.from, p.file);
  const b = fetchBinary(p.pkg, p.to, p.file);
  const gz = gzipSync(b, { level: 9 }).length;
  const out: Record<string, unknown> = { pair: p.name, package: p.pkg, from: p.from, to: p.to, sourceBytes: a.length, targetBytes: b.length, gzipTargetBytes: gz, gzipRatio: ratio(gz, b.length) };
  let t = performance.now();
  const ops = diffOps(a, b); // suffix array + bsdiff matching, shared by the variants
  out.matchMs = Math.round(performance.now() - t);
  const variants: Record<string, unknown>[] = [];
  let first: Uint8Array | undefined;
  for (const [frameSize, compression] of [[4096, 'deflate'], [4096, 'none'], [1024, 'deflate']] as const) {
    t = performance.now();
    const delta = encodeDelta(a, b, ops, { frameSize, compression });
    first ??= delta;
    const encodeMs = performance.now() - t;
    t = performance.now();
    const r = await applyDelta(delta, a, { pushSize: 1024 });
    const applyMs = performance.now() - t;
    if (!Buffer.from(r.target).equals(Buffer.from(b))) throw new Error(`${p.name}: the delta does not rebuild the target`);
    variants.push({
      frameSize,
      compression,
      deltaBytes: delta.length,
      ratioToFull: ratio(delta.length, b.length),
      ratioToGzip: ratio(delta.length, gz),
      frameEncodeMs: Math.round(encodeMs),
      applyMs: Math.round(applyMs),
      applyMiBps: Math.round((b.length / 1048576 / (applyMs / 1000)) * 10) / 10,
      decoderWorkingMemoryBytes: r.workingMemory,
    });
  }
  out.variants = variants;
  // What a device fetches beside the image to check each 1024-byte block before writing it.
  const digests = buildBlockDigests(b, { blockSize: 1024 });
  const deltaDigests = buildBlockDigests(first!, { blockSize: 1024 });
  out.blockDigests = { blockSize: 1024, imageDigestBytes: digests.resource.length, imageOverhead: ratio(digests.resource.length, b.length), deltaDigestBytes: deltaDigests.resource.length };
  out.device = await onDevice(a, b, first!);
  return out;
}

/**
 * The same update on a simulated A/B device (4 KiB erase blocks, 1 KiB CoAP
 * blocks, every block checked): full image against the delta of 4 KiB frames.
 * The delta path fetches the delta's digest list and the image's (each output
 * block is checked before it is written).
 */
async function onDevice(a: Uint8Array, b: Uint8Array, delta: Uint8Array): Promise<Record<string, unknown>> {
  const served = await serveFiles(releaseFiles(a, b, { bytes: delta, frameSize: 4096 }));
  try {
    const slot = Math.ceil(Math.max(a.length, b.length) / 4096) * 4096;
    const imageDigests = digestsFor(b).resource.length;
    const full = await deviceRun(served, served.uri('full.suit'), a, slot, 4096, imageDigests);
    const viaDelta = await deviceRun(served, served.uri('delta.suit'), a, slot, 4096, imageDigests + digestsFor(delta).resource.length);
    return {
      full,
      delta: viaDelta,
      timeRatio: ratio(viaDelta.updateMs, full.updateMs),
      receivedRatio: ratio(viaDelta.payloadBytes + viaDelta.digestBytes, full.payloadBytes + full.digestBytes),
    };
  } finally {
    await served.close();
  }
}

async function main(): Promise<void> {
  const want = process.argv.slice(2);
  const pairs = want.length > 0 ? PAIRS.filter((p) => want.includes(p.name)) : PAIRS;
  const results: Record<string, unknown>[] = [];
  for (const p of pairs) {
    process.stderr.write(`bench delta: ${p.name} ...\n`);
    try {
      results.push(await measure(p));
    } catch (e) {
      results.push({ pair: p.name, error: (e as Error).message });
      process.exitCode = 1;
    }
  }
  process.stdout.write(`${JSON.stringify({ node: process.version, pairs: results }, null, 2)}\n`);
}

await main();
