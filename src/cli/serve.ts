/**
 * `coapfw serve DIR`: serve a directory over CoAP block-wise.
 */
import { startFileServer } from '../server/serve.js';
import { intOption, parse, type CliCommand } from './common.js';
import { UsageError } from './common.js';

const HELP = `usage: coapfw serve DIR [--host H] [--port P] [--max-block-size N]

Serve every regular file under DIR over CoAP (RFC 7252) with block-wise
transfer (RFC 7959), the way a TFTP server would, but resumable at any block:
  /files/<relative path>     each file by name
  /fw/sha256/<hex>           each file by content (immutable)
  /.well-known/core          the list of both (RFC 6690)
Symlinks out of DIR and paths with '..' are refused. Changes in DIR are picked
up within two seconds.

options:
  --host H              bind address (default :: with IPv4 too, else 0.0.0.0)
  --port P              UDP port (default 5683)
  --max-block-size N    16, 32, 64, 128, 256, 512 or 1024 (default 1024)
  -h, --help            this text
`;

/** `coapfw serve`. Runs until SIGINT/SIGTERM. */
export const serveCommand: CliCommand = async (args, io) => {
  const { values, positionals } = parse(args, {
    host: { type: 'string' },
    port: { type: 'string' },
    'max-block-size': { type: 'string' },
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
  const server = await startFileServer({
    dir: positionals[0]!,
    host: values.host as string | undefined,
    port: intOption('port', values.port, 0, 65535) ?? 5683,
    maxBlockSize,
  });
  const a = server.address();
  const host = a.address.includes(':') ? `[${a.address}]` : a.address;
  io.stdout.write(`coapfw: serving ${server.repo.list().length} files from ${server.repo.root} on coap://${host}:${a.port}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
  return 0;
};
