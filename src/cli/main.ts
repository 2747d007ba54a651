/**
 * `coapfw`: a thin shell over the library. Each sub-command lives in its own
 * module and is loaded on demand, so `coapfw keygen` does not load the DTLS stack.
 */
import { reportError, type CliCommand, type CliIo } from './common.js';

const COMMANDS: Record<string, { summary: string; load: () => Promise<CliCommand> }> = {
  serve: { summary: 'serve a directory over CoAP block-wise (the TFTP replacement)', load: async () => (await import('./serve.js')).serveCommand },
  get: { summary: 'fetch a file over CoAP block-wise, with resume', load: async () => (await import('./get.js')).getCommand },
  keygen: { summary: 'make an Ed25519 key pair for signing SUIT manifests', load: async () => (await import('./keygen.js')).keygenCommand },
  manifest: { summary: 'create, inspect and verify SUIT manifests', load: async () => (await import('./manifest.js')).manifestCommand },
  device: { summary: 'a simulated device on a flash file: update over CoAP, boot, confirm', load: async () => (await import('./device.js')).deviceCommand },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `usage: coapfw <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun 'coapfw <command> --help' for a command's options.\n`;
}

/** Run the CLI with the given arguments (without `node` and the script). */
export async function main(argv: string[], io: CliIo = process): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    io.stdout.write('coapfw 0.1.0\n');
    return 0;
  }
  const cmd = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!cmd) {
    io.stderr.write(`coapfw: unknown command '${name}'\n${usage()}`);
    return 2;
  }
  try {
    const run = await cmd.load();
    return await run(rest, io);
  } catch (e) {
    return reportError(e, name, io);
  }
}
