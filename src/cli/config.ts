/**
 * `--config FILE`: a command's options from a TOML (`.toml`, parsed by
 * smol-toml) or JSON (`.json`) file, with the same names as the flags
 * (`port = 5683`, `psk-file = "psk.txt"`, `trust = ["oem.pub"]`). Flags
 * given on the command line override the file (a repeatable flag replaces
 * the file's list, it does not add to it). An unknown key, or a value of the
 * wrong type, is an error naming the key (and the closest known one). Paths
 * (`PATH_KEYS`) are taken relative to the file's directory, so a config
 * file and what it names can move together.
 */
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { readFileBounded } from '../bounded-read.js';
import { CoapfwError } from '../errors.js';
import { didYouMean } from '../suggest.js';
import type { OptionTable, Values } from './args.js';

/** Keys whose values are file or directory paths (resolved against the config file's directory). */
export const PATH_KEYS: ReadonlySet<string> = new Set(['dir', 'db', 'psk-file', 'trust', 'state-dir', 'credentials', 'flash', 'key', 'staging-dir']);
/** Keys that are never read from a file: they only make sense on a command line. */
const CLI_ONLY = new Set(['config', 'help']);
const MAX_BYTES = 1024 * 1024;

/** What a config file holds, as parsed flag values, and the positional argument it names (e.g. `dir`). */
export interface ConfigValues {
  readonly values: Values;
  readonly positional: string | undefined;
}

/**
 * Read `path` against a command's option table. `positionalKey` names the
 * key that stands for the command's positional argument (serve's `dir`).
 */
export async function readConfig(path: string, options: OptionTable, positionalKey?: string): Promise<ConfigValues> {
  const text = new TextDecoder().decode(await readFileBounded(path, MAX_BYTES, 'config file'));
  let doc: unknown;
  try {
    doc = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseToml(text);
  } catch (e) {
    throw new CoapfwError('CONFIG_INVALID', `${path}: ${(e as Error).message.split('\n')[0]}`, { cause: e, path });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new CoapfwError('CONFIG_INVALID', `${path}: expected a table of options`, { path });
  const base = dirname(resolve(path));
  const values: Values = {};
  let positional: string | undefined;
  for (const [key, raw] of Object.entries(doc)) {
    const bad = (why: string): CoapfwError => new CoapfwError('CONFIG_INVALID', `${path}: ${key}: ${why}`, { path });
    if (key === positionalKey) {
      if (typeof raw !== 'string' || raw === '') throw bad('expected a path');
      positional = resolvePath(base, raw);
      continue;
    }
    const spec = CLI_ONLY.has(key) ? undefined : options[key];
    if (spec === undefined) {
      const near = didYouMean(key, [...Object.keys(options).filter((k) => !CLI_ONLY.has(k)), ...(positionalKey ? [positionalKey] : [])]);
      throw bad(`unknown key${near ? ` (did you mean ${near}?)` : ''}`);
    }
    values[key] = convert(raw, spec, bad, PATH_KEYS.has(key) ? (p) => resolvePath(base, p) : (s) => s);
  }
  return { values, positional };
}

/** A TOML/JSON value as parseArgs would have given the flag. */
function convert(raw: unknown, spec: OptionTable[string], bad: (why: string) => CoapfwError, path: (s: string) => string): Values[string] {
  const one = (v: unknown): string | boolean => {
    if (spec.type === 'boolean') {
      if (typeof v !== 'boolean') throw bad(`expected true or false, got ${JSON.stringify(v)}`);
      return v;
    }
    if (typeof v === 'string') return path(v);
    if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
    throw bad(`expected a string${spec.type === 'string' ? ' or an integer' : ''}, got ${JSON.stringify(v)}`);
  };
  if (spec.multiple === true) {
    // -v is a repeatable boolean: `verbose = 2` is -vv.
    if (spec.type === 'boolean' && typeof raw === 'number') {
      if (!Number.isInteger(raw) || raw < 0 || raw > 3) throw bad(`expected 0..3, got ${raw}`);
      return Array.from({ length: raw }, () => true);
    }
    return (Array.isArray(raw) ? raw : [raw]).map(one);
  }
  if (Array.isArray(raw)) throw bad('expected one value, got a list');
  return one(raw);
}

function resolvePath(base: string, p: string): string {
  // A URL-like value (sqlite:..., postgres://...) or an absolute path stays as it is.
  return isAbsolute(p) || /^[a-z][a-z0-9+.-]+:/i.test(p) ? p : resolve(base, p);
}

/** The command line over the file: every flag given on the command line replaces the file's value. */
export function mergeConfig(file: ConfigValues, cli: { values: Values; positionals: string[] }): { values: Values; positionals: string[] } {
  const values: Values = { ...file.values };
  for (const [k, v] of Object.entries(cli.values)) if (v !== undefined) values[k] = v;
  const positionals = cli.positionals.length > 0 || file.positional === undefined ? cli.positionals : [file.positional];
  return { values, positionals };
}

/** Apply `--config` (when given) under the parsed command line. */
export async function withConfig(cli: { values: Values; positionals: string[] }, options: OptionTable, positionalKey?: string): Promise<{ values: Values; positionals: string[] }> {
  const path = cli.values.config;
  if (typeof path !== 'string') return cli;
  return mergeConfig(await readConfig(path, options, positionalKey), cli);
}
