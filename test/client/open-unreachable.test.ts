/**
 * openClient with `unreachable: 'fail'` (src/client/open.ts): one shared
 * controller fails the requests in flight on an ICMP error, and is renewed
 * after it, so the requests that come later (the server is back) are not
 * failed by that old error, with or without the caller's own signal.
 */
import { describe, expect, it } from 'vitest';
import { Code } from '../../src/codec/numbers.js';
import { openClient } from '../../src/client/open.js';
import { CoapEndpoint } from '../../src/messaging/endpoint.js';
import { systemRuntime } from '../../src/transport/runtime.js';
import { UdpTransport } from '../../src/transport/udp.js';

describe('openClient: after an ICMP unreachable', () => {
  it('fails the requests in flight with UNREACHABLE, then serves later ones once the server is there', async () => {
    const probe = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
    const port = probe.address().port;
    await probe.close();
    const client = await openClient(`coap://127.0.0.1:${port}/x`, { unreachable: 'fail' });
    let server: CoapEndpoint | undefined;
    try {
      const signal = new AbortController().signal;
      const GET = { code: Code.GET, options: client.options };
      const failed = await Promise.all([client.request(GET, { signal }).catch((e: unknown) => e), client.request(GET).catch((e: unknown) => e)]);
      expect(failed).toMatchObject([{ code: 'UNREACHABLE' }, { code: 'UNREACHABLE' }]);
      server = new CoapEndpoint(await UdpTransport.bind({ host: '127.0.0.1', port }), { runtime: systemRuntime });
      server.handle(() => ({ code: Code.CONTENT, payload: new TextEncoder().encode('back') }));
      // The same caller signal as before, and none: neither is still tied to the old error.
      expect(await client.request(GET, { signal })).toMatchObject({ code: Code.CONTENT });
      expect(await client.request(GET)).toMatchObject({ code: Code.CONTENT });
    } finally {
      await client.close();
      await server?.close();
    }
  });
});
