/**
 * `coapfw serve DIR`: serve a directory over CoAP block-wise, and over coaps
 * (DTLS 1.2 PSK, RFC 7925) when given a PSK file.
 */
import { stat } from 'node:fs/promises';
import { fileError } from '../bounded-read.js';
import { CoapfwError, isCoapfwError } from '../errors.js';
import { startFileServer, type FileServer, type FileServerOptions } from '../server/serve.js';
import { startUpdateServer, type UpdateServer } from '../service/update-server.js';
import { PskStore } from '../transport/dtls/psk-store.js';
import { ipv6Available, nativeUdpAvailable } from '../transport/udp.js';
import { COMMON_OPTIONS, intOption, parse, str, verbosity } from './args.js';
import { UsageError, type CliCommand } from './common.js';
import { blockSizeOption } from './link-inputs.js';
import { serveLog, url, type ServeLog } from './serve-log.js';
import { ClassTargeting } from '../service/modes.js';
import { RolloutEngine } from '../service/rollout-engine.js';
import { rolloutTargeting } from '../service/rollout-targeting.js';
import { withConfig } from './config.js';
import { OPS_HELP, OPS_OPTIONS, serverLimits, startOps } from './serve-ops.js';
import { dbName, logServiceEvent, openServiceStore, SERVICE_HELP, SERVICE_OPTIONS, serviceSettings, trustOf } from './serve-service.js';
import { untilInterrupted } from './signals.js';

const HELP = `usage: coapfw serve DIR [--host H] [--port P] [--max-block-size N]
                    [--psk-file FILE [--dtls-port P] [--no-coap]] [--json] [-v]
                    [--db URL] [--trust KEY.pub ...] [--publisher ID ...]
                    [--open-registration | --no-open-registration]
                    [--http [HOST:]PORT] [--config FILE] [--log-json] [-vv]

Serve every regular file under DIR over CoAP (RFC 7252) with block-wise
transfer (RFC 7959), the way a TFTP server would, but resumable at any block:
  /files/<relative path>     each file by name
  /fw/sha256/<hex>           each file by content (immutable)
  /.well-known/core          the list of both (RFC 6690)
  /status[/<device>]         device update reports (POST JSON/CBOR, GET lists)
  /trust/chain               the trust updates and owner transfers in DIR/.trust/
  /trust/revocation          the newest revocation list in DIR/.trust/
  /trust/revocation-seq      its sequence number (coaps only)
Files are observable (RFC 7641): a GET with Observe 0 is notified on change.

The update service runs beside the files, on a database (--db; by default
SQLite in DIR/.coapfw/fleet.db, a hidden directory that is never served):
  /d, /d/<id>                devices register (POST CBOR/JSON)
  /d/<id>/r                  status reports
  /d/<id>/c                  the device's command (GET, Observe; POST answers)
  /m/<class>[/<seq>]         the newest (or a given) envelope of a class (Observe)
  /fw/sha256/<hex>           also every image and envelope of the database
  /pub/blob/<hex>, /pub/release   publishing (coaps, publisher identities only)
Several servers on one PostgreSQL database (--db postgres://...) serve one
fleet: a release or command through one notifies observers of every other.
With --echo, plain CoAP answers a large response to an address it has not yet
verified with 4.01 and an Echo value (RFC 9175 amplification protection): use
it on a server reachable from the Internet. libcoap's block-wise fetches and
coapfw clients repeat the request with the Echo value; node-coap does not.
Symlinks out of DIR and paths with '..' are refused. Changes in DIR are picked
up within two seconds, and logged ("serving N files (...)").

With --psk-file the same resources are also served over coaps: DTLS 1.2 with
pre-shared keys, cipher suite TLS_PSK_WITH_AES_128_CCM_8 (RFC 7925). The PSK
file has one "identity hexkey" per line; blank lines and lines starting with
'#' are ignored; identities have no white space, keys are 1..64 bytes:
  # identity   key (hex)
  dev-0001     00112233445566778899aabbccddeeff
A third field 'publisher' lets an identity publish releases:
  ci-release   0f0e0d0c0b0a09080706050403020100   publisher
The file is re-read when it changes and on SIGHUP; if the new content is bad
the old table stays in use and the error is printed.

Without --host the server binds [::] (IPv6 and IPv4), or 0.0.0.0 on a host
without IPv6. A port already in use is an error, never a silent fallback.
Runs until SIGINT or SIGTERM.

options:
  --host H              bind address (default :: with IPv4 too, else 0.0.0.0)
  --port P              UDP port for coap:// (default 5683)
  --max-block-size N    16, 32, 64, 128, 256, 512 or 1024 (default 1024)
  --psk-file FILE       serve coaps:// with the PSKs in FILE
  --dtls-port P         UDP port for coaps:// (default 5684)
  --no-coap             serve coaps:// only (needs --psk-file)
  --echo                Echo amplification protection on plain CoAP
${SERVICE_HELP}  --json                the startup line and events as JSON lines on stdout
${OPS_HELP}  -h, --help            this text
`;

