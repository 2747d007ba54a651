/**
 * The server's side of the three update modes (draft-ietf-suit-update-management;
 * issue 10), chosen per device at registration:
 *
 * - client-initiated: the server does nothing; the device observes its
 *   class's `/m/<class>` and decides itself;
 * - server-initiated: the server opens an `update` command whose `notBefore`
 *   the release's urgency sets (critical: now; normal: now plus a random
 *   point of the spreading window; configuration: now, then triggered only
 *   while the device is idle); the scheduler triggers it when due and the
 *   device, observing `/d/<id>/c`, starts;
 * - negotiated: the server opens an `announce` command (the device sees an
 *   offer at once, with urgency and downtime); the device's "now" or "defer N
 *   s" becomes a scheduled command at server time now + N.
 *
 * Who gets a command is a {@link Targeting} policy: today every device of the
 * release's class ({@link ClassTargeting}); the rollout engine of issue 11
 * replaces it with waves without touching the resources or the scheduler.
 */
import type { Runtime, TimerHandle } from '../core/runtime.js';
import { isCoapfwError } from '../errors.js';
import { OPEN_COMMAND_STATES, type DeviceCommand } from './fleet.js';
import type { Device, DeviceState, Release, Urgency, WallClock } from './model.js';
import type { Store } from './store.js';
import { checkInt } from './validate.js';

/** Decides which devices a release goes to, and opens their commands. */
export interface Targeting {
  /** A release was published (on this server): open the commands it implies. */
  released(release: Release): Promise<void>;
  /** A device (re)registered: open the command it should have and lacks, or cancel one its new mode does not use. */
  registered(device: Device): Promise<void>;
}

/** When the server tells devices of each urgency. */
export interface UrgencyOptions {
  /** Normal releases are spread uniformly over this many seconds after publishing. Default 3600. */
  readonly normalWindowS?: number;
  /** A configuration update waiting for a busy device is looked at again after this many seconds. Default 60. */
  readonly idleRetryS?: number;
}

/** States in which a device is doing nothing an update would disturb (configuration updates wait for them). */
export const IDLE_STATES: readonly DeviceState[] = ['registered', 'idle', 'confirmed', 'failed', 'reverted'];

/** The server time from which a device in server-initiated mode is told to update. */
export function notBeforeFor(urgency: Urgency, now: number, windowMs: number, random: () => number): number {
  switch (urgency) {
    case 'critical':
    case 'configuration':
      return now;
    case 'normal':
      return now + Math.floor(random() * windowMs);
    default: {
      const never: never = urgency;
      return never;
    }
  }
}

/** A release goes to every device of its class (and vendor) in server-initiated or negotiated mode. */
export class ClassTargeting implements Targeting {
  private readonly windowMs: number;

  constructor(
    private readonly store: Store,
    private readonly clock: WallClock,
    private readonly random: () => number,
    options: UrgencyOptions = {},
  ) {
    this.windowMs = checkInt(options.normalWindowS ?? 3600, 'normalWindowS') * 1000;
  }

  async released(release: Release): Promise<void> {
    for (let after: string | undefined; ; ) {
      const page = await this.store.listDevices({ classId: release.classId, limit: 500, ...(after === undefined ? {} : { after }) });
      for (const device of page) await this.target(device, release);
      if (page.length < 500) return;
      after = page[page.length - 1]!.id;
    }
  }

  async registered(device: Device): Promise<void> {
    if (device.mode === 'client') {
      const open = await this.store.openCommand(device.id);
      // Told to manage itself: a command it will never look at would only block the next one.
      if (open !== undefined) await ignoreConflict(this.store.stepCommand(open.id, { type: 'cancel' }, 'device switched to client-initiated mode'));
      return;
    }
    const latest = await this.store.latestRelease(device.classId);
    if (latest === undefined) return;
    // Once per device and release: a failed or cancelled command is the operator's to retry, not a reboot's.
    const earlier = await this.store.listCommands(device.id, { limit: 20 });
    if (earlier.some((c) => c.sequence === latest.sequence && !OPEN_COMMAND_STATES.includes(c.state) && c.state !== 'superseded')) return;
    await this.target(device, latest);
  }

