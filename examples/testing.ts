/**
 * coapfw/testing: the doubles our own tests use, for code built on coapfw.
 * 1. A request over an in-memory network that drops the first two
 *    datagrams: the fake clock drives RFC 7252 §4.2 retransmission, no waiting.
 * 2. A power cut at every flash operation of a small power-safe counter, and
 *    a check after each run that no count was lost.
 */
import { Code, pathOptions } from 'coapfw/codec';
import { RecordLog } from 'coapfw/flash';
import { FakeRuntime, MemNetwork, MemoryFlash, flush, mulberry32, powerCutSweep } from 'coapfw/testing';
import { CoapEndpoint } from 'coapfw/messaging';

const rt = new FakeRuntime();
const net = new MemNetwork();
let dropped = 0;
net.filter = () => dropped++ >= 2; // lose the first two datagrams
const server = new CoapEndpoint(net.endpoint('10.0.0.1', 5683), { runtime: rt });
server.handle(() => ({ code: Code.CONTENT, payload: new TextEncoder().encode('pong') }));
const client = new CoapEndpoint(net.endpoint('10.0.0.2', 40000), { runtime: rt });
const reply = client.request({ address: '10.0.0.1', port: 5683 }, { code: Code.GET, options: pathOptions('/ping') });
for (let t = 0; t < 20 && net.log.length < 4; t++) {
  rt.advance(1000); // 1 s of fake time per step
  await flush();
}
const res = await reply;
const sent = net.log.filter((d) => d.from.port === 40000).length;
console.log(`answer "${new TextDecoder().decode(res.payload)}" after ${sent} transmissions of the request (2 lost), ${rt.now()} ms of fake time`);
await client.close();
await server.close();

// A power-safe counter: each value is a 4-byte record in a RecordLog (CRC-protected snapshots).
const report = await powerCutSweep({
  setup: async (seed) => ({ flash: new MemoryFlash({ size: 4 * 256, eraseBlockSize: 256, writeAlignment: 8, random: mulberry32(seed) }) }),
  run: async ({ flash }) => {
    const log = await RecordLog.open(flash, { offset: 0, size: flash.size }, { kind: 7, payloadSize: 4 });
    const value = (): number => (log.latest() ? new DataView(log.latest()!.payload.buffer).getUint32(0) : 0);
    for (let n = value() + 1; n <= 40; n++) await log.append(Uint8Array.of(0, 0, 0, n));
    return value();
  },
  check: (count) => {
    if (count !== 40) throw new Error(`the counter survived as ${count}, not 40`);
  },
});
console.log(`power cuts: ${report.ops} flash operations, ${report.runs} runs with a cut, ${report.cutsHit} cuts hit, every run counted to 40`);
