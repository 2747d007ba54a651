/**
 * coapfw/messaging: two CoAP endpoints on UDP loopback. A handler that takes
 * its time gets an empty ACK first and its answer later as a separate CON
 * response (RFC 7252 §5.2.2); the endpoint's counters show what went by.
 */
import { Code, MessageType, codeToString, pathOptions } from 'coapfw/codec';
import { CoapEndpoint } from 'coapfw/messaging';
import { UdpTransport, systemRuntime } from 'coapfw/transport';

const server = new CoapEndpoint(await UdpTransport.bind({ host: '127.0.0.1', port: 0 }), { runtime: systemRuntime, separateResponseAfterMs: 50 });
server.handle(async (req) => {
  const slow = req.message.options.some((o) => new TextDecoder().decode(o.value) === 'slow');
  if (slow) await new Promise((r) => setTimeout(r, 300)); // e.g. asking a database first
  return { code: Code.CONTENT, payload: new TextEncoder().encode(slow ? 'worth the wait' : 'quick') };
});
const client = new CoapEndpoint(await UdpTransport.bind({ host: '127.0.0.1', port: 0 }), { runtime: systemRuntime });
try {
  for (const path of ['/quick', '/slow']) {
    const res = await client.request(server.address(), { code: Code.GET, options: pathOptions(path) });
    const how = res.type === MessageType.ACK ? 'piggybacked on the ACK' : 'separate CON after an empty ACK';
    console.log(`${path}: ${codeToString(res.code)} "${new TextDecoder().decode(res.payload)}", ${how}`);
  }
  console.log(`server sent ${server.stats.sent} datagrams: the piggybacked answer, an empty ACK, the separate answer`);
} finally {
  await client.close();
  await server.close();
}
