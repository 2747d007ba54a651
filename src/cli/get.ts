/**
 * `coapfw get URI`: fetch a file block-wise, with a progress bar and resume,
 * the way tftp's `get` and libcoap's `coap-client -m get` are used.
 */
import { basename } from 'node:path';
import { type DownloadResult } from '../blockwise/download.js';
import type { FetchProgress } from '../blockwise/fetch.js';
import { downloadToFile } from '../client/file-sink.js';
import { blockSize } from '../codec/block.js';
import { parseCoapUri, type CoapUri } from '../codec/uri.js';
import { CoapfwError, isCoapfwError } from '../errors.js';
import { openClient, type CoapClient } from '../client/open.js';
import { peerKey } from '../core/transport.js';
import { COMMON_OPTIONS, intOption, optionValue, parse, str, verbosity, type Values } from './args.js';
import { errorJson, jsonLine, UsageError, type CliCommand, type CliIo } from './common.js';
import { fetchToStream, partSzx, resolveOutput, tidyPart, type GetOutput } from './get-output.js';
import { pskCredentials } from './credentials.js';
import { blockSizeOption } from './link-inputs.js';
import { formatBytes, progressBar, type Progress } from './progress.js';
import { stopOnSignals } from './signals.js';
import { watchRequests } from './waiting.js';

const HELP = `usage: coapfw get URI [-o FILE|DIR|-] [--block-size N] [--resume] [--timeout S]
                  [--no-qblock2] [--nstart N] [--credentials FILE | --psk-identity ID --psk-key KEY] [--json] [-v]

Fetch URI (coap://host[:port]/path, or coaps://host[:port]/path over DTLS 1.2
with a pre-shared key) into FILE (default: the last path segment, in the
current directory). By default with Q-Block2 (RFC 9177: the blocks come as a
paced stream of NON responses, lost ones asked for again within a round trip)
when the server does it, which a first Confirmable request tells; else with
block-wise transfer (RFC 7959), one block request at a time unless --nstart
allows more. Each request is retried with back-off; the transfer as a whole
has no deadline unless --timeout gives one.
On a terminal a progress bar shows, and while the server does not answer, what
the transfer is waiting for. An ICMP "port unreachable" (nothing listens at
that address) fails at once, as with libcoap's coap-client.

Ctrl-C stops the transfer (exit 130) and keeps FILE.part: run the same command
with --resume to continue. A failed transfer that got no data leaves no file.

options:
  -o, --output FILE     where to write; a partial download goes to FILE.part.
                        An existing directory: DIR/<last path segment>.
                        '-': standard output (messages stay on stderr).
  --block-size N        block size to ask for: 16..1024, a power of two (default 1024)
  --resume              continue FILE.part from the last block it has if the
                        server's ETag still matches; start over if it changed.
                        The part keeps the block size it was started with (a
                        different --block-size is noted and applies to new downloads)
  --timeout S           give up when the whole transfer takes longer than S seconds
  --retries N           attempts per block (default 8)
  --qblock2             use Q-Block2 when the server does it (the default)
  --no-qblock2          block-wise transfer (RFC 7959) only
  --nstart N            block-wise requests in flight at once, 1..16 (default 1,
                        RFC 7252 §4.7); more only for a server known to take them
  --psk-identity ID     PSK identity for coaps://
  --psk-key KEY         PSK for coaps://: 0x<hex> or hex:<hex> for binary keys,
                        anything else is used as text (like libcoap's -k);
                        visible to other users in ps: prefer --credentials
  --credentials FILE    coaps identity and key from FILE ("identity key" lines,
                        the key as for --psk-key; the file must be mode 0600)
  --dtls-retries N      extra DTLS handshake attempts, 2 s each (default 8)
  --json                one JSON line with the result on stdout
  -v, --verbose         say what happens (retries, resume) on stderr; -vv: every block
  -h, --help            this text
`;

const OPTIONS = {
  ...COMMON_OPTIONS,
  output: { type: 'string', short: 'o' },
  'block-size': { type: 'string' },
  resume: { type: 'boolean' },
  timeout: { type: 'string' },
  retries: { type: 'string' },
  'psk-identity': { type: 'string' },
  'psk-key': { type: 'string' },
  credentials: { type: 'string' },
  'dtls-retries': { type: 'string' },
  qblock2: { type: 'boolean' },
  'no-qblock2': { type: 'boolean' },
  nstart: { type: 'string' },
} as const;