  /** Open the device's command for `release` when it needs one. */
  private async target(device: Device, release: Release): Promise<void> {
    if (device.mode === 'client' || device.vendorId !== release.vendorId || device.installedSeq >= release.sequence) return;
    const kind = kindFor(device);
    // Idempotent: a second targeting of the same release (a retry, another publisher's tool) keeps the open command.
    const open = await this.store.openCommand(device.id);
    if (open !== undefined && open.sequence >= release.sequence && open.kind === kind) return;
    const notBefore = kind === 'update' ? { notBefore: notBeforeFor(release.urgency, this.clock(), this.windowMs, this.random) } : {};
    // CONFLICT: another server opened one for this device at the same moment; theirs stands.
    await ignoreConflict(this.store.createCommand({ deviceId: device.id, sequence: release.sequence, kind, ...notBefore }));
  }
}

/** The command that tells a device of a release: `update` for server-initiated, `announce` for negotiated. */
export function kindFor(device: Device): DeviceCommand['kind'] {
  return device.mode === 'server' ? 'update' : 'announce';
}

async function ignoreConflict<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (e) {
    if (isCoapfwError(e, 'CONFLICT')) return undefined;
    throw e;
  }
}

/** Options of the {@link CommandScheduler}. */
export interface SchedulerOptions extends UrgencyOptions {
  /** Look for due commands this often. Default 1000 ms. */
  readonly tickMs?: number;
  /** Due commands handled per tick. Default 200. */
  readonly batch?: number;
  /** Called with errors of a tick (the database failed); the next tick runs anyway. */
  readonly onError?: (e: unknown) => void;
}

/**
 * Triggers due commands: every server sharing a database runs one, and the
 * trigger is a compare-and-set on the command's state, so of several servers
 * ticking at once exactly one triggers each command (the others get
 * CONFLICT, which is the expected outcome). Ticks never overlap: the next is
 * armed when one finishes.
 */
export class CommandScheduler {
  private readonly tickMs: number;
  private readonly batch: number;
  private readonly idleRetryMs: number;
  private timer: TimerHandle | undefined;
  private running: Promise<number> | undefined;
  private stopped = true;
  /** Commands this scheduler triggered (for tests and logs). */
  triggered = 0;

  constructor(
    private readonly store: Store,
    private readonly runtime: Runtime,
    private readonly clock: WallClock,
    private readonly options: SchedulerOptions = {},
  ) {
    this.tickMs = checkInt(options.tickMs ?? 1000, 'tickMs', 1);
    this.batch = checkInt(options.batch ?? 200, 'batch', 1);
    this.idleRetryMs = checkInt(options.idleRetryS ?? 60, 'idleRetryS', 1) * 1000;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.arm();
  }

  /** Stop ticking; resolves when a tick in progress has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.runtime.clearTimer(this.timer);
    await this.running?.catch(() => undefined); // its errors went to onError
  }

  /** Handle the commands due now; resolves with how many this call triggered. */
  async tick(): Promise<number> {
    const due = await this.store.dueCommands(this.batch);
    let n = 0;
    for (const command of due) if (await this.handle(command)) n++;
    this.triggered += n;
    return n;
  }

  private async handle(command: DeviceCommand): Promise<boolean> {
    const release = await this.store.getRelease(command.classId, command.sequence);
    if (release?.urgency === 'configuration') {
      const device = await this.store.getDevice(command.deviceId);
      if (device !== undefined && !IDLE_STATES.includes(device.state)) {
        await ignoreConflict(this.store.postponeCommand(command.id, this.clock() + this.idleRetryMs));
        return false;
      }
    }
    return (await ignoreConflict(this.store.stepCommand(command.id, { type: 'trigger' }))) !== undefined;
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = this.runtime.setTimer(this.tickMs, () => {
      this.running = this.tick();
      this.running
        .catch((e: unknown) => this.options.onError?.(e))
        .finally(() => {
          this.running = undefined;
          this.arm();
        });
    });
  }
}
