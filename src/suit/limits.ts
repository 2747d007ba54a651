/**
 * Resource limits for decoding and interpreting SUIT envelopes. Every one has
 * a safe default; a device may lower them.
 */
import type { CborLimits } from './cbor.js';

export interface SuitLimits extends CborLimits {
  /** Largest envelope accepted, integrated payloads included. */
  readonly maxEnvelopeBytes: number;
  /** Most authentication blocks (signatures) looked at. */
  readonly maxSignatures: number;
  /** Most components a manifest may declare. */
  readonly maxComponents: number;
  /** Deepest nesting of command sequences (try-each, run-sequence). */
  readonly maxSequenceDepth: number;
  /**
   * Most commands the interpreter runs for one plan (bounds try-each
   * fan-out); a command applied to several components counts once per component.
   */
  readonly maxCommands: number;
  /** Most image steps (fetch, copy), validate checks and invokes in one plan. */
  readonly maxImages: number;
}

/** Defaults: generous for real manifests (the WG's largest is under 1 KiB), small for hostile ones. */
export const DEFAULT_SUIT_LIMITS: SuitLimits = Object.freeze({
  maxEnvelopeBytes: 256 * 1024,
  maxDepth: 16,
  maxArrayLength: 256,
  maxItems: 16384,
  maxSignatures: 8,
  maxComponents: 16,
  maxSequenceDepth: 6,
  maxCommands: 2048,
  maxImages: 64,
});

/** Merge caller overrides over the defaults. */
export function suitLimits(over?: Partial<SuitLimits>): SuitLimits {
  return over ? { ...DEFAULT_SUIT_LIMITS, ...over } : DEFAULT_SUIT_LIMITS;
}
