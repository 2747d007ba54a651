/** The operator token file: created once with mode 0600, reused, refused when others can read it. */
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadOrCreateToken } from '../../src/http/token.js';
import { expectCode } from '../service/fixtures.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-token-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('operator token file', () => {
  it('is created on first start (0600, in a 0700 directory) and read back after', async () => {
    const state = join(dir, 'state');
    const first = await loadOrCreateToken(state);
    expect(first.created).toBe(true);
    expect(first.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await stat(first.path)).mode & 0o777).toBe(0o600);
    expect((await stat(state)).mode & 0o777).toBe(0o700);
    expect((await readFile(first.path, 'utf8')).trim()).toBe(first.token);
    const again = await loadOrCreateToken(state);
    expect(again).toEqual({ token: first.token, path: first.path, created: false });
  });

  it('servers starting at once end with one token, none reading a half-written file', async () => {
    // Rounds of four at once, each in a fresh directory: the loser of the race must never see an empty file.
    for (let round = 0; round < 40; round++) {
      const d = join(dir, `round-${round}`);
      // Started a few event-loop turns apart, so that one reads while another is between create and write.
      const all = await Promise.all(
        [0, 1, 2, 3].map(async (i) => {
          for (let k = 0; k < i * round; k++) await new Promise((r) => setImmediate(r));
          return loadOrCreateToken(d);
        }),
      );
      expect(new Set(all.map((t) => t.token)).size, `round ${round}`).toBe(1);
      expect(all.filter((t) => t.created), `round ${round}`).toHaveLength(1);
      expect((await readdir(d)).sort(), 'no temporary file left').toEqual(['http-token']);
    }
  });

  it('refuses a token file others can read, or one that is not a token', async () => {
    const path = join(dir, 'http-token');
    await writeFile(path, 'abcdefghijklmnopqrstuvwxyz\n');
    await chmod(path, 0o644);
    await expectCode(loadOrCreateToken(dir), 'CONFIG_INVALID');
    await writeFile(path, 'short\n');
    await chmod(path, 0o600);
    await expectCode(loadOrCreateToken(dir), 'CONFIG_INVALID');
  });
});
