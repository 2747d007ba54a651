/**
 * Records of the server's side of an update: commands to one device (the
 * server-initiated and negotiated modes) and rollouts in waves (issue 11).
 * The command state machine lives here, in one transition function, so that
 * every store applies the same rules.
 */
import { CoapfwError } from '../errors.js';

/**
 * `update`: server-initiated mode, the server tells the device to update when
 * `notBefore` has passed. `announce`: negotiated mode, the server announces
 * the update and the device answers "now" or "defer N seconds".
 */
export type CommandKind = 'update' | 'announce';

/**
 * - `pending`: announced, waiting for the device's answer (announce only);
 * - `scheduled`: to be triggered once the server's clock reaches `notBefore`;
 * - `triggered`: the device was told to update now;
 * - `done` / `failed`: the device confirmed / failed or reverted;
 * - `cancelled`: by the operator; `superseded`: a newer command replaced it.
 */
export type CommandState = 'pending' | 'scheduled' | 'triggered' | 'done' | 'failed' | 'cancelled' | 'superseded';
/** States in which a command is still open (at most one open command per device). */
export const OPEN_COMMAND_STATES: readonly CommandState[] = ['pending', 'scheduled', 'triggered'];

/** What can happen to a command. Deferrals are relative seconds: the device has no clock. */
export type CommandEvent =
  | { readonly type: 'answer'; readonly deferS: number }
  | { readonly type: 'trigger' }
  | { readonly type: 'done' }
  | { readonly type: 'failed' }
  | { readonly type: 'cancel' }
  | { readonly type: 'supersede' };

/** A command to one device. */
export interface DeviceCommand {
  readonly id: number;
  readonly deviceId: string;
  readonly classId: string;
  readonly sequence: number;
  readonly kind: CommandKind;
  readonly state: CommandState;
  readonly createdAt: number;
  /** Server wall clock from which it may be triggered; undefined while pending an answer. */
  readonly notBefore: number | undefined;
  readonly answeredAt: number | undefined;
  /** The deferral the device asked for, in seconds (negotiated mode). */
  readonly deferS: number | undefined;
  readonly finishedAt: number | undefined;
  readonly detail: string | undefined;
  readonly rolloutId: number | undefined;
}

/** A new command; `notBefore` defaults to now for `update` and is unset for `announce`. */
export interface NewCommand {
  readonly deviceId: string;
  readonly sequence: number;
  readonly kind: CommandKind;
  readonly notBefore?: number;
  readonly rolloutId?: number;
}

/** The part of a command an event changes. */
export interface CommandStep {
  readonly state: CommandState;
  readonly notBefore?: number;
  readonly answeredAt?: number;
  readonly deferS?: number;
  readonly finishedAt?: number;
}

/**
 * The command state machine: the new state for `event` in `state` at server
 * time `now`, or CONFLICT when the event does not apply there.
 */
export function stepCommand(kind: CommandKind, state: CommandState, event: CommandEvent, now: number): CommandStep {
  const refuse = (): never => {
    throw new CoapfwError('CONFLICT', `command: cannot ${event.type} a ${kind} command that is ${state}`);
  };
  switch (event.type) {
    case 'answer':
      // Negotiated mode: the device may answer until the server has triggered the update,
      // and may change its mind (a second answer replaces the first).
      if (kind !== 'announce' || (state !== 'pending' && state !== 'scheduled')) return refuse();
      return { state: 'scheduled', notBefore: now + event.deferS * 1000, answeredAt: now, deferS: event.deferS };
    case 'trigger':
      if (state !== 'scheduled') return refuse();
      return { state: 'triggered' };
    case 'done':
    case 'failed':
      if (!OPEN_COMMAND_STATES.includes(state)) return refuse();
      return { state: event.type, finishedAt: now };
    case 'cancel':
      if (!OPEN_COMMAND_STATES.includes(state)) return refuse();
      return { state: 'cancelled', finishedAt: now };
    case 'supersede':
      if (!OPEN_COMMAND_STATES.includes(state)) return refuse();
      return { state: 'superseded', finishedAt: now };
    default: {
      const never: never = event;
      return never;
    }
  }
}

