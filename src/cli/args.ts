/**
 * Command-line arguments on `node:util.parseArgs` (strict), with what people
 * expect of a Unix tool beyond it: a negative number is a value
 * (`--installed-seq -1`, then range-checked by the option), an unknown option
 * names the closest known one (`did you mean --block-size?`), and every
 * parse error is one short line of our own rather than Node's message.
 */
import { parseArgs } from 'node:util';
import { CoapfwError } from '../errors.js';
import { didYouMean } from '../suggest.js';
import { UsageError } from './common.js';

/** One option: `parseArgs` syntax. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
}
export type OptionTable = Readonly<Record<string, OptionSpec>>;

/** Parsed values: strings, booleans, or arrays of them for `multiple` options. */
export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** `-v`/`-vv`/`--verbose`, `--json` and `-h`/`--help`, which most commands take. */
export const COMMON_OPTIONS = {
  verbose: { type: 'boolean', short: 'v', multiple: true },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionTable;

const NEGATIVE = /^-\d/;

/** `--opt -1` and `-o -1` -> `--opt=-1` and `-o-1`, for string options only; nothing after `--`. */
function joinNegativeValues(args: readonly string[], options: OptionTable): string[] {
  const out: string[] = [];
  const shorts = new Map(Object.entries(options).filter(([, o]) => o.short).map(([n, o]) => [o.short!, n]));
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      out.push(...args.slice(i));
      break;
    }
    const next = args[i + 1];
    const long = /^--([^=]+)$/.exec(a)?.[1];
    const short = /^-([^-])$/.exec(a)?.[1];
    const name = long ?? (short !== undefined ? shorts.get(short) : undefined);
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && NEGATIVE.test(next)) {
      out.push(long !== undefined ? `--${long}=${next}` : `-${short}${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** Our one-line message for a parseArgs error. */
function usageMessage(e: NodeJS.ErrnoException, options: OptionTable): string {
  const quoted = /'([^']+)'/.exec(e.message)?.[1] ?? '';
  const long = /--([\w-]+)/.exec(quoted)?.[1];
  const flag = long !== undefined ? `--${long}` : quoted;
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const near = long !== undefined ? didYouMean(long, Object.keys(options)) : undefined;
      return `unknown option '${quoted}'${near ? ` (did you mean --${near}?)` : ''}`;
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/argument missing/.test(e.message)) return `option ${flag} needs a value`;
      if (/does not take an argument/.test(e.message)) return `option ${flag} takes no value`;
      if (/ambiguous/.test(e.message)) return `option ${flag}: a value starting with '-' must be written ${flag}=VALUE`;
      return `option ${flag}: invalid value`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument '${quoted}'`;
    default:
      return e.message.split('\n')[0] ?? String(e);
  }
}

/** Parse `args` against `options`; any problem is a UsageError (exit code 2). */
export function parse(args: readonly string[], options: OptionTable, allowPositionals = true): { values: Values; positionals: string[] } {
  try {
    const r = parseArgs({ args: joinNegativeValues(args, options), options, allowPositionals, strict: true });
    return { values: r.values as Values, positionals: r.positionals };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new UsageError(typeof err.code === 'string' ? usageMessage(err, options) : String(e));
  }
}

/** A string option's value, or undefined. */
export function str(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A repeatable string option's values. */
export function strings(values: Values, name: string): string[] {
  const v = values[name];
  return v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)];
}

/** How many times `-v` was given (`-vv` is 2). */
export function verbosity(values: Values): number {
  const v = values.verbose;
  return Array.isArray(v) ? v.length : v === true ? 1 : 0;
}

/** Parse a decimal integer option with bounds, labelled for the error message. */
export function intOption(name: string, raw: unknown, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const s = String(raw);
  if (!/^-?\d+$/.test(s)) throw new UsageError(`--${name}: expected an integer, got '${s}'`);
  const n = Number(s);
  if (n < min || n > max) throw new UsageError(`--${name}: expected ${min}..${max}, got ${s}`);
  return n;
}

/** Run a library parser on an argument; its INVALID_ARGUMENT or BAD_URI becomes a UsageError (exit 2). */
export function optionValue<T>(parseValue: () => T): T {
  try {
    return parseValue();
  } catch (e) {
    if (e instanceof CoapfwError && (e.code === 'INVALID_ARGUMENT' || e.code === 'BAD_URI')) throw new UsageError(e.message);
    throw e;
  }
}
