/**
 * `startUpdateServer`: the file server of src/server plus the update
 * service on a {@link Store}: device registry and reports, the command
 * resources of the server-initiated and negotiated modes with their
 * scheduler, releases observable per class, publishing over Block1. Several
 * such servers on one PostgreSQL database serve one fleet: every state lives
 * in the database, every change reaches every server (Store.subscribe), and
 * Block2 stays stateless.
 */
import { Block1Receiver } from '../blockwise/block1.js';
import { Block1Stream } from '../blockwise/block1-stream.js';
import { szxForSize } from '../codec/block.js';
import type { Link } from '../codec/link-format.js';
import { CoapfwError } from '../errors.js';
import { ContentFormat } from '../codec/numbers.js';
import type { CoapRequest } from '../messaging/endpoint.js';
import type { BodyServing } from '../server/file-server.js';
import type { Resource } from '../server/router.js';
import { firstResolver } from '../server/router.js';
import { startFileServer, type FileServer, type FileServerOptions, type PeerIdentity } from '../server/serve.js';
import type { StatusOptions } from '../server/status.js';
import type { SuitLimits } from '../suit/limits.js';
import type { TrustPolicy } from '../suit/trust.js';
import { checkTrustPolicy } from '../suit/trust.js';
import type { PskRoles } from '../transport/dtls/psk-store.js';
import { systemRuntime } from '../transport/runtime.js';
import type { AccessPolicy } from './access.js';
import { commandKey, commandResource, deviceResolver, type DeviceContext, type ServiceEvent } from './device-resources.js';
import { legacyForward } from './legacy.js';
import { ClassTargeting, CommandScheduler, type SchedulerOptions, type Targeting } from './modes.js';
import type { WallClock } from './model.js';
import { openStore, type OpenStoreOptions } from './open.js';
import { publishResolver } from './publish-resources.js';
import { blobResolver, manifestResource, ReleaseCache, releaseResolver } from './releases.js';
import { BlobStaging, type StagingOptions } from './staging.js';
import type { Store, StoreChange } from './store.js';
import { checkInt } from './validate.js';

/** Body limits of the service's resources; every one has a safe default. */
export interface ServiceLimits {
  /** Largest registration, report or answer body. Default 2048 bytes. */
  readonly maxBodyBytes?: number;
  /** Largest envelope a release may carry. Default 256 KiB (DEFAULT_SUIT_LIMITS.maxEnvelopeBytes). */
  readonly maxEnvelopeBytes?: number;
  /** Blob uploads in progress at once. Default 8. */
  readonly maxUploads?: number;
  /** A blob upload (or a Block1 body) is dropped when no block came for this long. Default 120 s. */
  readonly uploadIdleMs?: number;
  /** SUIT decoding limits for published envelopes. */
  readonly suit?: Partial<SuitLimits>;
}

/** Options of {@link startUpdateServer}: the file server's, and the service's. */
export interface UpdateServerOptions extends Omit<FileServerOptions, 'fallback'> {
  /** The database: a store you opened (left open on close), or ... */
  readonly store?: Store;
  /** ... a URL for openStore (`sqlite:PATH`, `postgres://...`), opened, migrated and closed with the server. */
  readonly db?: string;
  readonly storeOptions?: Omit<OpenStoreOptions, 'clock'>;
  /** The server's wall clock (ms since the epoch): history timestamps and command times. Default `Date.now`. */
  readonly clock?: WallClock;
  /** Keys releases must be signed by (`serve --trust`). Without: publishing is refused. */
  readonly releaseTrust?: TrustPolicy;
  /** coaps identities that may publish, besides those with the `publisher` role in the PSK file. */
  readonly publishers?: readonly string[];
  /**
   * Take device traffic over plain CoAP, unauthenticated (labs). Default: on
   * when the server has no coaps listener, off when it has one.
   */
  readonly openRegistration?: boolean;
  /** Seconds between polls a device makes when its Observe registration is lost. Default 900. */
  readonly pollS?: number;
  /** Urgency window and scheduler tick. */
  readonly modes?: Omit<SchedulerOptions, 'onError'>;
  /** Who gets a command for a release (default: every device of its class in server or negotiated mode). */
  readonly targeting?: (store: Store) => Targeting;
  readonly staging?: StagingOptions;
  readonly limits?: ServiceLimits;
  /** Tell a request's caller: default the transports' (coaps PSK identity). For your own transports. */
  readonly identify?: (req: CoapRequest) => PeerIdentity;
  /** What the service did (registrations, reports, releases, background errors). */
  readonly onEvent?: (e: ServiceEvent) => void;
}

