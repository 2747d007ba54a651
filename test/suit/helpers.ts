import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, dirname } from 'node:path';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'suit');

export function fixture(rel: string): Uint8Array {
  return new Uint8Array(readFileSync(join(FIXTURES, rel)));
}
export function fixtureText(rel: string): string {
  return readFileSync(join(FIXTURES, rel), 'utf8');
}
export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}
export function unhex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'hex'));
}
export const WG_VENDOR = unhex('fa6b4a53d5ad5fdfbe9de663e4d41ffe');
export const WG_CLASS = unhex('1492af1425695e48bf429b2d51f2ab45');
