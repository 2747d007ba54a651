/** Config files: TOML and JSON, flag types, paths relative to the file, flags over the file. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from '../../src/cli/args.js';
import { readConfig, withConfig } from '../../src/cli/config.js';
import { expectCode } from '../service/fixtures.js';

const OPTIONS = {
  config: { type: 'string' },
  port: { type: 'string' },
  'psk-file': { type: 'string' },
  trust: { type: 'string', multiple: true },
  echo: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v', multiple: true },
} as const;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-config-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function file(name: string, text: string): Promise<string> {
  await writeFile(join(dir, name), text);
  return join(dir, name);
}

describe('config file', () => {
  it('TOML and JSON give the same values; paths are relative to the file; verbose counts', async () => {
    const toml = await file('a.toml', 'dir = "images"\nport = 5683\npsk-file = "keys/psk.txt"\ntrust = ["oem.pub", "/etc/op.pub"]\necho = true\nverbose = 2\n');
    const json = await file('a.json', JSON.stringify({ dir: 'images', port: 5683, 'psk-file': 'keys/psk.txt', trust: ['oem.pub', '/etc/op.pub'], echo: true, verbose: 2 }));
    const expected = {
      values: { port: '5683', 'psk-file': join(dir, 'keys/psk.txt'), trust: [join(dir, 'oem.pub'), '/etc/op.pub'], echo: true, verbose: [true, true] },
      positional: join(dir, 'images'),
    };
    expect(await readConfig(toml, OPTIONS, 'dir')).toEqual(expected);
    expect(await readConfig(json, OPTIONS, 'dir')).toEqual(expected);
  });

  it('flags override the file; a repeatable flag replaces the list; a positional replaces dir', async () => {
    const path = await file('b.toml', 'dir = "images"\nport = 5683\ntrust = ["a.pub", "b.pub"]\n');
    const merged = await withConfig(parse(['--config', path, '--port', '6000', '--trust', 'c.pub', 'other'], OPTIONS), OPTIONS, 'dir');
    expect(merged.values).toMatchObject({ port: '6000', trust: ['c.pub'] });
    expect(merged.positionals).toEqual(['other']);
    const fromFile = await withConfig(parse(['--config', path], OPTIONS), OPTIONS, 'dir');
    expect(fromFile).toMatchObject({ values: { port: '5683', trust: [join(dir, 'a.pub'), join(dir, 'b.pub')] }, positionals: [join(dir, 'images')] });
  });

  it('refuses unknown keys, wrong types, keys only a command line may carry, and bad syntax', async () => {
    for (const text of ['prot = 5683\n', 'port = 1.5\n', 'echo = "yes"\n', 'port = [1, 2]\n', 'config = "x"\n', 'port = \n', 'verbose = 9\n']) {
      await expectCode(readConfig(await file('bad.toml', text), OPTIONS, 'dir'), 'CONFIG_INVALID');
    }
    await expectCode(readConfig(await file('bad.json', '[1]'), OPTIONS), 'CONFIG_INVALID');
    await expectCode(readConfig(join(dir, 'missing.toml'), OPTIONS), 'IO_ERROR');
  });
});
