/**
 * Reference point for the benchmark, not a server to use: the least a Node
 * process can do to answer Block2 GETs for one file with `coap-packet` (no
 * validation, no dedup, no ETag, no retransmission, one file in memory).
 * Run as `node dist/bench/minimal-server.js FILE PORT`; prints `serving` once bound.
 */
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { generate, parse } from 'coap-packet';

const [file, portText] = process.argv.slice(2);
if (file === undefined || portText === undefined) {
  process.stderr.write('usage: minimal-server FILE PORT\n');
  process.exit(2);
}
const data = readFileSync(file);
const sock = createSocket('udp4');
sock.on('message', (msg, rinfo) => {
  let p;
  try {
    p = parse(msg);
  } catch {
    return;
  }
  const raw = p.options.find((o) => o.name === 'Block2')?.value;
  let num = 0;
  let szx = 6;
  if (raw !== undefined && raw.length > 0) {
    const v = raw.readUIntBE(0, raw.length);
    num = v >> 4;
    szx = v & 7;
  }
  const size = 16 << szx;
  const offset = num * size;
  const more = offset + size < data.length ? 1 : 0;
  const v = (num << 4) | (more << 3) | szx;
  const block = v < 0x100 ? Buffer.of(v) : v < 0x10000 ? Buffer.of(v >> 8, v & 0xff) : Buffer.of(v >> 16, (v >> 8) & 0xff, v & 0xff);
  const res = generate({
    messageId: p.messageId,
    token: p.token,
    code: '2.05',
    ack: p.confirmable,
    confirmable: false,
    options: [{ name: 'Block2', value: block }],
    payload: data.subarray(offset, offset + size),
  });
  sock.send(res, rinfo.port, rinfo.address);
});
sock.bind(Number(portText), '127.0.0.1', () => process.stdout.write('serving\n'));
process.on('SIGTERM', () => sock.close(() => process.exit(0)));
