/** `npm start` runs dist/examples/demo.js (built by `npm test`): it must finish by itself and succeed. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const DEMO = join(import.meta.dirname, '../../dist/examples/demo.js');

describe('npm start demo', () => {
  it('loses power mid-download, resumes, installs, boots in test mode and confirms; exit code 0', { timeout: 60_000 }, () => {
    expect(existsSync(DEMO), 'run `npm run build` first (npm test does)').toBe(true);
    const r = spawnSync(process.execPath, [DEMO], { encoding: 'utf8', timeout: 50_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\*\*\* power cut after \d+ blocks \*\*\*/);
    const resumed = /journal: resuming at block (\d+)/.exec(r.stdout);
    expect(Number(resumed?.[1])).toBeGreaterThan(0);
    expect(r.stdout).toMatch(/in mode test \(installed\); self-test passed, confirmed; installed sequence 1/);
    expect(r.stdout).toMatch(/in mode confirmed; installed sequence 1/);
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(/^OK: resumed \d+ blocks/);
  });
});
