/** README's table of error codes names every code of CoapfwErrorCode, and no code that does not exist. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');

describe('README error table', () => {
  it('lists exactly the codes of src/errors.ts', () => {
    const union = readFileSync(join(ROOT, 'src/errors.ts'), 'utf8');
    const body = union.slice(union.indexOf('export type CoapfwErrorCode'), union.indexOf(';', union.indexOf('export type CoapfwErrorCode')));
    const codes = [...body.matchAll(/\|\s*'([A-Z0-9_]+)'/g)].map((m) => m[1]!).sort();
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Errors'), readme.indexOf('\n## ', readme.indexOf('## Errors') + 1));
    const listed = section
      .split('\n')
      .filter((l) => l.startsWith('| `'))
      .flatMap((l) => [...l.split('|')[1]!.matchAll(/`([A-Z0-9_]+)`/g)].map((m) => m[1]!))
      .sort();
    expect(codes.length).toBeGreaterThan(40);
    expect(listed).toEqual(codes);
  });
});
