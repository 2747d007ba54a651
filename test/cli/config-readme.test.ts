/**
 * The README's config file example names every option of `coapfw serve`
 * (a flag added without documenting its key fails here) and is itself a
 * valid config file.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { readConfig } from '../../src/cli/config.js';
import { SERVE_OPTIONS } from '../../src/cli/serve.js';

describe('README config file', () => {
  it('lists every serve option and parses as a config file', async () => {
    const readme = await readFile(join(import.meta.dirname, '../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### The config file'));
    const toml = /```toml\n([\s\S]*?)```/.exec(section)![1]!;
    const keys = Object.keys(parseToml(toml));
    const expected = ['dir', ...Object.keys(SERVE_OPTIONS).filter((k) => k !== 'help' && k !== 'config')];
    expect(keys.sort()).toEqual(expected.sort());
    const dir = await mkdtemp(join(tmpdir(), 'coapfw-readme-'));
    try {
      await writeFile(join(dir, 'coapfw.toml'), toml);
      const c = await readConfig(join(dir, 'coapfw.toml'), SERVE_OPTIONS, 'dir');
      expect(c.positional).toBe(join(dir, 'images'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
