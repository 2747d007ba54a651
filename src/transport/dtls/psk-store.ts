/**
 * Pre-shared keys of the DTLS server (RFC 4279 §5: identities are UTF-8 strings,
 * keys opaque bytes; RFC 7925 §4.2 wants at least 128-bit keys in deployments).
 *
 * File format, one entry per line: `identity hexkey [roles]`. Blank lines and
 * lines starting with `#` are ignored. Identities contain no white space.
 * Roles, comma-separated, say what an identity may do beyond being a device;
 * the one role today is `publisher` (may upload releases to the update
 * service). A line without roles is a device, as before roles existed.
 *
 *   # device PSKs
 *   dev-0001 00112233445566778899aabbccddeeff
 *   ci-release 0f0e0d0c0b0a09080706050403020100 publisher
 */
import { watchFile, unwatchFile } from 'node:fs';
import { readFileBounded } from '../../bounded-read.js';
import { CoapfwError } from '../../errors.js';

/** Anything that maps a PSK identity to its key. */
export interface PskLookup {
  lookup(identity: string): Uint8Array | undefined;
}

/** The roles an identity may have. */
export type PskRole = 'publisher' | 'gateway';
/** Every role a PSK file may name. */
export const PSK_ROLES: readonly PskRole[] = ['publisher', 'gateway'];

/** A PSK table that also knows roles. */
export interface PskRoles {
  /** Whether `identity` has `role`. */
  hasRole(identity: string, role: PskRole): boolean;
}

/** One identity: its key and roles. */
interface PskEntry {
  readonly key: Uint8Array;
  readonly roles: ReadonlySet<PskRole>;
}

/** A table of PSKs, optionally backed by a file that can be reloaded without restart. */
export class PskStore implements PskLookup, PskRoles {
  private table: Map<string, PskEntry>;
  private watching = false;

  private constructor(
    table: Map<string, PskEntry>,
    /** The file this store was read from, if any. */
    readonly path?: string,
  ) {
    this.table = table;
  }

  /** A store from `[identity, key]` or `[identity, key, roles]` entries. */
  static fromEntries(entries: Iterable<readonly [string, Uint8Array] | readonly [string, Uint8Array, readonly PskRole[]]>): PskStore {
    const table = new Map<string, PskEntry>();
    for (const [id, key, roles] of entries) {
      checkIdentity(id, 'psk');
      if (!(key instanceof Uint8Array) || key.length === 0 || key.length > 64) {
        throw new CoapfwError('INVALID_ARGUMENT', `psk: key of "${id}" must be 1..64 bytes`);
      }
      table.set(id, { key: Uint8Array.from(key), roles: checkRoles(roles ?? [], `psk: roles of "${id}"`) });
    }
    return new PskStore(table);
  }

  /** Parses the text format; `source` labels error messages. */
  static parse(text: string, source = 'psk'): PskStore {
    return new PskStore(parseTable(text, source));
  }

  /** Reads a PSK file. */
  static async fromFile(path: string): Promise<PskStore> {
    return new PskStore(parseTable(await readText(path), path, path), path);
  }

  /** Key for `identity`, or undefined. */
  lookup(identity: string): Uint8Array | undefined {
    return this.table.get(identity)?.key;
  }

  hasRole(identity: string, role: PskRole): boolean {
    return this.table.get(identity)?.roles.has(role) ?? false;
  }

  /** Number of identities. */
  get size(): number {
    return this.table.size;
  }

  /**
   * Re-reads the file. On a parse or read error the old table stays in use and
   * the error is thrown, so a half-written file never locks every device out.
   */
  async reload(): Promise<void> {
    if (this.path === undefined) throw new CoapfwError('INVALID_ARGUMENT', 'psk: this store was not read from a file');
    this.table = parseTable(await readText(this.path), this.path, this.path);
  }