/** A running update server. */
export interface UpdateServer extends FileServer {
  readonly store: Store;
  readonly staging: BlobStaging;
  readonly scheduler: CommandScheduler;
  readonly targeting: Targeting;
  /** Whether devices are taken over plain CoAP. */
  readonly openRegistration: boolean;
  /** Blocks served from the store's blobs (`/fw/sha256/...` of published images); `files` counts the directory's. */
  readonly blobs: { readonly blocks: number };
}

/** The service's resources for `/.well-known/core`. */
const SERVICE_LINKS: readonly Link[] = [
  { target: '/d', attributes: { rt: 'coapfw.register', ct: `${ContentFormat.CBOR} ${ContentFormat.JSON}` } },
  { target: '/pub/release', attributes: { rt: 'coapfw.publish', ct: `${ContentFormat.CBOR} ${ContentFormat.JSON}` } },
];

/**
 * Start a file server with the update service on it.
 *
 * @example
 * const server = await startUpdateServer({ dir: './images', db: 'sqlite:./fleet.db', releaseTrust: { anchors: [{ name: 'oem', publicKey }] } });
 */
export async function startUpdateServer(options: UpdateServerOptions): Promise<UpdateServer> {
  const runtime = options.runtime ?? systemRuntime;
  const clock = options.clock ?? Date.now;
  if (options.releaseTrust !== undefined) checkTrustPolicy(options.releaseTrust);
  const pollS = checkInt(options.pollS ?? 900, 'pollS', 1, 86_400);
  const limits = options.limits ?? {};
  const maxEnvelopeBytes = checkInt(limits.maxEnvelopeBytes ?? 256 * 1024, 'maxEnvelopeBytes', 64);
  const store = options.store ?? (options.db !== undefined ? await openStore(options.db, { ...options.storeOptions, clock }) : undefined);
  if (store === undefined) throw new CoapfwError('INVALID_ARGUMENT', 'update server: give a store or a db URL');
  const owned = options.store === undefined;
  let staging: BlobStaging;
  try {
    staging = await BlobStaging.open(runtime, options.staging);
  } catch (e) {
    if (owned) await store.close();
    throw e;
  }
  const openRegistration = options.openRegistration ?? options.secure === undefined;
  const publishers = new Set(options.publishers ?? []);
  const roles = options.secure?.psk as Partial<PskRoles> | undefined;
  const policy: AccessPolicy = {
    openRegistration,
    isPublisher: (identity) => publishers.has(identity) || roles?.hasRole?.(identity, 'publisher') === true,
    isGateway: (identity) => roles?.hasRole?.(identity, 'gateway') === true,
  };
  let server: FileServer | undefined;
  // Requests arrive only once startFileServer has returned (its last step is synchronous), so
  // `server` is set by then; until it is, nobody counts as authenticated.
  const identify = options.identify ?? ((req: CoapRequest): PeerIdentity => server?.identify(req) ?? { secure: false });
  const targeting = options.targeting?.(store) ?? new ClassTargeting(store, clock, () => runtime.random(), options.modes);
  const releases = new ReleaseCache(store);
  const observed = new ObservedKeys(10_000);
  let observeWrap: (key: string, r: Resource) => Resource = (_k, r) => r;
  const observeKey = (key: string, r: Resource): Resource => (observed.add(key), observeWrap(key, r));
  const onEvent = options.onEvent;
  const idleMs = limits.uploadIdleMs ?? 120_000;
  const bodies = new Block1Receiver({ runtime, maxBodySize: checkInt(limits.maxBodyBytes ?? 2048, 'maxBodyBytes', 64), idleTimeoutMs: idleMs });
  const releaseBodies = new Block1Receiver({ runtime, maxBodySize: maxEnvelopeBytes + 1024, maxAssemblies: 8, maxPerPeer: 2, idleTimeoutMs: idleMs });
  const uploads = new Block1Stream({ runtime, maxBodySize: staging.maxBlobBytes, maxUploads: checkInt(limits.maxUploads ?? 8, 'maxUploads', 1), idleTimeoutMs: idleMs });
  const devices: DeviceContext = { store, releases, policy, targeting, identify, pollS, bodies, observe: observeKey, ...(onEvent ? { onEvent } : {}) };
  const maxSzx = szxForSize(options.maxBlockSize ?? 1024);
  const service = firstResolver(
    ...(options.resources ? [options.resources] : []),
    deviceResolver(devices),
    releaseResolver(releases, { maxSzx, observe: observeKey }),
    publishResolver({ store, staging, policy, identify, trust: options.releaseTrust, targeting, uploads, releaseBodies, maxEnvelopeBytes, limits: limits.suit, ...(onEvent ? { onEvent } : {}) }),
  );
  const status: Omit<StatusOptions, 'runtime'> = { ...options.status, forward: legacyForward(store, policy, identify) };
  const blobs = { blocks: 0 };
  try {
    // Blobs are served as files are (Q-Block2 when asked), by the file server made here.
    const body = (): BodyServing | undefined => server?.body;
    server = await startFileServer({ ...options, resources: service, fallback: blobResolver(releases, { maxSzx, stats: blobs, body }), status, links: [...(options.links ?? []), ...SERVICE_LINKS] });
  } catch (e) {
    await staging.close();
    if (owned) await store.close();
    throw e;
  }
  const fileServer = server;
  observeWrap = (key, r) => fileServer.observe.wrap(key, r);
  const onChange = (change: StoreChange): void => {
    switch (change.kind) {
      case 'release':
        releases.invalidate(change.classId);
        fileServer.observe.changed(`m/${change.classId}`, manifestResource(releases, change.classId, { maxSzx }));
        return;
      case 'command':
        fileServer.observe.changed(commandKey(change.deviceId), commandResource(devices, change.deviceId));
        return;
      case 'resync':
        // Changes may have been missed: tell every observer the current state.
        releases.invalidate();
        for (const key of observed.keys()) {
          const m = /^m\/(.+)$/.exec(key)?.[1];
          const d = /^d\/(.+)\/c$/.exec(key)?.[1];
          if (m !== undefined) fileServer.observe.changed(key, manifestResource(releases, m, { maxSzx }));
          else if (d !== undefined) fileServer.observe.changed(key, commandResource(devices, d));
        }
        return;
      default:
        return;
    }
  };
  const unsubscribe = store.subscribe(onChange);
  const scheduler = new CommandScheduler(store, runtime, clock, { ...options.modes, onError: (e) => onEvent?.({ type: 'error', error: e, during: 'scheduler tick' }) });
  scheduler.start();
  return {
    ...fileServer,
    blobs,
    store,
    staging,
    scheduler,
    targeting,
    openRegistration,
    async close() {
      await scheduler.stop();
      unsubscribe();
      uploads.close();
      await fileServer.close();
      await staging.close();
      if (owned) await store.close();
    },
  };
}

/** Observe keys seen lately (bounded, oldest forgotten first): what a `resync` re-notifies. */
class ObservedKeys {
  private readonly set = new Set<string>();
  constructor(private readonly max: number) {}
  add(key: string): void {
    this.set.delete(key);
    this.set.add(key);
    if (this.set.size > this.max) this.set.delete(this.set.values().next().value!);
  }
  keys(): string[] {
    return [...this.set];
  }
}

