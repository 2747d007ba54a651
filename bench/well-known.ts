/**
 * `/.well-known/core` with 10,000 files: the time one filtered query costs
 * when its result must be computed (22 rotating queries from one peer, the
 * case a per-query cache cannot help), through the index, against the linear
 * filter-encode-hash a miss used to cost. Prints JSON; `node dist/bench/well-known.js`.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { encodeBlock } from '../src/codec/block.js';
import { filterLinks, formatLinks } from '../src/codec/link-format.js';
import { Code, MessageType, OptionNumber } from '../src/codec/numbers.js';
import { pathOptions } from '../src/codec/options.js';
import { directoryLinks } from '../src/server/file-server.js';
import { FileRepository } from '../src/server/files.js';
import { LinkIndex } from '../src/server/link-index.js';
import { WellKnownCore } from '../src/server/well-known.js';
import { systemRuntime } from '../src/transport/runtime.js';

const FILES = 10_000;
const QUERIES = [
  'rt=firmware', 'rt=firm*', 'rt=coapfw.status', 'rt=*', 'href=/files/d07/*', 'href=/files/d42/f-4242.bin', 'href=/fw/sha256/0*',
  'href=/fw/sha256/ab*', 'title=d13/f-1342.bin', 'title=d5*', 'sz=42', 'sz=4*', 'ct=42', 'ct=50', 'obs=*', 'if=sensor',
  'href=/nothing*', 'rt=firmware*', 'href=*', 'title=d99/*', 'sz=106', 'href=/status',
];

const dir = await mkdtemp(join(tmpdir(), 'coapfw-bench-core-'));
try {
  for (let d = 0; d < 100; d++) {
    const sub = join(dir, `d${String(d).padStart(2, '0')}`);
    await mkdir(sub);
    await Promise.all(Array.from({ length: FILES / 100 }, (_, k) => writeFile(join(sub, `f-${String(d * 100 + k).padStart(4, '0')}.bin`), `file ${d * 100 + k}`)));
  }
  const repo = await FileRepository.open(dir, { maxFiles: FILES });
  const links = directoryLinks(repo, true);
  const time = (f: () => void, rounds: number): number => {
    const t0 = performance.now();
    for (let i = 0; i < rounds; i++) f();
    return (performance.now() - t0) / rounds;
  };
  // What a miss used to cost: filter every link, encode the document, hash it for the ETag.
  const linear = time(() => {
    for (const q of QUERIES) sha256(new TextEncoder().encode(formatLinks(filterLinks(links, q))));
  }, 3) / QUERIES.length;
  const indexBuildMs = time(() => new LinkIndex(links), 3);
  // Through the resource, caching off, no rate limit: every query computed from the index, block 0 served.
  const core = new WellKnownCore(() => links, systemRuntime, { maxCachedQueries: 0, perPeer: { ratePerSecond: 1e9, burst: 1e9 }, overall: { ratePerSecond: 1e9, burst: 1e9 } });
  const resource = core.resource();
  const request = (q: string) => ({
    message: { type: MessageType.CON, code: Code.GET, messageId: 1, token: Uint8Array.of(1), options: [...pathOptions('/.well-known/core'), { number: OptionNumber.URI_QUERY, value: new TextEncoder().encode(q) }, { number: OptionNumber.BLOCK2, value: encodeBlock({ num: 0, more: false, szx: 6 }) }], payload: new Uint8Array() },
    peer: { address: '10.0.0.1', port: 1 },
  });
  resource.handle(request(QUERIES[0]!)); // builds the index once
  const indexed = time(() => {
    for (const q of QUERIES) resource.handle(request(q));
  }, 20) / QUERIES.length;
  await repo.close();
  process.stdout.write(`${JSON.stringify({ files: FILES, links: links.length, queries: QUERIES.length, msPerUncachedQuery: { linear: +linear.toFixed(3), indexed: +indexed.toFixed(3) }, indexBuildMs: +indexBuildMs.toFixed(1) }, null, 2)}\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
