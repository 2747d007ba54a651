/**
 * `coapfw get URI`: fetch a file block-wise, with a progress bar and resume.
 */
import { basename } from 'node:path';
import { szxForSize } from '../codec/block.js';
import { parseCoapUri } from '../codec/uri.js';
import { downloadToFile } from '../blockwise/download.js';
import { openClient } from '../transport/client.js';
import { parsePskKey } from '../transport/dtls/psk-store.js';
import type { PskCredentials } from '../transport/secure.js';
import { intOption, parse, UsageError, type CliCommand } from './common.js';
import { progressBar } from './progress.js';

const HELP = `usage: coapfw get URI [-o FILE] [--block-size N] [--resume]
                  [--psk-identity ID --psk-key KEY]

Fetch URI (coap://host[:port]/path, or coaps://host[:port]/path over DTLS 1.2
with a pre-shared key) with block-wise transfer (RFC 7959) into FILE (default:
the last path segment). Each block is retried with back-off; there is no
deadline for the whole transfer.

options:
  -o, --output FILE     where to write (a partial download goes to FILE.part)
  --block-size N        block size to ask for: 16..1024, a power of two (default 1024)
  --resume              continue FILE.part from its last block if the server's
                        ETag still matches; start over if it changed
  --retries N           attempts per block (default 8)
  --psk-identity ID     PSK identity for coaps://
  --psk-key KEY         PSK for coaps://: 0x<hex> or hex:<hex> for binary keys,
                        anything else is used as text (like libcoap's -k)
  --dtls-retries N      extra DTLS handshake attempts, 2 s each (default 8)
  -h, --help            this text
`;

/** `coapfw get`. */
export const getCommand: CliCommand = async (args, io) => {
  const { values, positionals } = parse(args, {
    output: { type: 'string', short: 'o' },
    'block-size': { type: 'string' },
    resume: { type: 'boolean' },
    retries: { type: 'string' },
    'psk-identity': { type: 'string' },
    'psk-key': { type: 'string' },
    'dtls-retries': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('expected exactly one URI');
  const uri = positionals[0]!;
  let parsed: ReturnType<typeof parseCoapUri>;
  try {
    parsed = parseCoapUri(uri);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  // The default name is the last path segment, reduced to a plain file name:
  // a percent-encoded "/" or ".." in the URI must not choose where we write.
  const last = parsed.path.at(-1);
  const output = (values.output as string | undefined) ?? (last === undefined ? undefined : basename(last.replaceAll('\\', '/')));
  if (output === undefined || output === '' || output === '.' || output === '..') throw new UsageError('the URI has no file name: give -o FILE');
  const blockSizeArg = intOption('block-size', values['block-size'], 16, 1024);
  let szx: number | undefined;
  try {
    szx = blockSizeArg === undefined ? undefined : szxForSize(blockSizeArg);
  } catch {
    throw new UsageError(`--block-size: expected a power of two 16..1024, got ${blockSizeArg}`);
  }
  const attempts = intOption('retries', values.retries, 1, 100) ?? 8;
  const psk = pskOptions(parsed.scheme, values['psk-identity'], values['psk-key']);
  const dtlsRetries = intOption('dtls-retries', values['dtls-retries'], 0, 100);
  const client = await openClient(uri, { psk, dtls: dtlsRetries === undefined ? undefined : { retries: dtlsRetries } });
  const bar = progressBar(io, basename(output));
  try {
    const r = await downloadToFile(client, uri, output, {
      resume: values.resume === true,
      szx,
      retry: { attempts, baseMs: 1000, maxMs: 30_000 },
      onProgress: (p) => bar.update(p.offset, p.total),
    });
    bar.done();
    const how = r.restarted ? ' (resource changed: started over)' : r.resumedFrom > 0 ? ` (resumed at byte ${r.resumedFrom})` : '';
    io.stderr.write(`${output}: ${r.bytes} bytes in ${r.blocks} blocks${how}\n`);
    return 0;
  } finally {
    bar.done();
    await client.close();
  }
};

/** PSK options: both required for coaps://, refused for coap:// (they would be silently unused). */
function pskOptions(scheme: string, identity: unknown, key: unknown): PskCredentials | undefined {
  if (scheme !== 'coaps') {
    if (identity !== undefined || key !== undefined) throw new UsageError('--psk-identity and --psk-key are for coaps:// URIs');
    return undefined;
  }
  if (typeof identity !== 'string' || identity === '' || typeof key !== 'string') {
    throw new UsageError('coaps:// needs --psk-identity ID and --psk-key KEY');
  }
  try {
    return { identity, key: parsePskKey(key, '--psk-key') };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}
