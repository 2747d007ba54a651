/**
 * What several commands read the same way: key files, envelopes and device
 * identities, block sizes (PSK credentials: credentials.ts). Every file is read with a size
 * bound (readFileBounded); every error names the file or the option.
 */
import { readFileBounded } from '../bounded-read.js';
import { CoapfwError } from '../errors.js';
import { DEFAULT_SUIT_LIMITS, parsePrivateKey, parsePublicKey, parseUuid, type SuitPrivateKey, type SuitPublicKey } from '../suit/index.js';
import { optionValue } from './args.js';

/** Size bounds of the files the CLI reads whole. */
export const INPUT_LIMITS = Object.freeze({
  /** PEM, hex or COSE_Key: a few hundred bytes. */
  keyFile: 64 * 1024,
  /** The decoder's own limit: a larger file could not be decoded anyway. */
  envelope: DEFAULT_SUIT_LIMITS.maxEnvelopeBytes,
  /** The JSON input of `manifest create`. */
  manifestJson: 1024 * 1024,
  /** An image named by "file" in the JSON input (default of --max-image-size: the server's largest file). */
  image: 1024 * 1024 * 1024,
});

/** Run `f`; a CoapfwError it throws gets `path: ` in front of its message. */
export function labelled<T>(path: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof CoapfwError && !e.message.startsWith(`${path}:`)) throw new CoapfwError(e.code, `${path}: ${e.message}`, { cause: e, path });
    throw e;
  }
}

/** A public key file: PEM, hex or COSE_Key (text or binary is told apart by the key parser). */
export async function readPublicKey(path: string): Promise<SuitPublicKey> {
  const bytes = await readFileBounded(path, INPUT_LIMITS.keyFile, 'key file');
  return labelled(path, () => parsePublicKey(bytes));
}

/** A private key file: PEM, hex seed or COSE_Key. */
export async function readPrivateKey(path: string): Promise<SuitPrivateKey> {
  const bytes = await readFileBounded(path, INPUT_LIMITS.keyFile, 'key file');
  return labelled(path, () => parsePrivateKey(bytes));
}

/** A SUIT envelope file, bounded by the decoder's envelope limit. */
export function readEnvelope(path: string): Promise<Uint8Array> {
  return readFileBounded(path, INPUT_LIMITS.envelope, 'SUIT envelope');
}

/** `--vendor-id`/`--class-id`: a UUID, or undefined when not given. */
export function uuidOption(name: string, value: unknown): Uint8Array | undefined {
  return value === undefined ? undefined : optionValue(() => parseUuid(String(value), `--${name}`));
}

// Re-exported for the commands that read keys as well; `get` and `serve` import link-inputs.ts alone.
export { blockSizeOption } from './link-inputs.js';
