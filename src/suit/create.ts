/**
 * Single-image envelopes as our server and demo publish them: one component,
 * vendor and class conditions, fetch from a content-addressed URI
 * (`coap://host/fw/sha256/<hex>`), image-match after fetch and at boot.
 * The manifest has the shape of the WG's example 1 (or example 3's slot
 * choice when `slot` is given).
 */
import { CoapfwError } from '../errors.js';
import { ALG, CONDITION, DIRECTIVE } from './constants.js';
import { createSignedEnvelope, type EnvelopeOptions } from './encode.js';
import type { SuitPrivateKey } from './keys.js';
import { blockDigestsParameter } from './block-digests-param.js';
import { DELTA_COMPONENT_ID, deltaInstallSequence, type DeltaManifestInput } from './delta-manifest.js';
import type { BlockDigestsInfo, ComponentId, SuitCommand, SuitDigest } from './types.js';

/** Description of a single-image update. */
export interface SingleImageManifest {
  /** Sequence number: the device installs it only if greater than what it has. */
  readonly sequence: bigint | number;
  /** 16-byte vendor UUID. */
  readonly vendorId: Uint8Array;
  /** 16-byte class UUID. */
  readonly classId: Uint8Array;
  /** Where the device fetches the image. */
  readonly uri: string;
  /** SHA-256 of the image (32 bytes), or a full SUIT digest. */
  readonly digest: Uint8Array | SuitDigest;
  /** Image size in bytes. */
  readonly size: number;
  /** Component id, default `[h'00']`. */
  readonly componentId?: ComponentId;
  /** Slot to write; adds condition-component-slot so only a device writing that slot accepts. */
  readonly slot?: number;
  /** Add an invoke sequence (boot the image). Default false. */
  readonly invoke?: boolean;
  /**
   * Per-block digests of the image (`buildBlockDigests(image, ...).info`):
   * set as coapfw-block-digests beside the image digest, so a device can
   * check every block before it writes it. Its imageSize must equal `size`.
   */
  readonly blockDigests?: BlockDigestsInfo;
  /**
   * Offer a differential update as well (src/suit/delta-manifest.ts): a
   * second component ['coapfw', 'delta'] and a try-each in install, the
   * delta first (if the installed image is its source), the full image else.
   */
  readonly delta?: DeltaManifestInput;
}

function check(desc: SingleImageManifest): SuitDigest {
  const bad = (m: string): CoapfwError => new CoapfwError('INVALID_ARGUMENT', `createEnvelope: ${m}`);
  if (typeof desc.sequence === 'number' ? !Number.isSafeInteger(desc.sequence) || desc.sequence < 0 : typeof desc.sequence !== 'bigint' || desc.sequence < 0n) {
    throw bad('sequence: expected an unsigned integer (bigint above 2^53)');
  }
  if (!(desc.vendorId instanceof Uint8Array) || desc.vendorId.length !== 16) throw bad('vendorId: expected 16 bytes');
  if (!(desc.classId instanceof Uint8Array) || desc.classId.length !== 16) throw bad('classId: expected 16 bytes');
  if (typeof desc.uri !== 'string' || desc.uri.length === 0) throw bad('uri: expected a non-empty string');
  if (!Number.isSafeInteger(desc.size) || desc.size < 0) throw bad(`size: expected an unsigned integer, got ${desc.size}`);
  if (desc.slot !== undefined && (!Number.isSafeInteger(desc.slot) || desc.slot < 0)) throw bad('slot: expected an unsigned integer');
  if (desc.blockDigests !== undefined && desc.blockDigests.imageSize !== desc.size) {
    throw bad(`blockDigests: covers ${desc.blockDigests.imageSize} bytes, the image is ${desc.size}`);
  }
  const d = desc.digest instanceof Uint8Array ? { alg: ALG.sha256, bytes: desc.digest } : desc.digest;
  if (!d || !(d.bytes instanceof Uint8Array) || (d.alg === ALG.sha256 && d.bytes.length !== 32)) throw bad('digest: expected 32 bytes of SHA-256');
  return d;
}

/**
 * Create and sign a single-image envelope (Ed25519 -19 for Ed25519 keys;
 * every key adds a signature).
 *
 * @example
 * const env = createEnvelope({ sequence: 8, vendorId, classId, uri: `coap://fw.example/fw/sha256/${hex}`, digest, size }, [key]);
 */
export function createEnvelope(desc: SingleImageManifest, keys: readonly SuitPrivateKey[], opts?: EnvelopeOptions): Uint8Array {
  const digest = check(desc);
  const cond = (code: number): SuitCommand => ({ kind: 'condition', code, policy: 15 });
  const slot: SuitCommand[] = desc.slot === undefined
    ? []
    : [{ kind: 'override-parameters', params: { componentSlot: desc.slot } }, { kind: 'condition', code: CONDITION.componentSlot, policy: 5 }];
  const shared: SuitCommand[] = [
    {
      kind: 'override-parameters',
      params: {
        vendorId: desc.vendorId,
        classId: desc.classId,
        imageDigest: digest,
        imageSize: desc.size,
        ...(desc.blockDigests ? { other: new Map([blockDigestsParameter(desc.blockDigests)]) } : {}),
      },
    },
    cond(CONDITION.vendorId),
    cond(CONDITION.classId),
    ...slot,
  ];
  const image = desc.componentId ?? [new Uint8Array([0])];
  const idx0: SuitCommand[] = desc.delta ? [{ kind: 'set-component-index', index: 0 }] : [];
  const install: SuitCommand[] = desc.delta
    ? deltaInstallSequence({ uri: desc.uri, digest, size: desc.size, ...(desc.blockDigests ? { blockDigests: desc.blockDigests } : {}) }, desc.delta)
    : [{ kind: 'override-parameters', params: { uri: desc.uri } }, { kind: 'directive', code: DIRECTIVE.fetch, policy: 2 }, cond(CONDITION.imageMatch)];
  return createSignedEnvelope(
    {
      version: 1,
      sequenceNumber: BigInt(desc.sequence),
      components: desc.delta ? [image, DELTA_COMPONENT_ID] : [image],
      sharedSequence: [...idx0, ...shared],
      validate: [...idx0, cond(CONDITION.imageMatch)],
      ...(desc.invoke ? { invoke: [...idx0, { kind: 'directive', code: DIRECTIVE.invoke, policy: 2 }] as SuitCommand[] } : {}),
      install,
    },
    keys,
    opts,
  );
}