const OPTIONS = {
  ...COMMON_OPTIONS,
  host: { type: 'string' },
  port: { type: 'string' },
  'max-block-size': { type: 'string' },
  'psk-file': { type: 'string' },
  'dtls-port': { type: 'string' },
  'no-coap': { type: 'boolean' },
  echo: { type: 'boolean' },
  ...SERVICE_OPTIONS,
  ...OPS_OPTIONS,
} as const;

/** DIR must be a directory before anything binds: a clear message, and what to do. */
async function checkDir(dir: string): Promise<void> {
  const st = await stat(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') throw new CoapfwError('IO_ERROR', `${dir}: no such directory (create it first: mkdir -p ${dir})`, { path: dir });
    throw fileError(e, dir);
  });
  if (!st.isDirectory()) throw new CoapfwError('IO_ERROR', `${dir}: not a directory`, { path: dir });
}

/** A port clash named as such, with the option that moves it. */
function bindError(e: unknown, secure: { port: number } | undefined): unknown {
  if (!isCoapfwError(e, 'ADDRESS_IN_USE')) return e;
  const flag = secure && e.message.includes(`port ${secure.port} `) ? '--dtls-port' : '--port';
  return new CoapfwError('ADDRESS_IN_USE', `${e.message.replace(/^udp: /, '')}: another server is running there; choose another with ${flag}`, { cause: e });
}

