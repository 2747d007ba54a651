/**
 * The publishers' side of the update service:
 *
 * - `PUT /pub/blob/<hex>`: upload an image (or any blob a manifest names),
 *   block-wise, streamed into the staging area; 2.01 when complete and its
 *   SHA-256 is `<hex>`, 4.00 (nothing kept) when it is not, 2.04 at once when
 *   the server already holds those bytes;
 * - `POST /pub/release`: `{ envelope, urgency, downtime? }`: verify, plan,
 *   check the images, store the release in one transaction (publish.ts);
 *   2.01 `{ class, seq, envelope: sha256 hex }`.
 *
 * Only coaps identities with the publisher role get past the first block:
 * everyone else's upload is refused before anything is written.
 */
import type { Block1Receiver } from '../blockwise/block1.js';
import { withBlock1 } from '../blockwise/block1.js';
import type { Block1Stream, UploadSink } from '../blockwise/block1-stream.js';
import { Code } from '../codec/numbers.js';
import type { CoapRequest, ResponseSpec } from '../messaging/endpoint.js';
import { bodyResponse, decodeBody, responseFormat } from '../server/body.js';
import type { Resolver, Resource } from '../server/router.js';
import type { PeerIdentity } from '../server/serve.js';
import type { SuitLimits } from '../suit/limits.js';
import type { TrustPolicy } from '../suit/trust.js';
import { CoapfwError } from '../errors.js';
import { publisherOf, type AccessPolicy } from './access.js';
import { BODY_OPTIONS, type ServiceEvent } from './device-resources.js';
import type { Targeting } from './modes.js';
import { parsePublish } from './protocol.js';
import { publishEnvelope } from './publish.js';
import type { BlobStaging } from './staging.js';
import type { Store } from './store.js';

/** What the publish resources work with. */
export interface PublishContext {
  readonly store: Store;
  readonly staging: BlobStaging;
  readonly policy: AccessPolicy;
  readonly identify: (req: CoapRequest) => PeerIdentity;
  /** Publish anchors; none: every release is refused (4.03). */
  readonly trust: TrustPolicy | undefined;
  readonly targeting: Targeting;
  /** Blob uploads, streamed. */
  readonly uploads: Block1Stream;
  /** Release bodies (an envelope and a few fields), assembled in memory. */
  readonly releaseBodies: Block1Receiver;
  readonly maxEnvelopeBytes: number;
  readonly limits?: Partial<SuitLimits>;
  readonly onEvent?: (e: ServiceEvent) => void;
}

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;
const encoder = new TextEncoder();

/** `/pub/blob/<hex>` and `/pub/release`. */
export function publishResolver(ctx: PublishContext): Resolver {
  const release = withBlock1((req) => publish(ctx, req), ctx.releaseBodies);
  const releaseResource: Resource = { methods: new Set([Code.POST]), options: BODY_OPTIONS, handle: (req) => (authorize(ctx, req), release(req)) };
  return (path) => {
    if (path[0] !== 'pub') return undefined;
    if (path.length === 2 && path[1] === 'release') return releaseResource;
    if (path.length === 3 && path[1] === 'blob') return blobResource(ctx, path[2]!);
    return undefined;
  };
}

/** Every block of a publisher's request is checked, so nobody else's upload gets anywhere. */
function authorize(ctx: PublishContext, req: CoapRequest): string {
  return publisherOf(ctx.identify(req), ctx.policy);
}

function blobResource(ctx: PublishContext, segment: string): Resource {
  const upload = ctx.uploads.handler(async (_req, size1): Promise<ResponseSpec | UploadSink> => {
    if (!SHA256_HEX.test(segment)) throw new CoapfwError('INVALID_ARGUMENT', `blob: '${segment.slice(0, 70)}' is not a SHA-256 in hex`);
    const sha256 = segment.toLowerCase();
    if (ctx.staging.get(sha256) !== undefined || (await ctx.store.blobSize(sha256)) !== undefined) {
      return { code: Code.CHANGED, payload: encoder.encode('already held: nothing to upload') };
    }
    return ctx.staging.begin(sha256, size1);
  });
  return { methods: new Set([Code.PUT]), options: BODY_OPTIONS, handle: (req) => (authorize(ctx, req), upload(req)) };
}

async function publish(ctx: PublishContext, req: CoapRequest): Promise<ResponseSpec> {
  const format = responseFormat(req.message, 'release');
  const publisher = authorize(ctx, req);
  if (ctx.trust === undefined) throw new CoapfwError('FORBIDDEN', 'release: this server has no publish trust anchors (serve --trust KEY.pub)');
  const body = parsePublish(decodeBody(req.message, 'release').map, ctx.maxEnvelopeBytes);
  const staged = async (sha256: string): Promise<Uint8Array | undefined> => {
    const blob = ctx.staging.get(sha256);
    return blob === undefined ? undefined : ctx.staging.read(blob);
  };
  const { release, uploaded } = await publishEnvelope(ctx.store, body.envelope, {
    trust: ctx.trust,
    publisher,
    urgency: body.urgency,
    images: staged,
    limits: ctx.limits,
    ...(body.downtimeS === undefined ? {} : { downtimeS: body.downtimeS }),
  });
  for (const sha256 of uploaded) await ctx.staging.remove(sha256);
  ctx.onEvent?.({ type: 'published', release });
  try {
    await ctx.targeting.released(release);
  } catch (e) {
    // The release is published; devices that miss their command get it when they next register.
    ctx.onEvent?.({ type: 'error', error: e, during: `targeting release ${release.sequence} of class ${release.classId}` });
  }
  return bodyResponse(Code.CREATED, { class: release.classId, seq: release.sequence, envelope: release.envelopeSha256 }, format);
}
