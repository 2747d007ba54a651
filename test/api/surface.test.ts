/**
 * The public surface: the root export is the error type and the version,
 * the version is package.json's, and every subpath in package.json's
 * "exports" resolves by the package's own name and exports something.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string; exports: Record<string, unknown> };

describe('public surface', () => {
  it('the root export is CoapfwError, isCoapfwError and VERSION, equal to package.json', async () => {
    const root = await import('coapfw');
    expect(Object.keys(root).sort()).toEqual(['CoapfwError', 'VERSION', 'isCoapfwError']);
    expect(root.VERSION).toBe(pkg.version);
  });

  it('every subpath resolves by name and names only functions, classes, objects and constants', async () => {
    for (const key of Object.keys(pkg.exports).filter((k) => k !== '.' && k !== './package.json')) {
      const mod = (await import(`coapfw/${key.slice(2)}`)) as Record<string, unknown>;
      expect(Object.keys(mod).length, key).toBeGreaterThan(0);
      expect(Object.keys(mod), key).not.toContain('default'); // named exports only
      for (const [name, value] of Object.entries(mod)) expect(value, `${key}: ${name}`).toBeDefined();
    }
  });

  it('the test doubles are in coapfw/testing and nowhere else', async () => {
    const testing = await import('coapfw/testing');
    expect(Object.keys(testing)).toEqual(expect.arrayContaining(['FakeRuntime', 'MemNetwork', 'ImpairedTransport', 'MemoryFlash', 'CrashingFlash', 'powerCutSweep']));
    for (const key of Object.keys(pkg.exports).filter((k) => k !== './testing' && k !== './package.json')) {
      const mod = (await import(key === '.' ? 'coapfw' : `coapfw/${key.slice(2)}`)) as Record<string, unknown>;
      for (const name of ['FakeRuntime', 'MemNetwork', 'ImpairedTransport', 'MemoryFlash', 'CrashingFlash']) expect(mod[name], `${key} exports ${name}`).toBeUndefined();
    }
  });
});