/** `coapfw serve`. Runs until SIGINT/SIGTERM. */
export const serveCommand: CliCommand = async (args, io) => {
  const { values, positionals } = await withConfig(parse(args, OPTIONS), OPTIONS, 'dir');
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('expected exactly one directory');
  const maxSzx = blockSizeOption(values['max-block-size'], 'max-block-size');
  const pskFile = str(values, 'psk-file');
  const noCoap = values['no-coap'] === true;
  if (pskFile === undefined && (noCoap || values['dtls-port'] !== undefined)) {
    throw new UsageError(`${noCoap ? '--no-coap' : '--dtls-port'} needs --psk-file`);
  }
  if (noCoap && values.port !== undefined) throw new UsageError('--port is the plain CoAP port: it makes no sense with --no-coap');
  const port = intOption('port', values.port, 0, 65535) ?? 5683;
  const dtlsPort = intOption('dtls-port', values['dtls-port'], 0, 65535) ?? 5684;
  const dir = positionals[0]!;
  await checkDir(dir);
  const log = serveLog(io, { json: values.json === true || values['log-json'] === true, verbose: verbosity(values) });
  // Only a host without IPv6 falls back to IPv4; a port in use is reported as such.
  const host = str(values, 'host') ?? ((await ipv6Available()) ? '::' : '0.0.0.0');
  const psk = pskFile === undefined ? undefined : await PskStore.fromFile(pskFile);
  if (psk?.size === 0) log.warn(`${pskFile} has no identities; every coaps handshake will fail until it does`);
  const limits = serverLimits(values);
  const service = serviceSettings(values, dir);
  const trust = await trustOf(service.trust);
  const store = await openServiceStore(service, log);
  const verbose = verbosity(values);
  // Rollouts in waves behind the service's targeting seam (rollout-targeting.ts).
  const engine = store === undefined ? undefined : new RolloutEngine({ store, onError: (e) => log.error(e) });
  let server: FileServer;
  try {
    const files: FileServerOptions = {
      dir,
      host,
      port,
      maxBlockSize: maxSzx === undefined ? undefined : 16 << maxSzx,
      coap: !noCoap,
      echo: values.echo === true,
      // A file that cannot be read is skipped and said once per occurrence, never fatal.
      onError: (e: unknown) => log.error(e),
      status: { onReport: (s) => log.report(s) },
      ...(limits.observe ? { observe: limits.observe } : {}),
      ...(limits.endpoint ? { endpoint: limits.endpoint } : {}),
      ...(psk ? { secure: { psk, host, port: dtlsPort, onEvent: (e) => log.dtls(e), ...limits.dtls } } : {}),
    };
    server = store === undefined ? await startFileServer(files) : await startUpdateServer({
      ...files,
      store,
      ...(trust ? { releaseTrust: trust } : {}),
      publishers: service.publishers,
      ...(service.openRegistration === undefined ? {} : { openRegistration: service.openRegistration }),
      ...(service.pollS === undefined ? {} : { pollS: service.pollS }),
      ...(service.normalWindowS === undefined ? {} : { modes: { normalWindowS: service.normalWindowS } }),
      onEvent: (e) => logServiceEvent(log, verbose, e),
      ...(engine === undefined ? {} : { targeting: (s) => rolloutTargeting(s, engine, new ClassTargeting(s, Date.now, Math.random, service.normalWindowS === undefined ? {} : { normalWindowS: service.normalWindowS })) }),
    });
  } catch (e) {
    await store?.close();
    throw bindError(e, psk && dtlsPort !== port ? { port: dtlsPort } : undefined);
  }
  const stopReload = psk ? reloadPsk(psk, log) : () => {};
  engine?.start();
  const ops = await startOps({
    values,
    log,
    verbose,
    stateDir: service.stateDir,
    ...(store === undefined || engine === undefined ? {} : { store, engine }),
    metrics: {
      // The coaps endpoint, when there is one, is the last (startFileServer's order).
      endpoints: () => server.endpoints.map((endpoint, i, all) => ({ transport: server.dtls !== undefined && i === all.length - 1 ? 'coaps' : 'coap', endpoint })),
      dtls: () => server.dtls,
      observe: () => server.observe,
      blocksServed: () => server.files.blocks + ((server as Partial<UpdateServer>).blobs?.blocks ?? 0),
    },
  }).catch(async (e: unknown) => {
    stopReload();
    await engine?.stop();
    await server.close();
    await store?.close();
    throw e;
  });
  const urls = [...(noCoap ? [] : [url('coap', server.address())]), ...(server.dtls ? [url('coaps', server.dtls.address())] : [])];
  const summary = store === undefined ? undefined : { db: dbName(service.db!), backend: store.backend, publishKeys: trust?.anchors.length ?? 0, openRegistration: (server as UpdateServer).openRegistration };
  // serve binds every socket with UdpTransport's default: the native socket where it is built and allowed.
  log.listening(server.repo.list().length, server.repo.root, urls, summary, nativeUdpAvailable() ? 'native' : 'dgram');
  server.repo.onChange((changed) => log.files(server.repo.list().length, changed));
  await untilInterrupted();
  stopReload();
  await ops.close();
  await engine?.stop();
  await server.close();
  await store?.close();
  log.stopped();
  return 0;
};

/** Re-read the PSK file when it changes (polled) and on SIGHUP; a bad file keeps the old table. Returns stop. */
export function reloadPsk(psk: PskStore, log: Pick<ServeLog, 'warn' | 'info'>): () => void {
  const report = (e: unknown): void => log.warn(`PSK file not reloaded, old keys stay in use: ${(e as Error).message}`);
  const unwatch = psk.watch(2000, report);
  const onHup = (): void => {
    psk.reload().then(() => log.info(`reloaded ${psk.size} PSK identities from ${psk.path}`), report);
  };
  process.on('SIGHUP', onHup);
  return () => {
    unwatch();
    process.off('SIGHUP', onHup);
  };
}

/** serve's options: also the keys of its config file (README, 'The config file'). */
export { OPTIONS as SERVE_OPTIONS };
