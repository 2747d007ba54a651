/**
 * Every example in examples/ runs as a user would run it (node on the built
 * file, importing coapfw by its package name) and prints what it promises.
 * The demo (`npm start`) has its own test in test/device/update-demo.test.ts.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const BUILT = join(ROOT, 'dist/examples');

/** What each example must print; a new example without an entry here fails the test. */
const EXPECTED: Record<string, RegExp[]> = {
  codec: [/^encoded 36 bytes: 4201/m, /Block2:3\/0\/1024/, /^rejected: MALFORMED_MESSAGE/m],
  suit: [/^verified: sequence 5, 1 trusted signature/m, /^image: digest and size match/m, /sequence 5: refused, ROLLBACK/, /one byte flipped: refused, DIGEST_MISMATCH/, /^image with one byte flipped: refused, DIGEST_MISMATCH/m],
  delta: [/^delta: \d+ bytes for a 207800-byte image/m, /identical to the new image: true/, /^another installed image: refused, DELTA_SOURCE_MISMATCH/m],
  server: [/^\/gateway\/health -> 2\.05 \{"ok":true/m, /lists the gateway resource: true, the file: true/, /^\/files\/nope -> 4\.04/m],
  client: [/^interrupted: ABORTED/m, /^resumed at byte [1-9]\d*, fetched \d+ more blocks, 204800 bytes in all/m, /^sha256 ok/m],
  'single-bank': [/^power cut after 25 blocks: boot recovery \(overwrite, journal at block 24\)/m, /^recovery loader: installed, 24 blocks resumed, 36 fetched/m, /^boot: run, the new image: true, installed sequence 2/m],
  device: [/^update: installed sequence 7 \(running 0 until the reboot\), 64 blocks fetched/m, /^reboot: mode test, confirmed, installed sequence 7/m, /running the new image: true/],
  flash: [/^layout: primary @0/m, /slot sha256 matches: true/, /programmed bytes: FLASH_NOT_ERASED/],
  testing: [/^answer "pong" after 3 transmissions of the request \(2 lost\)/m, /^power cuts: (\d+) flash operations, \1 runs with a cut, \1 cuts hit, every run counted to 40/m],
  messaging: [/^\/quick: 2\.05 "quick", piggybacked on the ACK/m, /^\/slow: 2\.05 "worth the wait", separate CON after an empty ACK/m, /^server sent 3 datagrams/m],
  transport: [/session with "sensor-17" established/, /^client: hello 127\.0\.0\.1 \(over coaps/m],
  http: [/^rollout 1: wave 1 running, 2 devices told, 18 waiting/m, /^pause without the token: 401/m, /^pause with the token: paused \(paused by operator\)/m, /^coapfw_rollouts\{state="paused"\} 1$/m],
  gateway: [/^device 3: 49152 bytes, sha256 ok/m, /^upstream sent 49152 bytes for 3 devices: the image once/m, /^uplink down: report answered 2\.04, 1 kept on disk/m, /^uplink back: 1 report forwarded, 0 waiting/m],
  'node-coap': [/^firmware through node-coap: 20000 bytes, ETag [0-9a-f]{16}, intact: true/m, /own route still answers: 21\.5/],
};

function run(file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const sources = readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3));

describe('examples', () => {
  it('has an expectation for every example, and every example imports coapfw by its package name only', () => {
    expect(sources.filter((s) => s !== 'demo').sort()).toEqual(Object.keys(EXPECTED).sort());
    for (const s of sources) {
      const text = readFileSync(join(ROOT, 'examples', `${s}.ts`), 'utf8');
      expect(text, `${s}.ts reaches into the source tree`).not.toMatch(/from '\.\.?\//);
      expect(text, `${s}.ts`).toMatch(/from 'coapfw(\/[a-z-]+)?'/);
    }
  });

  for (const [name, patterns] of Object.entries(EXPECTED)) {
    it(`${name}.ts runs and prints what it shows`, { timeout: 45_000 }, async () => {
      const file = join(BUILT, `${name}.js`);
      expect(existsSync(file), 'run `npm run build` first (npm test does)').toBe(true);
      const r = await run(file);
      expect(r.code, r.stderr).toBe(0);
      for (const p of patterns) expect(r.stdout).toMatch(p);
    });
  }
});
