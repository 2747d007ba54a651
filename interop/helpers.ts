/**
 * Helpers of the interop tests: the generic process and fixture helpers of
 * `bench/procs.ts`, plus the CI rule for missing binaries.
 */
import { describe, it } from 'vitest';

export * from '../bench/procs.js';

/**
 * `describe` for tests that need external binaries: runs them when `missing`
 * is undefined; otherwise, under CI (the `CI` environment variable set) a
 * single failing test says what is missing, and locally the block is skipped
 * with the reason in its name.
 */
export function describeWithBinaries(name: string, missing: string | undefined, body: () => void): void {
  if (missing === undefined) {
    describe(name, body);
  } else if (process.env.CI) {
    describe(name, () => {
      it('has the binaries it needs (CI must not skip interop)', () => {
        throw new Error(`interop cannot run under CI: ${missing}`);
      });
    });
  } else {
    describe.skip(`${name} [skipped: ${missing}]`, body);
  }
}


/**
 * How long to let `coap-client -B` wait for a block-wise GET of `size` bytes
 * at `blockSize`, in seconds. libcoap's -B is a deadline for the whole
 * transfer, not per response, and a client cut off by it still exits 0 with
 * a short file. So the bound must hold on the slowest machine that runs the
 * tests, a loaded 2-core CI box: 50 ms per round trip (about 30 times what
 * one takes through node-coap on an idle development machine, 1.5 ms, and 15
 * times what four parallel transfers took there at a load average of 12),
 * plus 30 s for start-up and scheduling. Correctness is judged by the
 * SHA-256 of the output, never by the time taken; speed is for bench/.
 * (A transfer that stops dead is another matter: libcoap 4.3.1 stalls on a
 * separate response to a Block2 request, see libcoap-adapter.test.ts.)
 */
export function blockwiseWaitSeconds(size: number, blockSize: number): number {
  const roundTrips = Math.max(1, Math.ceil(size / blockSize));
  return 30 + Math.ceil(roundTrips * 0.05);
}

/** What node-coap's Agent got: code, the whole (reassembled) payload, and the options of the last response. */
export interface NodeCoapGetResult {
  readonly code: string;
  readonly payload: Buffer;
  readonly headers: Record<string, unknown>;
}

/**
 * GET `pathname` with node-coap's Agent (coap 1.x), which follows Block2 to
 * the end by itself and hands back the reassembled payload. `block2` adds a
 * Block2 option to the first request (early negotiation of the block size).
 * Rejects after `timeoutMs`.
 */
export async function nodeCoapGet(host: string, port: number, pathname: string, options: { block2?: Buffer; timeoutMs?: number } = {}): Promise<NodeCoapGetResult> {
  const coap = await import('coap');
  const agent = new coap.Agent({ type: host.includes(':') ? 'udp6' : 'udp4' });
  try {
    return await new Promise<NodeCoapGetResult>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node-coap GET ${pathname}: no response in ${options.timeoutMs ?? 15_000} ms`)), options.timeoutMs ?? 15_000);
      const req = coap.request({ hostname: host, port, pathname, method: 'GET', agent });
      if (options.block2) req.setOption('Block2', options.block2);
      req.on('response', (res: { code: string; payload: Buffer; headers: Record<string, unknown> }) => {
        clearTimeout(timer);
        resolve({ code: res.code, payload: res.payload, headers: res.headers });
      });
      req.on('error', (e: Error) => {
        clearTimeout(timer);
        reject(e);
      });
      req.end();
    });
  } finally {
    agent.close();
  }
}
