/**
 * Verification on behalf of devices: every SUIT envelope the gateway relays
 * (a manifest at `/m/<class>`, or an envelope fetched by content address) is
 * checked against the gateway's own trust anchors before any device gets
 * it, so a device too small to verify a signature still never sees an
 * envelope the operator did not sign. Refused, counted by reason and logged:
 *
 * - `signature`: no signature by a trust anchor (NO_SIGNATURE, UNTRUSTED_KEY,
 *   SIGNATURE_INVALID), `digest`: the manifest is not the one signed;
 * - `rollback`: a sequence number below the highest the gateway relayed for
 *   the class (kept on disk, so a restart does not reopen the door);
 * - `class`, `vendor`: not a class or vendor the gateway serves (or not the
 *   class the path named), `condition`, `malformed`.
 *
 * An equal sequence number is the same release for another device and
 * passes. Devices still check everything themselves; this is a second line,
 * and for the smallest devices the first.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { bytesToHex } from '@noble/hashes/utils.js';
import { CoapfwError, isCoapfwError } from '../errors.js';
import { decodeEnvelope } from '../suit/decode.js';
import { summarizeEnvelope } from '../suit/describe.js';
import type { SuitLimits } from '../suit/limits.js';
import type { TrustPolicy } from '../suit/trust.js';
import { verifyEnvelope } from '../suit/verify.js';
import { syncDir } from './journal.js';

/** What the gateway accepts. */
export interface EnvelopePolicy {
  readonly trust: TrustPolicy;
  /** Vendor ids (16-byte UUIDs) served; any when absent. */
  readonly vendorIds?: readonly Uint8Array[];
  /** Class ids served; any when absent. */
  readonly classIds?: readonly Uint8Array[];
  /** Refuse what fails (default true); false relays it anyway, still counted and logged. */
  readonly refuse?: boolean;
  readonly limits?: Partial<SuitLimits>;
}

/** Why an envelope was refused. */
export type RefusalReason = 'malformed' | 'signature' | 'digest' | 'rollback' | 'vendor' | 'class' | 'condition';

/** Counters. */
export interface VerificationStats {
  checked: number;
  passed: number;
  /** Refused (or, with `refuse: false`, let through anyway), by reason. */
  refused: Record<RefusalReason, number>;
}

/** A verification outcome, for the log. */
export type VerificationEvent =
  | { readonly type: 'envelope-verified'; readonly where: string; readonly classes: readonly string[]; readonly sequence: string }
  | { readonly type: 'envelope-refused'; readonly where: string; readonly reason: RefusalReason; readonly relayed: boolean; readonly error: CoapfwError };

/** An envelope that passed: its classes (hex) and sequence number. */
export interface CheckedEnvelope {
  readonly classes: readonly string[];
  readonly sequence: bigint;
}

const MAX_CLASSES = 10_000;

/** Checks envelopes and remembers the highest sequence relayed per class. */
export class EnvelopeGuard {
  readonly stats: VerificationStats = { checked: 0, passed: 0, refused: { malformed: 0, signature: 0, digest: 0, rollback: 0, vendor: 0, class: 0, condition: 0 } };

  private constructor(
    private readonly policy: EnvelopePolicy,
    private readonly stateFile: string | undefined,
    private readonly relayed: Map<string, bigint>,
    private readonly onEvent?: (e: VerificationEvent) => void,
  ) {}

