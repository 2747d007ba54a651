/**
 * The decoded meaning of a SUIT envelope (draft-ietf-suit-manifest-37 §8),
 * independent of its byte encoding. Sequence numbers are `bigint` throughout
 * (the draft allows any uint up to 2^64 - 1); sizes, slots and indices are
 * `number` (a value above 2^53 is rejected as SUIT_LIMIT when decoding).
 */

/** SUIT_Digest (§8.3): a COSE hash algorithm id (-16 = SHA-256) and the digest. */
export interface SuitDigest {
  readonly alg: number;
  readonly bytes: Uint8Array;
}

/** SUIT_Component_Identifier (§8.4.5.1): an array of byte strings. */
export type ComponentId = readonly Uint8Array[];

/** SUIT parameters (§8.4.8). Unknown keys are kept in `other`. */
export interface SuitParameters {
  /** RFC 4122 UUID, or the bytes of a tagged IANA PEN (then `vendorIdIsPen`). */
  vendorId?: Uint8Array;
  /** The vendor id was a cbor-pen, #6.112(bstr) (§8.4.8.3). */
  vendorIdIsPen?: boolean;
  classId?: Uint8Array;
  imageDigest?: SuitDigest;
  componentSlot?: number;
  imageSize?: number;
  uri?: string;
  sourceComponent?: number;
  invokeArgs?: Uint8Array;
  deviceId?: Uint8Array;
  fetchArguments?: Uint8Array;
  content?: Uint8Array;
  strictOrder?: boolean;
  softFailure?: boolean;
  /** Parameters this library does not interpret, by key. */
  other?: ReadonlyMap<number, unknown>;
}

/** One command of a SUIT_Command_Sequence (§8.4.6). */
export type SuitCommand =
  /** A condition (vendor 1, class 2, image-match 3, slot 5, check-content 6, abort 14, device 24) with its reporting policy. */
  | { readonly kind: 'condition'; readonly code: number; readonly policy: number }
  /** A directive taking a reporting policy: write 18, fetch 21, copy 22, invoke 23, swap 31. */
  | { readonly kind: 'directive'; readonly code: number; readonly policy: number }
  | { readonly kind: 'set-component-index'; readonly index: number | true | readonly number[] }
  | { readonly kind: 'override-parameters'; readonly params: SuitParameters }
  | { readonly kind: 'try-each'; readonly branches: readonly SuitCommand[][]; readonly allowNone: boolean }
  | { readonly kind: 'run-sequence'; readonly sequence: readonly SuitCommand[] }
  /** A command code this library does not know (custom commands are negative). */
  | { readonly kind: 'unknown'; readonly code: number; readonly arg: unknown };

/** Text for one component in one language (§8.4.4). */
export interface SuitComponentText {
  readonly componentId: ComponentId;
  readonly fields: ReadonlyMap<number, string>;
}
/** SUIT_Text_LMap for one language tag. */
export interface SuitTextLang {
  readonly lang: string;
  readonly fields: ReadonlyMap<number, string>;
  readonly components: readonly SuitComponentText[];
}

/** SUIT_Manifest (§8.4), with command sequences decoded. */
export interface SuitManifest {
  readonly version: number;
  readonly sequenceNumber: bigint;
  readonly components: readonly ComponentId[];
  readonly sharedSequence: readonly SuitCommand[];
  readonly referenceUri?: string;
  readonly validate?: readonly SuitCommand[];
  readonly load?: readonly SuitCommand[];
  readonly invoke?: readonly SuitCommand[];
  readonly payloadFetch?: readonly SuitCommand[];
  readonly install?: readonly SuitCommand[];
  readonly text?: readonly SuitTextLang[];
  /**
   * Members the manifest holds only as a digest (severed, §8.4.11), with that
   * digest. When the envelope carried the member and it matched, it is also
   * decoded into the field of the same name above.
   */
  readonly severed: Readonly<Partial<Record<SeverableMember, SuitDigest>>>;
}

/** Names of the severable manifest members. */
export type SeverableMember = 'payloadFetch' | 'install' | 'text';

/** A COSE_Sign1 from the authentication wrapper (RFC 9052 §4.2), undecoded payload. */
export interface CoseSign1 {
  /** The protected header exactly as encoded (a bstr's content). */
  readonly protectedBytes: Uint8Array;
  /** The algorithm from the protected header. */
  readonly alg: number;
  /** Key id from the protected or unprotected header, if any. */
  readonly kid?: Uint8Array;
  /** Content type from the protected header (label 3), if any: trust documents set one, SUIT does not. */
  readonly contentType?: string | number;
  /** Non-nil only if the payload was attached (SUIT uses a detached payload). */
  readonly payload: Uint8Array | null;
  readonly signature: Uint8Array;
}

/** A decoded, not yet verified SUIT_Envelope. */
export interface DecodedEnvelope {
  /** The SUIT_Digest of the manifest as the authentication wrapper states it. */
  readonly digest: SuitDigest;
  /** The encoded SUIT_Digest (content of the first wrapper bstr): the signed payload. */
  readonly digestBytes: Uint8Array;
  /** The COSE_Sign1 authentication blocks. */
  readonly signatures: readonly CoseSign1[];
  /** Authentication blocks of other COSE types (COSE_Sign, COSE_Mac, COSE_Mac0): not supported, not used. */
  readonly otherAuthBlocks: number;
  /** The manifest bytes (content of the envelope's manifest bstr). */
  readonly manifestBytes: Uint8Array;
  /** The manifest bstr exactly as encoded in the envelope (header included): what the digest covers. */
  readonly manifestBstr: Uint8Array;
  readonly manifest: SuitManifest;
  /** Integrated payloads (§7.5): text keys of the envelope, with their bytes. */
  readonly integratedPayloads: ReadonlyMap<string, Uint8Array>;
  /** Whether the envelope carried tag 107. */
  readonly tagged: boolean;
}

/**
 * Per-block authentication of one image (coapfw's custom parameter
 * `coapfw-block-digests`, src/suit/block-digests.ts): the image is cut into
 * `blockSize`-byte blocks, each hashed into a leaf, and `root` is the
 * RFC 9162 §2.1.1 Merkle Tree Hash over the leaves.
 */
export interface BlockDigestsInfo {
  /** COSE hash algorithm of leaves and nodes; only -16 (SHA-256). */
  readonly alg: number;
  /** Bytes per block (a power of two); the last block may be shorter. */
  readonly blockSize: number;
  /** Leaves per page of the digest list (a power of two): the unit a device fetches and checks. */
  readonly pageLeaves: number;
  /** Image size the tree covers; must equal suit-parameter-image-size. */
  readonly imageSize: number;
  /** Merkle root (32 bytes). */
  readonly root: Uint8Array;
  /** Where the digest list is served (content-addressed), if the manifest names it. */
  readonly uri?: string;
}
