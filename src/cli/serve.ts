/**
 * `coapfw serve DIR`: serve a directory over CoAP block-wise, and over coaps
 * (DTLS 1.2 PSK, RFC 7925) when given a PSK file.
 */
import { startFileServer } from '../server/serve.js';
import { PskStore } from '../transport/dtls/psk-store.js';
import type { DtlsServerEvent } from '../transport/dtls/server.js';
import type { Peer } from '../transport/types.js';
import { intOption, parse, type CliCommand, type CliIo } from './common.js';
import { UsageError } from './common.js';

const HELP = `usage: coapfw serve DIR [--host H] [--port P] [--max-block-size N]
                    [--psk-file FILE [--dtls-port P] [--no-coap]]

Serve every regular file under DIR over CoAP (RFC 7252) with block-wise
transfer (RFC 7959), the way a TFTP server would, but resumable at any block:
  /files/<relative path>     each file by name
  /fw/sha256/<hex>           each file by content (immutable)
  /.well-known/core          the list of both (RFC 6690)
  /status[/<device>]         device update reports (POST JSON/CBOR, GET lists)
Files are observable (RFC 7641): a GET with Observe 0 is notified on change.
With --echo, plain CoAP answers a large response to an address it has not yet
verified with 4.01 and an Echo value (RFC 9175 amplification protection): use
it on a server reachable from the Internet. libcoap's block-wise fetches and
coapfw clients repeat the request with the Echo value; node-coap does not.
Symlinks out of DIR and paths with '..' are refused. Changes in DIR are picked
up within two seconds.

With --psk-file the same resources are also served over coaps: DTLS 1.2 with
pre-shared keys, cipher suite TLS_PSK_WITH_AES_128_CCM_8 (RFC 7925). The PSK
file has one "identity hexkey" per line; blank lines and lines starting with
'#' are ignored; identities have no white space, keys are 1..64 bytes:
  # identity   key (hex)
  dev-0001     00112233445566778899aabbccddeeff
The file is re-read when it changes and on SIGHUP; if the new content is bad
the old table stays in use and the error is printed.

options:
  --host H              bind address (default :: with IPv4 too, else 0.0.0.0)
  --port P              UDP port for coap:// (default 5683)
  --max-block-size N    16, 32, 64, 128, 256, 512 or 1024 (default 1024)
  --psk-file FILE       serve coaps:// with the PSKs in FILE
  --dtls-port P         UDP port for coaps:// (default 5684)
  --no-coap             serve coaps:// only (needs --psk-file)
  --echo                Echo amplification protection on plain CoAP
  -v, --verbose         log DTLS sessions (established, failed, closed) to stderr
  -h, --help            this text
`;

/** `coapfw serve`. Runs until SIGINT/SIGTERM. */
export const serveCommand: CliCommand = async (args, io) => {
  const { values, positionals } = parse(args, {
    host: { type: 'string' },
    port: { type: 'string' },
    'max-block-size': { type: 'string' },
    'psk-file': { type: 'string' },
    'dtls-port': { type: 'string' },
    'no-coap': { type: 'boolean' },
    echo: { type: 'boolean' },
    verbose: { type: 'boolean', short: 'v' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('expected exactly one directory');
  const maxBlockSize = intOption('max-block-size', values['max-block-size'], 16, 1024);
  if (maxBlockSize !== undefined && ![16, 32, 64, 128, 256, 512, 1024].includes(maxBlockSize)) {
    throw new UsageError(`--max-block-size: expected a power of two 16..1024, got ${maxBlockSize}`);
  }
  const pskFile = values['psk-file'] as string | undefined;
  const noCoap = values['no-coap'] === true;
  if (pskFile === undefined && (noCoap || values['dtls-port'] !== undefined)) {
    throw new UsageError(`${noCoap ? '--no-coap' : '--dtls-port'} needs --psk-file`);
  }
  if (noCoap && values.port !== undefined) throw new UsageError('--port is the plain CoAP port: it makes no sense with --no-coap');
  const host = values.host as string | undefined;
  const psk = pskFile === undefined ? undefined : await PskStore.fromFile(pskFile);
  if (psk?.size === 0) io.stderr.write(`coapfw serve: warning: ${pskFile} has no identities; every coaps handshake will fail until it does\n`);
  const server = await startFileServer({
    dir: positionals[0]!,
    host,
    port: intOption('port', values.port, 0, 65535) ?? 5683,
    maxBlockSize,
    coap: !noCoap,
    echo: values.echo === true,
    // A file that cannot be read is skipped and said once per occurrence, never fatal.
    onError: (e: unknown) => void io.stderr.write(`coapfw serve: ${(e as Error).message ?? String(e)}\n`),
    ...(psk ? { secure: { psk, host, port: intOption('dtls-port', values['dtls-port'], 0, 65535) ?? 5684, onEvent: values.verbose ? logEvent(io) : undefined } } : {}),
  });
  const stopReload = psk ? reloadPsk(psk, io) : () => {};
  const urls = [...(noCoap ? [] : [url('coap', server.address())]), ...(server.dtls ? [url('coaps', server.dtls.address())] : [])];
  io.stdout.write(`coapfw: serving ${server.repo.list().length} files from ${server.repo.root} on ${urls.join(' and ')}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  stopReload();
  await server.close();
  return 0;
};

function logEvent(io: CliIo): (e: DtlsServerEvent) => void {
  return (e) => {
    const who = url('coaps', e.peer);
    const what = e.type === 'established' ? `identity "${e.identity}"` : e.type === 'internal-error' ? String(e.error) : e.reason;
    io.stderr.write(`coapfw serve: dtls ${e.type} ${who}: ${what}\n`);
  };
}

function url(scheme: string, a: Peer): string {
  return `${scheme}://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`;
}

/** Re-read the PSK file when it changes (polled) and on SIGHUP; a bad file keeps the old table. */
function reloadPsk(psk: PskStore, io: CliIo): () => void {
  const report = (e: unknown): void => void io.stderr.write(`coapfw serve: PSK file not reloaded, old keys stay in use: ${(e as Error).message}\n`);
  const unwatch = psk.watch(2000, report);
  const onHup = (): void => {
    psk.reload().then(() => io.stderr.write(`coapfw serve: reloaded ${psk.size} PSK identities from ${psk.path}\n`), report);
  };
  process.on('SIGHUP', onHup);
  return () => {
    unwatch();
    process.off('SIGHUP', onHup);
  };
}
