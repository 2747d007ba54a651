/**
 * CLI conventions every command shares: help per command (`coapfw help CMD`
 * and `CMD --help`), -V/--version from package.json, unknown options named
 * with a suggestion in one line, negative numbers as option values, exit
 * codes 0/1/2, one-line errors that name the file.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from '../../src/cli/args.js';
import { main } from '../../src/cli/main.js';
import { didYouMean } from '../../src/suggest.js';
import { captureIo } from '../helpers/cli-io.js';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const c = captureIo();
  const code = await main(argv, c.io);
  return { code, out: c.out(), err: c.err() };
}

const version = (JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }).version;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-conv-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('help and version', () => {
  it.each(['serve', 'get', 'keygen', 'manifest', 'device', 'gateway', 'discover'])('`coapfw help %s` prints the usage that `--help` prints', async (cmd) => {
    const viaHelp = await run('help', cmd);
    const viaFlag = await run(cmd, '--help');
    expect(viaHelp.code).toBe(0);
    expect(viaHelp.out).toMatch(new RegExp(`^usage: coapfw ${cmd} `));
    expect(viaHelp.out).toBe(viaFlag.out);
    expect(viaHelp.err).toBe('');
  });

  it('`coapfw help device update` and `help manifest verify` reach the sub-command help', async () => {
    expect((await run('help', 'device', 'update')).out).toMatch(/^usage: coapfw device update/);
    expect((await run('help', 'manifest', 'verify')).out).toMatch(/coapfw manifest verify ENV/);
  });

  it('-V and --version print the version of package.json', async () => {
    for (const flag of ['-V', '--version']) {
      const r = await run(flag);
      expect(r.code).toBe(0);
      expect(r.out).toBe(`coapfw ${version}\n`);
    }
  });

  it('no command is a usage error (exit 2) with the list on stderr; an unknown one gets a suggestion', async () => {
    const none = await run();
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/^usage: coapfw <command>/);
    const typo = await run('serv');
    expect(typo.code).toBe(2);
    expect(typo.err).toBe(`coapfw: unknown command 'serv' (did you mean 'serve'?); run 'coapfw --help' for the list\n`);
  });
});

describe('option parsing', () => {
  it('an unknown option is one line with the closest known one', async () => {
    const r = await run('get', 'coap://127.0.0.1/x', '--blocksize', '512');
    expect(r.code).toBe(2);
    expect(r.err).toBe(`coapfw get: unknown option '--blocksize' (did you mean --block-size?) (see 'coapfw get --help')\n`);
    const far = await run('serve', dir, '--frobnicate');
    expect(far.err).toBe(`coapfw serve: unknown option '--frobnicate' (see 'coapfw serve --help')\n`);
  });

  it('missing values, values for flags and stray arguments are named', () => {
    const opts = { output: { type: 'string', short: 'o' }, json: { type: 'boolean' } } as const;
    expect(() => parse(['-o'], opts)).toThrow(/^option --output needs a value$/);
    expect(() => parse(['--json=yes'], opts)).toThrow(/^option --json takes no value$/);
    expect(() => parse(['x'], opts, false)).toThrow(/^unexpected argument 'x'$/);
    expect(() => parse(['--output', '-x'], opts)).toThrow(/^option --output: a value starting with '-' must be written --output=VALUE$/);
  });

  it('a negative number is a value (then range-checked by the option)', async () => {
    const opts = { seq: { type: 'string' }, n: { type: 'string', short: 'n' }, flag: { type: 'boolean' } } as const;
    expect(parse(['--seq', '-1', '-n', '-20', '--flag', '--', '-5'], opts).values).toEqual({ seq: '-1', n: '-20', flag: true });
    expect(parse(['--seq', '-1', '--', '-5'], opts).positionals).toEqual(['-5']);
    const r = await run('manifest', 'verify', join(dir, 'x.suit'), '--trust', join(dir, 'k.pub'), '--installed-seq', '-1');
    expect(r.code).toBe(2);
    expect(r.err).toBe(`coapfw manifest: --installed-seq: expected 0..18446744073709551615 (a sequence number), got -1 (see 'coapfw manifest --help')\n`);
    const retries = await run('get', 'coap://127.0.0.1/x', '--retries', '-3');
    expect(retries.err).toMatch(/^coapfw get: --retries: expected 1\.\.100, got -3 /);
  });

  it('-v counts (-vv is 2)', () => {
    const opts = { verbose: { type: 'boolean', short: 'v', multiple: true } } as const;
    expect(parse(['-vv'], opts).values.verbose).toEqual([true, true]);
  });

  it('didYouMean finds near names only', () => {
    expect(didYouMean('blocksize', ['block-size', 'resume'])).toBe('block-size');
    expect(didYouMean('url', ['uri', 'install-id'])).toBe('uri');
    expect(didYouMean('zzzzzz', ['uri', 'install-id'])).toBeUndefined();
  });
});
