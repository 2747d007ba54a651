/**
 * The layering the README's layout table claims, checked on the import
 * statements of src/: each folder imports only the layers it sits on, and
 * the pure layers import no Node I/O module.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '../../src');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? files(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : []));
}

/** Every module a file imports or re-exports: src folders as 'codec', 'core' ..., packages by name. */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/gm)) {
    const spec = m[1] ?? m[2] ?? m[3]!;
    if (!spec.startsWith('.')) out.push(spec);
    else {
      const target = relative(SRC, join(file, '..', spec));
      out.push(target.includes('/') ? target.split('/')[0]! : target.replace(/\.js$/, ''));
    }
  }
  return out;
}

const layer = (file: string): string => relative(SRC, file).split('/')[0]!.replace(/\.ts$/, '');
const all = files(SRC);

/** Single-file helpers every layer may use: the error type, the version, "did you mean" suggestions, the diagnostics channels. */
const BASE = ['errors', 'version', 'suggest', 'diagnostics'];
/** What each folder may import from src/ besides BASE (itself always). `bounded-read` reads files: not for pure layers. */
const ALLOWED: Record<string, readonly string[]> = {
  errors: [],
  diagnostics: [],
  version: [],
  suggest: [],
  'bounded-read': [],
  codec: [],
  core: ['codec'],
  suit: ['codec'],
  delta: ['suit'],
  messaging: ['codec', 'core'],
  transport: ['codec', 'core', 'bounded-read'],
  blockwise: ['codec', 'core', 'messaging'],
  client: ['codec', 'core', 'messaging', 'transport', 'blockwise', 'bounded-read'],
  flash: ['core', 'suit'],
  device: ['codec', 'core', 'suit', 'delta', 'messaging', 'blockwise', 'flash', 'bounded-read'],
  server: ['codec', 'core', 'suit', 'messaging', 'transport', 'blockwise', 'bounded-read'],
  service: ['codec', 'core', 'suit', 'messaging', 'transport', 'blockwise', 'server', 'bounded-read'],
  http: ['service'],
  gateway: ['codec', 'core', 'suit', 'messaging', 'transport', 'blockwise', 'client', 'server', 'flash', 'bounded-read'],
};
const PURE = ['codec', 'core', 'suit', 'delta', 'messaging', 'blockwise'];

describe('layers', () => {
  for (const [folder, allowed] of Object.entries(ALLOWED)) {
    it(`${folder}/ imports only ${[...BASE, ...allowed].join(', ')}`, () => {
      const mine = all.filter((f) => layer(f) === folder);
      expect(mine.length).toBeGreaterThan(0);
      for (const f of mine) {
        const local = imports(f).filter((s) => !s.includes(':') && !s.startsWith('@') && /^[a-z-]+$/.test(s) && all.some((g) => layer(g) === s));
        const stray = local.filter((s) => s !== folder && !BASE.includes(s) && !allowed.includes(s));
        expect(stray, relative(SRC, f)).toEqual([]);
      }
    });
  }

  it('messaging/ and transport/ do not import each other', () => {
    for (const f of all.filter((g) => layer(g) === 'messaging')) expect(imports(f), relative(SRC, f)).not.toContain('transport');
    for (const f of all.filter((g) => layer(g) === 'transport')) expect(imports(f), relative(SRC, f)).not.toContain('messaging');
  });

  it('the pure layers import no Node I/O module (no sockets, files, processes or timers)', () => {
    const io = /^node:(dgram|fs|fs\/promises|net|dns|dns\/promises|child_process|timers|timers\/promises|http|https|http2|tls|worker_threads|os)$/;
    for (const f of all.filter((g) => PURE.includes(layer(g)))) {
      expect(imports(f).filter((s) => io.test(s)), relative(SRC, f)).toEqual([]);
    }
  });

  it('codec/message.ts re-exports no option helpers', () => {
    expect(readFileSync(join(SRC, 'codec/message.ts'), 'utf8')).not.toMatch(/from '\.\/options\.js'/);
  });

  it('defines the empty byte array once', () => {
    const defs = all.filter((f) => /const EMPTY\b[^=]*= new Uint8Array\(0\)/.test(readFileSync(f, 'utf8')));
    expect(defs.map((f) => relative(SRC, f))).toEqual(['codec/bytes.ts']);
  });
});