/** Rollout states; `running` and `paused` are active (one active rollout per class and group). */
export type RolloutState = 'running' | 'paused' | 'completed' | 'aborted';
/** Every rollout state. */
export const ROLLOUT_STATES: readonly RolloutState[] = ['running', 'paused', 'completed', 'aborted'];
/** Wave states. */
export type WaveState = 'pending' | 'running' | 'succeeded' | 'failed';
/** Every wave state. */
export const WAVE_STATES: readonly WaveState[] = ['pending', 'running', 'succeeded', 'failed'];
/** Where a targeted device is in a rollout (follows its reports for the rollout's release). */
export type TargetState = 'pending' | 'notified' | 'updating' | 'confirmed' | 'failed' | 'reverted';
/** Every target state. */
export const TARGET_STATES: readonly TargetState[] = ['pending', 'notified', 'updating', 'confirmed', 'failed', 'reverted'];

/** How one wave is sized and when it counts as a success or a failure. */
export interface WaveSpec {
  /** A number of devices, or a percentage (1..100) of the targeted devices. */
  readonly size: { readonly count: number } | { readonly percent: number };
  /** Confirmed devices (per mille of the wave) needed to start the next wave. */
  readonly successPermille: number;
  /** Failed plus reverted devices (per mille) past which the rollout pauses. */
  readonly failurePermille: number;
  /** Seconds the wave may take to reach its success threshold. */
  readonly timeLimitS: number;
}

/** A wave as stored. */
export interface Wave extends WaveSpec {
  readonly index: number;
  readonly state: WaveState;
  readonly startedAt: number | undefined;
  readonly finishedAt: number | undefined;
}

/** A rollout of one release to a class, or to one group of it. */
export interface Rollout {
  readonly id: number;
  readonly classId: string;
  readonly sequence: number;
  readonly group: string | undefined;
  readonly state: RolloutState;
  readonly currentWave: number;
  readonly pauseReason: string | undefined;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly waves: readonly Wave[];
}

/** A new rollout: it starts `running` with every wave `pending`. */
export interface NewRollout {
  readonly classId: string;
  readonly sequence: number;
  readonly group?: string;
  readonly waves: readonly WaveSpec[];
  readonly createdBy: string;
}

/** A compare-and-set change of a rollout: applied only while it is in `expected`. */
export interface RolloutPatch {
  readonly state?: RolloutState;
  readonly currentWave?: number;
  /** Set with a pause; cleared (null) on resume. */
  readonly pauseReason?: string | null;
}

/** Per-wave counts of targeted devices, computed from the targets (never a stale counter). */
export interface WaveCounts {
  readonly wave: number;
  readonly targeted: number;
  readonly byState: Readonly<Record<TargetState, number>>;
}

const ROLLOUT_MOVES: Readonly<Record<RolloutState, readonly RolloutState[]>> = {
  running: ['running', 'paused', 'completed', 'aborted'],
  paused: ['paused', 'running', 'completed', 'aborted'],
  // Terminal: a finished rollout is history; a new one is created instead.
  completed: [],
  aborted: [],
};

const WAVE_MOVES: Readonly<Record<WaveState, readonly WaveState[]>> = {
  pending: ['running'],
  running: ['succeeded', 'failed'],
  // A failed wave may be retried once the operator resumes the rollout.
  failed: ['running'],
  succeeded: [],
};

/** True when a rollout may go from `from` to `to` (staying is allowed while active). */
export function canMoveRollout(from: RolloutState, to: RolloutState): boolean {
  return ROLLOUT_MOVES[from].includes(to);
}

/** True when a wave may go from `from` to `to`. */
export function canMoveWave(from: WaveState, to: WaveState): boolean {
  return WAVE_MOVES[from].includes(to);
}
