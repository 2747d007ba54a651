/**
 * `npm start` runs dist/examples/demo.js (built by `npm test`): it must finish by itself and succeed,
 * telling the whole story: a server on SQLite, a release published over coaps, devices in each mode
 * updating, one cut off mid-download that resumes, and the status table from the database.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const DEMO = join(import.meta.dirname, '../../dist/examples/demo.js');

describe('npm start demo', () => {
  it('publishes, updates a device of each mode, resumes the one that lost power, prints the table; exit code 0', { timeout: 90_000 }, () => {
    expect(existsSync(DEMO), 'run `npm run build` first (npm test does)').toBe(true);
    const r = spawnSync(process.execPath, [DEMO], { encoding: 'utf8', timeout: 80_000 });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(/database sqlite/);
    expect(out).toMatch(/published \(2\.01\)/);
    expect(out).toMatch(/air-handler +offer \d+: answers defer 2 s/);
    expect(out).toMatch(/door-lock +will be unavailable for about 10 s: told before it starts/);
    expect(out).toMatch(/camera +\*\*\* power cut after \d+ blocks \*\*\*/);
    const resumed = /camera +journal: resuming at block (\d+)/.exec(out);
    expect(Number(resumed?.[1])).toBeGreaterThan(0);
    expect(out).toMatch(/camera +reported downloading \([1-9]\d* of \d+ bytes\)/);
    // The table, from the database: every device confirmed on sequence 1.
    const table = out.slice(out.indexOf('5. status table'));
    for (const [name, mode] of [['sensor', 'client'], ['door-lock', 'server'], ['air-handler', 'negotiated'], ['camera', 'server']]) {
      expect(table).toMatch(new RegExp(`^ +${name} +${mode} +confirmed +1 `, 'm'));
    }
    for (const name of ['sensor', 'door-lock', 'air-handler', 'camera']) expect(out).toMatch(new RegExp(`${name} +reported confirmed`));
    // Every image came by Q-Block2 from the service, the camera's resumed one too.
    for (const name of ['sensor', 'door-lock', 'air-handler', 'camera']) expect(out).toMatch(new RegExp(`${name} +image fetched by Q-Block2`));
    expect(out).not.toMatch(/image fetched by Block2/);
    expect(out.trim().split('\n').at(-1)).toMatch(/^OK: every device runs release 1, confirmed; the camera resumed \d+ blocks/);
  });
});
