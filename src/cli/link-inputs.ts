/**
 * The options that say how to reach a server: block size and PSK credentials.
 * Apart from inputs.ts so that `coapfw get` and `serve`, which need only
 * these, do not load the SUIT code that key and envelope parsing bring.
 */
import { parseBlockSize } from '../codec/block.js';
import type { PskCredentials } from '../client/secure.js';
import { parsePskKey } from '../transport/dtls/psk-store.js';
import { optionValue } from './args.js';
import { UsageError } from './common.js';

/** `--block-size N` as SZX, or undefined when not given. */
export function blockSizeOption(value: unknown, name = 'block-size'): number | undefined {
  return value === undefined ? undefined : optionValue(() => parseBlockSize(String(value), `--${name}`));
}

/**
 * `--psk-identity ID --psk-key KEY`: both required for coaps://, refused for
 * coap:// (they would be silently unused). Every mistake is a usage error.
 */
export function pskOption(scheme: string, identity: unknown, key: unknown): PskCredentials | undefined {
  if (scheme !== 'coaps') {
    if (identity !== undefined || key !== undefined) throw new UsageError('--psk-identity and --psk-key are for coaps:// URIs');
    return undefined;
  }
  if (typeof identity !== 'string' || identity === '' || typeof key !== 'string') throw new UsageError('coaps:// needs --psk-identity ID and --psk-key KEY');
  return { identity, key: optionValue(() => parsePskKey(key, '--psk-key')) };
}