interface GetArgs {
  readonly uri: string;
  readonly parsed: CoapUri;
  readonly output: GetOutput;
  readonly szx: number | undefined;
  readonly resume: boolean;
  readonly timeoutMs: number | undefined;
  readonly attempts: number;
  readonly qblock2: boolean;
  readonly nstart: number;
  readonly dtlsRetries: number | undefined;
  readonly psk: Awaited<ReturnType<typeof pskCredentials>>;
  readonly json: boolean;
  readonly verbose: number;
}

async function getArgs(values: Values, positionals: string[]): Promise<GetArgs> {
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'expected a URI' : `expected one URI, got ${positionals.length} arguments`);
  const uri = positionals[0]!;
  const parsed = optionValue(() => parseCoapUri(uri));
  if (values.qblock2 === true && values['no-qblock2'] === true) throw new UsageError('--qblock2 and --no-qblock2 contradict each other');
  const timeout = str(values, 'timeout');
  if (timeout !== undefined && !(/^\d+(\.\d+)?$/.test(timeout) && Number(timeout) > 0)) throw new UsageError(`--timeout: expected seconds > 0, got '${timeout}'`);
  const a = {
    uri,
    parsed,
    szx: blockSizeOption(values['block-size']),
    resume: values.resume === true,
    timeoutMs: timeout === undefined ? undefined : Number(timeout) * 1000,
    attempts: intOption('retries', values.retries, 1, 100) ?? 8,
    qblock2: values['no-qblock2'] !== true,
    nstart: intOption('nstart', values.nstart, 1, 16) ?? 1,
    dtlsRetries: intOption('dtls-retries', values['dtls-retries'], 0, 100),
    psk: await pskCredentials(parsed.scheme, values),
    json: values.json === true,
    verbose: verbosity(values),
  };
  const output = await resolveOutput(str(values, 'output'), parsed.path);
  if (output.kind === 'stream' && output.stdout && a.json) throw new UsageError('--json and -o - both want standard output');
  if (output.kind === 'stream' && a.resume) throw new UsageError(`--resume needs a file to resume (${output.stdout ? 'standard output' : output.path} is a stream)`);
  return { ...a, output };
}

/** `coapfw get`. */
export const getCommand: CliCommand = async (args, io) => {
  const { values, positionals } = parse(args, OPTIONS);
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  const a = await getArgs(values, positionals);
  const name = a.output.kind === 'file' ? a.output.path : a.output.stdout ? 'stdout' : a.output.path;
  const bar = progressBar(io, basename(name));
  const stop = stopOnSignals(() => bar.done());
  const deadline = a.timeoutMs === undefined ? undefined : AbortSignal.timeout(a.timeoutMs);
  const signal = deadline ? AbortSignal.any([stop.signal, deadline]) : stop.signal;
  const started = performance.now();
  let client: CoapClient | undefined;
  try {
    client = await openClient(a.uri, { psk: a.psk, dtls: { retries: a.dtlsRetries, signal }, unreachable: 'fail', params: { nstart: a.nstart } });
    const note = (text: string, retry: boolean): void => {
      bar.note(text);
      if (retry && a.verbose > 0 && !io.stderr.isTTY) io.stderr.write(`coapfw get: ${text}\n`);
    };
    const watched = { ...client, request: watchRequests(client.request, peerKey(client.peer), note) };
    if (a.verbose > 0) io.stderr.write(`coapfw get: ${a.uri} from ${peerKey(client.peer)}\n`);
    const r = await transfer(watched, a, { io, bar, signal });
    bar.done();
    const seconds = (performance.now() - started) / 1000;
    if (a.verbose > 0) io.stderr.write(`coapfw get: done in ${seconds.toFixed(2)} s${r.etag ? `, ETag ${r.etag}` : ', no ETag'}\n`);
    if (a.json) jsonLine(io, { result: 'ok', uri: a.uri, file: a.output.path, ...r, seconds: Number(seconds.toFixed(3)) });
    else {
      const notes = [r.mode === 'qblock2' ? 'Q-Block2' : '', r.restarted ? 'resource changed: started over' : r.resumedFrom > 0 ? `resumed with ${r.resumedFrom} bytes held` : ''].filter((x) => x !== '');
      io.stderr.write(`${name}: ${r.bytes} bytes in ${r.blocks} blocks${notes.length > 0 ? ` (${notes.join('; ')})` : ''}\n`);
    }
    return 0;
  } catch (e) {
    bar.done();
    const kept = await keptText(a);
    if (stop.caught()) {
      io.stderr.write(`coapfw get: interrupted by ${stop.caught()}${kept === undefined ? '' : `: ${kept}`}\n`);
      if (a.json) jsonLine(io, { result: 'interrupted', uri: a.uri, signal: stop.caught() });
      stop.throwIfCaught();
    }
    const err = failure(e, a, kept, deadline);
    if (a.json) jsonLine(io, { result: 'failed', uri: a.uri, error: errorJson(err) });
    throw err;
  } finally {
    stop.dispose();
    await client?.close();
  }
};

