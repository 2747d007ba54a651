/**
 * `coapfw`: a thin shell over the library. Each sub-command lives in its own
 * module and is loaded on demand, so `coapfw keygen` does not load the DTLS stack.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { didYouMean } from '../suggest.js';
import { EXIT, runCommand, type CliCommand, type CliIo } from './common.js';

const COMMANDS: Record<string, { summary: string; load: () => Promise<CliCommand> }> = {
  serve: { summary: 'serve a directory over CoAP block-wise (the TFTP replacement)', load: async () => (await import('./serve.js')).serveCommand },
  get: { summary: 'fetch a file over CoAP block-wise, with resume', load: async () => (await import('./get.js')).getCommand },
  keygen: { summary: 'make an Ed25519 key pair for signing SUIT manifests', load: async () => (await import('./keygen.js')).keygenCommand },
  manifest: { summary: 'create, sign, inspect and verify SUIT manifests', load: async () => (await import('./manifest.js')).manifestCommand },
  publish: { summary: 'sign a release and publish it to an update server, a database or a directory', load: async () => (await import('./publish.js')).publishCommand },
  trust: { summary: 'trust sets, rotations, revocation lists and owner transfers for devices', load: async () => (await import('./trust.js')).trustCommand },
  device: { summary: 'a simulated device on a flash file: update over CoAP, boot, confirm', load: async () => (await import('./device.js')).deviceCommand },
  gateway: { summary: 'a caching gateway for the devices of a site, in front of an update server', load: async () => (await import('./gateway.js')).gatewayCommand },
  discover: { summary: 'find firmware servers and gateways on the local link (multicast)', load: async () => (await import('./discover.js')).discoverCommand },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `usage: coapfw <command> [options]
       coapfw help <command>     a command's options (or: coapfw <command> --help)
       coapfw -V, --version

commands:
${lines.join('\n')}

Exit codes: 0 success, 1 failure, 2 usage error, 130 interrupted (Ctrl-C).
Most commands take -v/-vv (more detail on stderr) and --json (one JSON line per
result or event on stdout). NODE_DEBUG=coapfw adds stack traces to errors.
`;
}

/** The version in our package.json, found from this module (src/cli or dist/src/cli). */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++, dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'coapfw' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // Not here (or not readable): look one directory up.
    }
  }
  return 'unknown';
}

/** Run the CLI with the given arguments (without `node` and the script). */
export async function main(argv: string[], io: CliIo = process): Promise<number> {
  let [name, ...rest] = argv;
  if (name === 'help' && rest.length > 0) [name, rest] = [rest[0]!, [...rest.slice(1), '--help']];
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? io.stderr : io.stdout).write(usage());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === '--version' || name === '-V') {
    io.stdout.write(`coapfw ${packageVersion()}\n`);
    return EXIT.ok;
  }
  const cmd = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!cmd) {
    const near = didYouMean(name, Object.keys(COMMANDS));
    io.stderr.write(`coapfw: unknown command '${name}'${near ? ` (did you mean '${near}'?)` : ''}; run 'coapfw --help' for the list\n`);
    return EXIT.usage;
  }
  return runCommand(name, cmd.load, rest, io);
}
