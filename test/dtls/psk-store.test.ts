import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isCoapfwError } from '../../src/errors.js';
import { PskStore, parsePskKey } from '../../src/transport/dtls/psk-store.js';

const hex = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : Buffer.from(b).toString('hex'));

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return isCoapfwError(e) ? `${e.code}: ${e.message}` : `other: ${String(e)}`;
  }
  return 'no error';
}

describe('PskStore', () => {
  it('parses identity/hex lines, skipping comments and blank lines', () => {
    const s = PskStore.parse('# devices\n\ndev-1 00112233445566778899aabbccddeeff\r\n  dev-2\tABCD  \n');
    expect(s.size).toBe(2);
    expect(hex(s.lookup('dev-1'))).toBe('00112233445566778899aabbccddeeff');
    expect(hex(s.lookup('dev-2'))).toBe('abcd');
    expect(s.lookup('dev-3')).toBeUndefined();
  });

  it('rejects bad lines with the line number', () => {
    expect(code(() => PskStore.parse('a 0011\nb xyz\n', 'psk.txt'))).toBe('INVALID_ARGUMENT: psk.txt:2: key must be 1..64 bytes of hex');
    expect(code(() => PskStore.parse('a 001\n'))).toMatch(/^INVALID_ARGUMENT: psk:1: key/);
    expect(code(() => PskStore.parse('a\n'))).toMatch(/^INVALID_ARGUMENT: psk:1: expected "identity hexkey \[roles\]"/);
    expect(code(() => PskStore.parse('a 00 publisher x\n'))).toMatch(/got 4 fields/);
    expect(code(() => PskStore.parse('a 00 11\n'))).toMatch(/psk:1: unknown role "11" \(known: publisher, gateway\)/);
    expect(code(() => PskStore.parse('a 00 publisher,admin\n'))).toMatch(/unknown role "admin"/);
    expect(code(() => PskStore.parse('a 00\na 11\n'))).toMatch(/psk:2: duplicate identity "a"/);
    expect(code(() => PskStore.fromEntries([['', new Uint8Array(16)]]))).toMatch(/^INVALID_ARGUMENT: psk: identity/);
    expect(code(() => PskStore.fromEntries([['x', new Uint8Array(0)]]))).toMatch(/1\.\.64 bytes/);
  });

  it('reads roles: a third field names them (comma-separated); a line without one is a device', () => {
    const s = PskStore.parse('dev-1 0011\nci 0022 publisher\n');
    expect(s.hasRole('ci', 'publisher')).toBe(true);
    expect(s.hasRole('dev-1', 'publisher')).toBe(false);
    expect(s.hasRole('nobody', 'publisher')).toBe(false);
    expect(hex(s.lookup('ci'))).toBe('0022');
    const e = PskStore.fromEntries([['p', new Uint8Array(4), ['publisher']], ['d', new Uint8Array(4)]]);
    expect([e.hasRole('p', 'publisher'), e.hasRole('d', 'publisher')]).toEqual([true, false]);
  });

  it('reads a file and reloads it without restart, keeping the old table on a bad file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'coapfw-psk-'));
    const path = join(dir, 'psk.txt');
    writeFileSync(path, 'dev-1 0102\n');
    const s = await PskStore.fromFile(path);
    expect(hex(s.lookup('dev-1'))).toBe('0102');
    writeFileSync(path, 'dev-1 0a0b\ndev-2 0c\n');
    await s.reload();
    expect(hex(s.lookup('dev-1'))).toBe('0a0b');
    expect(hex(s.lookup('dev-2'))).toBe('0c');
    writeFileSync(path, 'dev-1 zz\n');
    await expect(s.reload()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(hex(s.lookup('dev-1'))).toBe('0a0b');
    await expect(PskStore.fromFile(join(dir, 'missing.txt'))).rejects.toMatchObject({ code: 'IO_ERROR' });
    await expect(PskStore.parse('a 00').reload()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('watch() picks up a changed file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'coapfw-psk-'));
    const path = join(dir, 'psk.txt');
    writeFileSync(path, 'dev-1 01\n');
    const s = await PskStore.fromFile(path);
    const stop = s.watch(20);
    try {
      await new Promise((r) => setTimeout(r, 50));
      writeFileSync(path, 'dev-1 01\ndev-9 99\n');
      for (let i = 0; i < 100 && s.lookup('dev-9') === undefined; i++) await new Promise((r) => setTimeout(r, 20));
      expect(hex(s.lookup('dev-9'))).toBe('99');
    } finally {
      stop();
    }
  });
});

describe('parsePskKey', () => {
  it('reads 0x/hex: as hex and anything else as UTF-8 text', () => {
    expect(hex(parsePskKey('0x00FF10'))).toBe('00ff10');
    expect(hex(parsePskKey('hex:abcd'))).toBe('abcd');
    expect(Buffer.from(parsePskKey('secretPSK')).toString()).toBe('secretPSK');
    expect(code(() => parsePskKey('0x123'))).toBe('INVALID_ARGUMENT: psk key: expected an even number of hex digits');
    expect(code(() => parsePskKey('', '--psk-key'))).toBe('INVALID_ARGUMENT: --psk-key: must be a non-empty string');
    expect(code(() => parsePskKey('x'.repeat(65)))).toMatch(/at most 64 bytes/);
  });
});
