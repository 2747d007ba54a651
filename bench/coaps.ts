/**
 * Benchmark: 1 MiB block-wise (1024-byte blocks) over coaps (DTLS 1.2 PSK,
 * TLS_PSK_WITH_AES_128_CCM_8) against plain CoAP, in the same run, on loopback:
 *  - our client (openClient + fetchBlocks) against our file server, in one process;
 *  - libcoap's coap-client-openssl (coaps) and coap-client-notls (coap) against
 *    our file server; their time includes process start and, for coaps, the handshake.
 * Each case runs `--runs` times (default 5); the median is reported. Prints JSON.
 *
 *   npm run build && node dist/bench/coaps.js [--runs N] [--size BYTES]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { fetchBlocks } from '../src/blockwise/fetch.js';
import { startFileServer } from '../src/server/serve.js';
import { openClient, type ClientOptions } from '../src/client/open.js';
import { PskStore } from '../src/transport/dtls/psk-store.js';

const ID = 'bench';
const KEY_TEXT = 'bench-secret-key';
const BLOCK = 1024;

/** One measured case: median wall time and what it means in blocks per second. */
interface Measure {
  readonly medianMs: number;
  readonly runsMs: number[];
  readonly blocksPerSec: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function measure(runs: number, blocks: number, once: () => Promise<void>): Promise<Measure> {
  await once(); // warm-up: JIT, file cache, first handshake code paths
  const runsMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await once();
    runsMs.push(Math.round((performance.now() - t0) * 10) / 10);
  }
  const medianMs = median(runsMs);
  return { medianMs, runsMs, blocksPerSec: Math.round(blocks / (medianMs / 1000)) };
}

/** Our client: open (handshake included for coaps), fetch every block, check the digest, close. */
async function ourFetch(uri: string, expected: string, options: ClientOptions): Promise<void> {
  const client = await openClient(uri, options);
  try {
    const h = sha256.create();
    for await (const b of fetchBlocks(client.request, { runtime: client.runtime, options: client.options, retry: { attempts: 5, baseMs: 50 } })) {
      h.update(b.data);
    }
    const got = bytesToHex(h.digest());
    if (got !== expected) throw new Error(`${uri}: SHA-256 mismatch (${got})`);
  } finally {
    await client.close();
  }
}

/** libcoap's client writing to a file; its exit code means little, so the digest is checked. */
function libcoapFetch(cmd: string, args: string[], out: string, expected: string): () => Promise<void> {
  return async () => {
    await rm(out, { force: true });
    await new Promise<void>((resolve, reject) => {
      const child = spawn(cmd, [...args, '-o', out], { stdio: 'ignore' });
      const t = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('error', reject);
      child.on('close', () => (clearTimeout(t), resolve()));
    });
    const got = await readFile(out).then((b) => bytesToHex(sha256(b)), () => 'missing');
    if (got !== expected) throw new Error(`${cmd}: SHA-256 mismatch (${got})`);
  };
}

const has = (cmd: string): boolean => spawnSync(cmd, ['-h'], { stdio: 'ignore', timeout: 5000 }).error === undefined;
const ratio = (secure: Measure, plain: Measure): number => Math.round((secure.blocksPerSec / plain.blocksPerSec) * 1000) / 1000;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string' }, size: { type: 'string' } } });
  const runs = Number(values.runs ?? 5);
  const size = Number(values.size ?? 1024 * 1024);
  if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(size) || size < 1) throw new Error('--runs and --size must be positive integers');
  const blocks = Math.ceil(size / BLOCK);

  const dir = await mkdtemp(join(tmpdir(), 'coapfw-bench-coaps-'));
  const data = Uint8Array.from({ length: size }, (_, i) => (i * 2654435761) >>> 24);
  const expected = bytesToHex(sha256(data));
  await writeFile(join(dir, 'big'), data);
  const psk = PskStore.fromEntries([[ID, new TextEncoder().encode(KEY_TEXT)]]);
  const server = await startFileServer({ dir, host: '127.0.0.1', port: 0, refreshMs: 0, secure: { psk, host: '127.0.0.1', port: 0 } });
  const coap = `coap://127.0.0.1:${server.address().port}/files/big`;
  const coaps = `coaps://127.0.0.1:${server.dtls!.address().port}/files/big`;
  try {
    const ourPlain = await measure(runs, blocks, () => ourFetch(coap, expected, {}));
    const ourSecure = await measure(runs, blocks, () => ourFetch(coaps, expected, { psk: { identity: ID, key: KEY_TEXT } }));
    const hs = await measure(runs, 1, async () => (await openClient(coaps, { psk: { identity: ID, key: KEY_TEXT } })).close());
    const result: Record<string, unknown> = {
      bench: 'coaps-vs-coap',
      bytes: size,
      blockSize: BLOCK,
      blocks,
      runs,
      node: process.version,
      cpus: cpus().length,
      cipherSuite: 'TLS_PSK_WITH_AES_128_CCM_8',
      note: 'loopback; our client and server share one process; times include opening the client (the DTLS handshake for coaps)',
      ours: { coap: ourPlain, coaps: ourSecure, coapsToCoapRatio: ratio(ourSecure, ourPlain), handshakeMedianMs: hs.medianMs },
    };
    if (has('coap-client-openssl') && has('coap-client-notls')) {
      const out = join(dir, 'out');
      const lcPlain = await measure(runs, blocks, libcoapFetch('coap-client-notls', ['-b', String(BLOCK), coap], out, expected));
      const lcSecure = await measure(runs, blocks, libcoapFetch('coap-client-openssl', ['-u', ID, '-k', KEY_TEXT, '-b', String(BLOCK), coaps], out, expected));
      result.libcoapClient = {
        note: 'coap-client-notls (coap) and coap-client-openssl (coaps) against our server; times include process start',
        coap: lcPlain,
        coaps: lcSecure,
        coapsToCoapRatio: ratio(lcSecure, lcPlain),
      };
    } else {
      result.libcoapClient = { skipped: 'coap-client-openssl or coap-client-notls not found (apt-get install libcoap3-bin)' };
    }
    result.dtlsServer = { ...server.dtls!.stats };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/coaps: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