interface TransferContext {
  readonly io: CliIo;
  readonly bar: Progress;
  readonly signal: AbortSignal;
}

type TransferResult = Pick<DownloadResult, 'bytes' | 'blocks' | 'resumedFrom' | 'restarted' | 'mode'> & { etag?: string };

async function transfer(client: CoapClient, a: GetArgs, { io, bar, signal }: TransferContext): Promise<TransferResult> {
  const retry = { attempts: a.attempts, baseMs: 1000, maxMs: 30_000 };
  const perBlock = a.verbose > 1 ? (p: { block: number; offset: number }): void => void io.stderr.write(`coapfw get: block ${p.block}, ${p.offset} bytes so far\n`) : undefined;
  const onMode = (mode: 'qblock2' | 'block2'): void => {
    if (a.verbose > 0) io.stderr.write(`coapfw get: ${mode === 'qblock2' ? 'the server does Q-Block2 (RFC 9177)' : `block-wise transfer (RFC 7959), ${a.nstart} request${a.nstart > 1 ? 's' : ''} in flight`}\n`);
  };
  const how = { qblock2: a.qblock2, window: a.nstart, onMode };
  // Per-block progress only for someone to see it: a bar on a terminal, or -vv.
  const shown = bar.active || perBlock !== undefined;
  if (a.output.kind === 'stream') {
    const onProgress = shown ? (p: FetchProgress): void => (bar.update(p.received, p.total), perBlock?.({ block: p.block, offset: p.received })) : undefined;
    const r = await fetchToStream(client, a.output, io.stdout, { ...how, szx: a.szx, retry, signal, onProgress });
    return { ...r, resumedFrom: 0, restarted: false };
  }
  const file = a.output.path;
  let szx = a.szx;
  if (a.resume) {
    const kept = await partSzx(file, a.uri);
    if (kept !== undefined && szx !== undefined && kept !== szx) {
      io.stderr.write(`coapfw get: ${file}.part was started with ${blockSize(kept)}-byte blocks: continuing with those (--block-size ${blockSize(szx)} applies to a new download)\n`);
    }
    szx = kept ?? szx;
  }
  return downloadToFile(client, a.uri, file, {
    ...how,
    resume: a.resume,
    szx,
    retry,
    signal,
    onProgress: shown ? (p) => (bar.update(p.offset, p.total), perBlock?.(p)) : undefined,
  });
}

/**
 * What is left after a failed transfer: an empty part file (nothing arrived:
 * no server, a 4.04) is removed; a part holding data is kept for --resume.
 */
async function keptText(a: GetArgs): Promise<string | undefined> {
  if (a.output.kind !== 'file') return undefined; // a stream keeps what it was given
  const kept = await tidyPart(a.output.path);
  return kept > 0 ? `${formatBytes(kept)} kept in ${a.output.path}.part; run the same command with --resume to continue` : 'nothing was written';
}

/** The error to report for a failed transfer, naming the URI and what was kept. */
function failure(e: unknown, a: GetArgs, kept: string | undefined, deadline: AbortSignal | undefined): unknown {
  if (deadline?.aborted && isCoapfwError(e, 'ABORTED')) {
    return new CoapfwError('TIMEOUT', `${a.uri}: not complete within --timeout ${a.timeoutMs! / 1000} s${kept === undefined ? '' : `; ${kept}`}`, { cause: e });
  }
  if (e instanceof CoapfwError && e.path === undefined) {
    const hint = kept === undefined || kept.startsWith('nothing') ? '' : `; ${kept}`;
    return new CoapfwError(e.code, `${a.uri}: ${e.message}${hint}`, { cause: e, responseCode: e.responseCode, maxAge: e.maxAge, block: e.block, peer: e.peer });
  }
  return e;
}