  /** A guard whose rollback memory lives in `stateFile` (JSON, written atomically); in memory only without one. */
  static async open(policy: EnvelopePolicy, stateFile: string | undefined, onEvent?: (e: VerificationEvent) => void): Promise<EnvelopeGuard> {
    if (!policy?.trust?.anchors?.length) throw new CoapfwError('INVALID_ARGUMENT', 'gateway: verification needs at least one trust anchor');
    const relayed = new Map<string, bigint>();
    if (stateFile !== undefined) {
      const text = await readFile(stateFile, 'utf8').catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return '{}';
        throw new CoapfwError('IO_ERROR', `gateway: cannot read ${stateFile}: ${e.message}`, { cause: e, path: stateFile });
      });
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        throw new CoapfwError('QUEUE_CORRUPT', `gateway: ${stateFile} is not valid JSON`, { cause: e, path: stateFile });
      }
      for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) if (/^[0-9a-f]{32}$/.test(k) && typeof v === 'string' && /^\d+$/.test(v)) relayed.set(k, BigInt(v));
    }
    return new EnvelopeGuard(policy, stateFile, relayed, onEvent);
  }

  /** The highest sequence number relayed for class `hex`, if any. */
  lastRelayed(classHex: string): bigint | undefined {
    return this.relayed.get(classHex);
  }

  /**
   * Whether `bytes` decode as a SUIT envelope at all (a firmware image that
   * merely starts like one is not refused for it).
   */
  isEnvelope(bytes: Uint8Array): boolean {
    try {
      decodeEnvelope(bytes, this.policy.limits);
      return true;
    } catch (e) {
      return !isCoapfwError(e, 'SUIT_MALFORMED');
    }
  }

  /**
   * Check an envelope to relay: throws the refusal (a CoapfwError with the
   * failed check's code) unless the policy says to relay anyway. `classHex`:
   * the class the request named (`/m/<class>`), which the manifest must check.
   */
  async check(bytes: Uint8Array, where: string, classHex?: string): Promise<CheckedEnvelope | undefined> {
    this.stats.checked++;
    let checked: CheckedEnvelope;
    try {
      checked = this.verify(bytes, classHex);
    } catch (e) {
      const error = e instanceof CoapfwError ? e : new CoapfwError('SUIT_MALFORMED', `envelope: ${(e as Error).message}`, { cause: e });
      const reason = reasonOf(error);
      this.stats.refused[reason]++;
      const relayed = this.policy.refuse === false;
      this.onEvent?.({ type: 'envelope-refused', where, reason, relayed, error });
      if (relayed) return undefined;
      throw error;
    }
    this.stats.passed++;
    await this.remember(checked);
    this.onEvent?.({ type: 'envelope-verified', where, classes: checked.classes, sequence: checked.sequence.toString() });
    return checked;
  }

  private verify(bytes: Uint8Array, classHex: string | undefined): CheckedEnvelope {
    const first = verifyEnvelope(bytes, { trust: this.policy.trust, limits: this.policy.limits });
    const summary = summarizeEnvelope(first.envelope, this.policy.limits);
    const classes = summary.classIds.map((c) => c.replace(/-/g, '').toLowerCase());
    const vendors = summary.vendorIds.map((c) => c.replace(/-/g, '').toLowerCase());
    if (classHex !== undefined && !classes.includes(classHex)) {
      throw new CoapfwError('CLASS_MISMATCH', `envelope: asked for class ${classHex}, the manifest is for ${classes.join(', ') || 'no class'}`);
    }
    const vendor = pick(this.policy.vendorIds, vendors, 'VENDOR_MISMATCH', 'vendor');
    const cls = pick(this.policy.classIds, classHex === undefined ? classes : [classHex], 'CLASS_MISMATCH', 'class');
    // Again with the identity: the manifest must really check that vendor and class (suit/verify.ts).
    if (vendor !== undefined || cls !== undefined) verifyEnvelope(bytes, { trust: this.policy.trust, limits: this.policy.limits, vendorId: vendor, classId: cls });
    const sequence = first.sequenceNumber;
    for (const c of classes) {
      const last = this.relayed.get(c);
      if (last !== undefined && sequence < last) {
        throw new CoapfwError('ROLLBACK', `envelope: sequence ${sequence} for class ${c} is below ${last}, already relayed`);
      }
    }
    return { classes, sequence };
  }

  private async remember(e: CheckedEnvelope): Promise<void> {
    let changed = false;
    for (const c of e.classes) {
      if ((this.relayed.get(c) ?? -1n) >= e.sequence) continue;
      this.relayed.delete(c);
      this.relayed.set(c, e.sequence);
      changed = true;
      if (this.relayed.size > MAX_CLASSES) this.relayed.delete(this.relayed.keys().next().value!);
    }
    if (!changed || this.stateFile === undefined) return;
    // Written before the envelope is relayed: a restart never forgets a higher sequence it handed out.
    const tmp = `${this.stateFile}.tmp`;
    await writeFile(tmp, JSON.stringify(Object.fromEntries([...this.relayed].map(([k, v]) => [k, v.toString()]))), { mode: 0o600, flush: true });
    await rename(tmp, this.stateFile);
    await syncDir(dirname(this.stateFile));
  }
}

/** The one of `allowed` the manifest names, or undefined when any is allowed; a mismatch throws. */
function pick(allowed: readonly Uint8Array[] | undefined, named: readonly string[], code: 'VENDOR_MISMATCH' | 'CLASS_MISMATCH', what: string): Uint8Array | undefined {
  if (allowed === undefined || allowed.length === 0) return undefined;
  const match = allowed.find((a) => named.includes(bytesToHex(a)));
  if (match === undefined) throw new CoapfwError(code, `envelope: ${what} ${named.join(', ') || '(none)'} is not one this gateway serves`);
  return match;
}

function reasonOf(e: CoapfwError): RefusalReason {
  switch (e.code) {
    case 'ROLLBACK':
      return 'rollback';
    case 'VENDOR_MISMATCH':
      return 'vendor';
    case 'CLASS_MISMATCH':
      return 'class';
    case 'DIGEST_MISMATCH':
      return 'digest';
    case 'CONDITION_FAILED':
      return 'condition';
    case 'SIGNATURE_INVALID':
    case 'NO_SIGNATURE':
    case 'UNTRUSTED_KEY':
    case 'KEY_INVALID':
      return 'signature';
    default:
      return 'malformed';
  }
}
