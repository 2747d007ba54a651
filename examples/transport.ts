/**
 * coapfw/transport: a CoAP endpoint on DTLS 1.2 with a pre-shared key
 * (coaps, RFC 7252 §9.1; RFC 7925 profile), both ends: our DTLS server on a
 * UDP socket, node-dtls-client on the other side, the message layer on each.
 */
import { Code, pathOptions } from 'coapfw/codec';
import { CoapEndpoint } from 'coapfw/messaging';
import { PskStore, ReconnectingDtlsClient, UdpTransport, createDtlsServer, systemRuntime } from 'coapfw/transport';

const identity = 'sensor-17';
const key = new TextEncoder().encode('a lab secret, 16+ bytes');
const dtls = await createDtlsServer({
  transport: await UdpTransport.bind({ host: '127.0.0.1', port: 0 }),
  psk: PskStore.fromEntries([[identity, key]]),
  onEvent: (e) => e.type === 'established' && console.log(`server: session with "${e.identity}" established`),
});
const server = new CoapEndpoint(dtls, { runtime: systemRuntime });
server.handle((req) => ({ code: Code.CONTENT, payload: new TextEncoder().encode(`hello ${req.peer.address}`) }));

const secure = await ReconnectingDtlsClient.connect({ host: '127.0.0.1', port: dtls.address().port, identity, key });
const client = new CoapEndpoint(secure, { runtime: systemRuntime });
try {
  const res = await client.request(secure.remote, { code: Code.GET, options: pathOptions('/hello') });
  console.log(`client: ${new TextDecoder().decode(res.payload)} (over coaps, ${res.payload.length} bytes)`);
  console.log(`server: ${dtls.stats.handshakesOk} handshake(s) completed`);
} finally {
  await client.close();
  await server.close();
}
