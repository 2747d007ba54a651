/**
 * The block-size option, apart from inputs.ts so that `coapfw get` and
 * `serve`, which need only it, do not load the SUIT code that key and
 * envelope parsing bring.
 */
import { parseBlockSize } from '../codec/block.js';
import { optionValue } from './args.js';

/** `--block-size N` as SZX, or undefined when not given. */
export function blockSizeOption(value: unknown, name = 'block-size'): number | undefined {
  return value === undefined ? undefined : optionValue(() => parseBlockSize(String(value), `--${name}`));
}
