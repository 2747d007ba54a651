/**
 * `coapfw discover`: who serves firmware on this link? One multicast
 * `GET /.well-known/core?rt=firmware` (RFC 7252 §8, RFC 6690 §4), the answers
 * printed one server per line (`--json`: one JSON line each), for a
 * `coapfw get` or a device to use.
 */
import { discover } from '../client/discover.js';
import { formatLinks } from '../codec/link-format.js';
import { COMMON_OPTIONS, intOption, parse, str, strings } from './args.js';
import { jsonLine, UsageError, type CliCommand } from './common.js';

const HELP = `usage: coapfw discover [--query rt=firmware] [--timeout S] [--group ADDR]...
                       [--interface NAME]... [--port P] [--json]

Ask the All-CoAP-Nodes groups (224.0.1.187 and ff02::fd on every interface)
which servers list links matching the query in /.well-known/core, and print
each server that answers within the timeout: its base URI, then its links.
A coapfw gateway answers with its update service (/m, /fw/sha256, /d):
  coapfw discover                 coap://192.0.2.7 </m>;rt="firmware coapfw.gateway";...
  coapfw get "$(coapfw discover --first)/fw/sha256/<hex>" -o fw.bin
Exit code 1 when nobody answered.

options:
  --query Q          the RFC 6690 filter, one name=value (default rt=firmware)
  --timeout S        seconds to collect answers (default 2; a gateway waits up to 1)
  --group ADDR       a group to ask (repeat; default 224.0.1.187 and ff02::fd)
  --interface NAME   ask on this interface only (repeat; default all but loopback)
  --port P           the servers' port (default 5683)
  --first            print only the base URI of the first server that answered
  --json             one JSON line per server
  -h, --help         this text
`;

const OPTIONS = {
  ...COMMON_OPTIONS,
  query: { type: 'string' },
  timeout: { type: 'string' },
  group: { type: 'string', multiple: true },
  interface: { type: 'string', multiple: true },
  port: { type: 'string' },
  first: { type: 'boolean' },
} as const;

/** `coapfw discover`. */
export const discoverCommand: CliCommand = async (args, io) => {
  const { values, positionals } = parse(args, OPTIONS, false);
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const timeout = str(values, 'timeout');
  if (timeout !== undefined && !(/^\d+(\.\d+)?$/.test(timeout) && Number(timeout) > 0 && Number(timeout) <= 600)) throw new UsageError(`--timeout: expected seconds 0..600, got '${timeout}'`);
  const query = str(values, 'query') ?? 'rt=firmware';
  if (!query.includes('=')) throw new UsageError(`--query: expected name=value, got '${query}'`);
  const groups = strings(values, 'group');
  const interfaces = strings(values, 'interface');
  const found = await discover({
    query,
    timeoutMs: timeout === undefined ? undefined : Number(timeout) * 1000,
    groups: groups.length > 0 ? groups : undefined,
    interfaces: interfaces.length > 0 ? interfaces : undefined,
    port: intOption('port', values.port, 1, 65535),
  });
  if (found.length === 0) {
    io.stderr.write(`coapfw discover: no server answered ${query} within ${timeout ?? 2} s\n`);
    return 1;
  }
  for (const d of values.first === true ? found.slice(0, 1) : found) {
    if (values.json === true) jsonLine(io, { uri: d.uri, address: d.address, port: d.port, links: d.links });
    else if (values.first === true) io.stdout.write(`${d.uri}\n`);
    else io.stdout.write(`${d.uri} ${formatLinks(d.links)}\n`);
  }
  return 0;
};
