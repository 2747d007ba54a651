import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { encodeMessage } from '../../src/codec/message.js';
import { Code, MessageType } from '../../src/codec/numbers.js';
import { CoapEndpoint } from '../../src/messaging/endpoint.js';
import { systemRuntime } from '../../src/transport/runtime.js';
import { UdpTransport } from '../../src/transport/udp.js';

describe('UDP transport', () => {
  it('survives a send to an impossible port and keeps serving', async () => {
    const t = await UdpTransport.bind({ host: '127.0.0.1' });
    const ep = new CoapEndpoint(t, { runtime: systemRuntime });
    ep.handle(() => ({ code: Code.CONTENT }));
    try {
      // What a datagram from port 0 would make the endpoint do: answer to port 0.
      t.post(new Uint8Array([0x40, 0, 0, 1]), { address: '127.0.0.1', port: 0 });
      await expect(t.send(new Uint8Array([0x40, 0, 0, 1]), { address: '127.0.0.1', port: 0 })).rejects.toMatchObject({ code: 'IO_ERROR' });
      const client = new CoapEndpoint(await UdpTransport.bind({ host: '127.0.0.1' }), { runtime: systemRuntime });
      expect((await client.request(t.address(), { code: Code.GET })).code).toBe(Code.CONTENT);
      await client.close();
    } finally {
      await ep.close();
    }
  });

  it('serves IPv4 clients on a dual-stack socket', async () => {
    let t: UdpTransport;
    try {
      t = await UdpTransport.bind({ host: '::' });
    } catch {
      return expect.fail('no IPv6 on this machine');
    }
    const ep = new CoapEndpoint(t, { runtime: systemRuntime });
    ep.handle(() => ({ code: Code.CONTENT }));
    const sock = createSocket('udp4');
    try {
      const reply = await new Promise<Buffer>((resolve) => {
        sock.once('message', resolve);
        sock.send(encodeMessage({ type: MessageType.CON, code: Code.GET, messageId: 5, token: new Uint8Array([1]), options: [], payload: new Uint8Array() }), t.address().port, '127.0.0.1');
      });
      expect(reply[1]).toBe(Code.CONTENT);
    } finally {
      sock.close();
      await ep.close();
    }
  });
});
