/**
 * `coapfw gateway --upstream URI --cache DIR`: the caching gateway between
 * devices and an update server, a thin shell over `startGateway`.
 */
import { mkdir } from 'node:fs/promises';
import { CoapfwError, isCoapfwError } from '../errors.js';
import { parseCoapUri } from '../codec/uri.js';
import { startGateway, type Gateway } from '../gateway/gateway.js';
import type { GatewayOptions } from '../gateway/options.js';
import { PskStore } from '../transport/dtls/psk-store.js';
import { ipv6Available } from '../transport/udp.js';
import { COMMON_OPTIONS, intOption, optionValue, parse, str, strings, verbosity, type Values } from './args.js';
import { UsageError, type CliCommand } from './common.js';
import { gatewayLog, type GatewayLog } from './gateway-log.js';
import { pskCredentials } from './credentials.js';
import { blockSizeOption, uuidOption } from './inputs.js';
import { readAnchors } from './manifest-read.js';
import { url } from './serve-log.js';
import { reloadPsk } from './serve.js';
import { untilInterrupted } from './signals.js';

const HELP = `usage: coapfw gateway --upstream coap[s]://HOST[:PORT] --cache DIR [options]

A caching CoAP gateway for the devices of a site: they reach the update server
through it (RFC 7252 §5.7 forward proxy with Proxy-Uri, or the gateway's own
paths, a mirror of the upstream's), and it
  - fetches each image (/fw/sha256/<hex>) upstream once, keeps it on disk and
    serves it block by block while it still arrives (a block not there yet is
    5.03 with Max-Age); an image whose bytes do not hash to its address is
    never served; manifests (/m/<class>) and files are revalidated by ETag;
  - with --trust, verifies SUIT envelopes for the devices (signature, class,
    vendor, no rollback below what it relayed) and refuses those that fail;
  - keeps registrations and reports (/d/<id>, /d/<id>/r) on disk while the
    uplink is down and forwards them in order, each exactly once;
  - answers multicast discovery (224.0.1.187, ff02::fd, ff05::fd) with
    GET /.well-known/core?rt=firmware (devices: coapfw discover).
Runs until SIGINT or SIGTERM.

options:
  --upstream URI                the update server, coap:// or coaps://
  --upstream-psk-identity ID    the gateway's own PSK identity for a coaps:// upstream
  --upstream-psk-key KEY        its key: 0x<hex> or hex:<hex>, else text (visible in ps)
  --upstream-credentials FILE   identity and key from FILE ("identity key" lines, mode 0600)
  --cache DIR                   images, report queue and state (created if missing)
  --cache-size N                bytes of images kept, K/M/G suffixes (default 1G)
  --listen HOST:PORT            plain CoAP for devices (default [::]:5683)
  --psk-file FILE               also coaps for devices, with their PSKs ("identity hexkey"
                                lines; re-read on change and on SIGHUP)
  --dtls-listen HOST:PORT       coaps for devices (default the --listen host, port 5684)
  --no-coap                     coaps only for devices (needs --psk-file)
  --open-registration           accept /d/<id> over plain CoAP although --psk-file is given
  -t, --trust PUBFILE           verify envelopes with this key (repeat for several)
  --vendor-id UUID              relay only envelopes for this vendor (repeat)
  --class-id UUID               relay only envelopes for this class (repeat)
  --relay-unverified            count and log envelopes that fail, but relay them
  --hold-until-verified         serve no block of an image before all of it verified
  --proxy-allow URI             an origin the forward proxy may reach besides the
                                upstream (repeat); '*': any (an open proxy)
  --no-mirror                   serve only /fw, /m and /d under the gateway's paths
  --no-discovery                do not join the All-CoAP-Nodes groups
  --leisure MS                  longest random delay of a discovery answer (default 1000)
  --queue-max N                 reports kept while the uplink is down (default 10000)
  --queue-bytes N               their bytes, K/M/G suffixes (default 8M)
  --max-block-size N            largest block served to devices (default 1024)
  --json                        events as JSON lines on stdout
  -v, --verbose                 fills, forwards, discovery; -vv: every event
  -h, --help                    this text
`;

const OPTIONS = {
  ...COMMON_OPTIONS,
  upstream: { type: 'string' },
  'upstream-psk-identity': { type: 'string' },
  'upstream-psk-key': { type: 'string' },
  'upstream-credentials': { type: 'string' },
  cache: { type: 'string' },
  'cache-size': { type: 'string' },
  listen: { type: 'string' },
  'psk-file': { type: 'string' },
  'dtls-listen': { type: 'string' },
  'no-coap': { type: 'boolean' },
  'open-registration': { type: 'boolean' },
  trust: { type: 'string', short: 't', multiple: true },
  'vendor-id': { type: 'string', multiple: true },
  'class-id': { type: 'string', multiple: true },
  'relay-unverified': { type: 'boolean' },
  'hold-until-verified': { type: 'boolean' },
  'proxy-allow': { type: 'string', multiple: true },
  'no-mirror': { type: 'boolean' },
  'no-discovery': { type: 'boolean' },
  leisure: { type: 'string' },
  'queue-max': { type: 'string' },
  'queue-bytes': { type: 'string' },
  'max-block-size': { type: 'string' },
} as const;