  /**
   * Polls the file every `intervalMs` and reloads it when it changes; errors go
   * to `onError`. Returns a function that stops watching. The poller does not
   * keep the process alive.
   */
  watch(intervalMs = 2000, onError: (e: unknown) => void = () => {}): () => void {
    const path = this.path;
    if (path === undefined) throw new CoapfwError('INVALID_ARGUMENT', 'psk: this store was not read from a file');
    if (this.watching) unwatchFile(path);
    this.watching = true;
    const listener = (): void => void this.reload().catch(onError);
    watchFile(path, { interval: intervalMs, persistent: false }, listener);
    return () => {
      unwatchFile(path, listener);
      this.watching = false;
    };
  }
}

/** A PSK table of 10,000 devices is about 600 KiB. */
const MAX_PSK_FILE_BYTES = 4 * 1024 * 1024;

/** The file, read with a size bound (a mistaken `--psk-file /dev/zero` fails at once). */
async function readText(path: string): Promise<string> {
  return new TextDecoder().decode(await readFileBounded(path, MAX_PSK_FILE_BYTES, 'PSK file'));
}

function checkIdentity(id: string, where: string, path?: string): void {
  if (typeof id !== 'string' || id.length === 0 || /\s/.test(id) || Buffer.byteLength(id) > 256) {
    throw new CoapfwError('INVALID_ARGUMENT', `${where}: identity must be 1..256 bytes without white space, got ${JSON.stringify(id)}`, { path });
  }
}

function checkRoles(roles: readonly string[], where: string, path?: string): ReadonlySet<PskRole> {
  for (const r of roles) {
    if (!(PSK_ROLES as readonly string[]).includes(r)) {
      throw new CoapfwError('INVALID_ARGUMENT', `${where}: unknown role "${r}" (known: ${PSK_ROLES.join(', ')})`, { path });
    }
  }
  return new Set(roles as PskRole[]);
}

/** Parses the `identity hexkey [roles]` lines; errors name `source:line` and carry `path` when read from a file. */
function parseTable(text: string, source: string, path?: string): Map<string, PskEntry> {
  const table = new Map<string, PskEntry>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = `${source}:${i + 1}`;
    const parts = line.split(/\s+/);
    if (parts.length !== 2 && parts.length !== 3) throw new CoapfwError('INVALID_ARGUMENT', `${where}: expected "identity hexkey [roles]", got ${parts.length} fields`, { path });
    const [id, hex, roles] = parts as [string, string, string | undefined];
    checkIdentity(id, where, path);
    if (!/^([0-9a-fA-F]{2}){1,64}$/.test(hex)) throw new CoapfwError('INVALID_ARGUMENT', `${where}: key must be 1..64 bytes of hex`, { path });
    if (table.has(id)) throw new CoapfwError('INVALID_ARGUMENT', `${where}: duplicate identity "${id}"`, { path });
    table.set(id, { key: new Uint8Array(Buffer.from(hex, 'hex')), roles: checkRoles(roles === undefined ? [] : roles.split(','), where, path) });
  }
  return table;
}

/**
 * A PSK key given on a command line: `0x<hex>` or `hex:<hex>` for binary keys,
 * anything else is taken as UTF-8 text (libcoap's `-k` convention).
 */
export function parsePskKey(text: string, label = 'psk key'): Uint8Array {
  if (typeof text !== 'string' || text.length === 0) throw new CoapfwError('INVALID_ARGUMENT', `${label}: must be a non-empty string`);
  const m = /^(?:0x|hex:)(.*)$/i.exec(text);
  const key = m ? hexKey(m[1]!, label) : new TextEncoder().encode(text);
  if (key.length > 64) throw new CoapfwError('INVALID_ARGUMENT', `${label}: at most 64 bytes, got ${key.length}`);
  return key;
}

function hexKey(hex: string, label: string): Uint8Array {
  if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw new CoapfwError('INVALID_ARGUMENT', `${label}: expected an even number of hex digits`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}