/** `512K`, `64M`, `1G` or plain bytes, binary multiples. */
export function sizeOption(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const m = /^(\d+)([KMG])?i?B?$/i.exec(raw.trim());
  if (m === null) throw new UsageError(`--${name}: expected bytes with an optional K, M or G, got '${raw}'`);
  const n = Number(m[1]) * (m[2] === undefined ? 1 : 1024 ** ('KMG'.indexOf(m[2].toUpperCase()) + 1));
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--${name}: must be at least 1 byte, got '${raw}'`);
  return n;
}

/** `HOST:PORT`, `[V6]:PORT`, `:PORT` or a bare host (the default port). */
export function listenOption(name: string, raw: string | undefined, defaultPort: number): { host: string | undefined; port: number } | undefined {
  if (raw === undefined) return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*))(?::(\d+))?$/.exec(raw);
  if (m === null) throw new UsageError(`--${name}: expected HOST:PORT (IPv6 in brackets), got '${raw}'`);
  const host = m[1] ?? (m[2] === '' ? undefined : m[2]);
  return { host, port: intOption(name, m[3], 0, 65535) ?? defaultPort };
}

async function gatewayOptions(values: Values, log: GatewayLog): Promise<{ options: GatewayOptions; psk: PskStore | undefined }> {
  const upstream = str(values, 'upstream');
  const cacheDir = str(values, 'cache');
  if (upstream === undefined) throw new UsageError('--upstream URI is required');
  if (cacheDir === undefined) throw new UsageError('--cache DIR is required');
  const parsed = optionValue(() => parseCoapUri(upstream));
  const upstreamPsk = await pskCredentials(parsed.scheme, values, 'upstream-');
  const pskFile = str(values, 'psk-file');
  const noCoap = values['no-coap'] === true;
  if (pskFile === undefined && (noCoap || values['dtls-listen'] !== undefined)) throw new UsageError(`${noCoap ? '--no-coap' : '--dtls-listen'} needs --psk-file`);
  const listen = listenOption('listen', str(values, 'listen'), 5683);
  const host = listen?.host ?? ((await ipv6Available()) ? '::' : '0.0.0.0');
  const dtls = listenOption('dtls-listen', str(values, 'dtls-listen'), 5684) ?? { host, port: 5684 };
  const psk = pskFile === undefined ? undefined : await PskStore.fromFile(pskFile);
  if (psk?.size === 0) log.warn(`${pskFile} has no identities; every coaps handshake will fail until it does`);
  const trust = strings(values, 'trust');
  const vendorIds = strings(values, 'vendor-id').map((v) => uuidOption('vendor-id', v)!);
  const classIds = strings(values, 'class-id').map((v) => uuidOption('class-id', v)!);
  if (trust.length === 0 && (vendorIds.length > 0 || classIds.length > 0 || values['relay-unverified'] === true)) throw new UsageError('--vendor-id, --class-id and --relay-unverified need --trust');
  const allow = strings(values, 'proxy-allow');
  if (allow.length > 1 && allow.includes('*')) throw new UsageError("--proxy-allow '*' allows every origin: give it alone");
  for (const a of allow) if (a !== '*') optionValue(() => parseCoapUri(a));
  const maxSzx = blockSizeOption(values['max-block-size'], 'max-block-size');
  await mkdir(cacheDir, { recursive: true });
  return {
    psk,
    options: {
      upstream,
      upstreamPsk,
      cacheDir,
      cacheBytes: sizeOption('cache-size', str(values, 'cache-size')),
      serveWhileFilling: values['hold-until-verified'] !== true,
      verify: trust.length === 0 ? undefined : { trust: { anchors: await readAnchors(trust) }, vendorIds, classIds, refuse: values['relay-unverified'] !== true },
      queue: { maxItems: intOption('queue-max', values['queue-max'], 1, 10_000_000), maxBytes: sizeOption('queue-bytes', str(values, 'queue-bytes')) },
      openRegistration: psk === undefined || values['open-registration'] === true,
      mirror: values['no-mirror'] !== true,
      proxyOrigins: allow.includes('*') ? '*' : allow,
      discovery: noCoap || values['no-discovery'] === true ? false : { leisureMs: intOption('leisure', values.leisure, 0, 60_000) },
      host,
      port: listen?.port ?? 5683,
      coap: !noCoap,
      maxBlockSize: maxSzx === undefined ? undefined : 16 << maxSzx,
      ...(psk ? { secure: { psk, host: dtls.host ?? host, port: dtls.port } } : {}),
      onEvent: (e) => log.event(e),
    },
  };
}

/** `coapfw gateway`. Runs until SIGINT/SIGTERM. */
export const gatewayCommand: CliCommand = async (args, io) => {
  const { values, positionals } = parse(args, OPTIONS, false);
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const log = gatewayLog(io, { json: values.json === true, verbose: verbosity(values) });
  const { options, psk } = await gatewayOptions(values, log);
  let gw: Gateway;
  try {
    gw = await startGateway(options);
  } catch (e) {
    if (isCoapfwError(e, 'ADDRESS_IN_USE')) throw new CoapfwError('ADDRESS_IN_USE', `${e.message.replace(/^udp: /, '')}: another server is running there; choose another with --listen or --dtls-listen`, { cause: e });
    throw e;
  }
  const stopReload = psk ? reloadPsk(psk, log) : () => {};
  const urls = [...(options.coap === false ? [] : [url('coap', gw.address())]), ...(gw.dtls ? [url('coaps', gw.dtls.address())] : [])];
  const s = gw.stats();
  log.listening(gw.upstream, urls, { images: s.cache.objects, bytes: s.cache.bytes }, s.queue.pending, s.discovery.memberships);
  await untilInterrupted();
  stopReload();
  await gw.close();
  log.stopped();
  return 0;
};
