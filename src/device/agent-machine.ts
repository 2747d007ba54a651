/**
 * The device agent's decisions, as one pure transition function over named
 * states (STYLE.md §2): {@link agentStep} takes the model and an event (a
 * registration answered, a notification, an update that ended, a timer) and
 * returns the next model and the effects to carry out (register, observe,
 * answer an offer, update, report, wait). agent.ts carries them out and feeds
 * their results back as events; tests drive this file with no network.
 *
 * - off → registering (after power-on) → watching: the observation is up.
 * - watching → updating when the mode says so: client mode, a verified
 *   manifest of the class with a newer sequence; server mode, `op: update`;
 *   negotiated mode, an offer is answered first (negotiating → waiting) and
 *   the server turns it into `op: update` when the device's time has come.
 * - Anything that loses the server (no answer, RST, 4.04 for the device, a
 *   transient update failure) → retrying, then registering again after a
 *   jittered exponential back-off (monotonic timers only: devices have no
 *   clock).
 */
import type { AgentCommand, AgentMode, AgentReport, CommandOf, CommandUrgency, RegistrationAnswer } from './agent-wire.js';

/** The agent's states. */
export type AgentStateName = 'off' | 'registering' | 'retrying' | 'watching' | 'negotiating' | 'waiting' | 'updating' | 'stopped';

/** An update the agent starts. */
export interface UpdateTarget {
  readonly seq: number;
  /** Path of the envelope on the server (`/fw/sha256/<hex>`: content-addressed, so it cannot change under us). */
  readonly manifest: string;
  /** The command it obeys (server and negotiated modes). */
  readonly commandId?: number;
  /** Seconds the device will be unavailable, from the command. */
  readonly downtime?: number;
  readonly urgency?: CommandUrgency;
}

/** A fresh representation of what the device observes. */
export type Observed =
  | { readonly kind: 'command'; readonly command: AgentCommand }
  /** The class's newest envelope, verified (signature, vendor, class). */
  | { readonly kind: 'manifest'; readonly seq: number; readonly manifest: string };

/** How an update run ended, as the machine needs to know it. */
export type UpdateOutcome =
  /** Finished (confirmed, reverted or refused, and reported); `gaveUp`: not confirmed, do not try this target again. */
  | { readonly kind: 'done'; readonly installed: number; readonly gaveUp: boolean }
  /** A transient failure (the server went away): the journal resumes it after a back-off. */
  | { readonly kind: 'retry'; readonly error: string }
  /** Client mode: the device is not idle; look again later. */
  | { readonly kind: 'busy' };

/** Inputs of {@link agentStep}. */
export type AgentInput =
  | { readonly type: 'powered'; readonly installed: number }
  | { readonly type: 'registered'; readonly answer: RegistrationAnswer }
  | { readonly type: 'register-failed'; readonly error: string }
  | { readonly type: 'observed'; readonly value: Observed }
  /** The observation ended: `not-found` (4.04), `unreachable` (timeout, RST, other error codes). */
  | { readonly type: 'lost'; readonly reason: 'not-found' | 'unreachable' }
  | { readonly type: 'answered'; readonly commandId: number }
  /** `closed`: the server says the command is no longer open (4.09, 4.04). */
  | { readonly type: 'answer-failed'; readonly commandId: number; readonly closed: boolean }
  | { readonly type: 'updated'; readonly target: UpdateTarget; readonly outcome: UpdateOutcome }
  | { readonly type: 'timer' }
  | { readonly type: 'stop' };

/** What the machine asks agent.ts to do. */
export type AgentEffect =
  | { readonly type: 'register' }
  | { readonly type: 'observe'; readonly path: string; readonly refreshMs: number }
  | { readonly type: 'unobserve' }
  | { readonly type: 'negotiate'; readonly command: CommandOf<'offer'> }
  | { readonly type: 'update'; readonly target: UpdateTarget }
  | { readonly type: 'report'; readonly report: AgentReport }
  /** Fire `timer` after `ms` (replacing a timer set before). */
  | { readonly type: 'wait'; readonly ms: number };

/** What the retry timer does when it fires. */
export type RetryAction = 'register' | 'observe' | 'reconsider';

/** The agent's model: everything the decisions depend on. */
export interface AgentModel {
  readonly state: AgentStateName;
  readonly mode: AgentMode;
  /** Installed (confirmed) sequence number. */
  readonly installed: number;
  readonly answer: RegistrationAnswer | undefined;
  /** Consecutive failures, for the back-off. */
  readonly failures: number;
  readonly retry: RetryAction;
  /** The newest value observed while busy, considered when the agent is free again. */
  readonly latest: Observed | undefined;
  /** The observation was lost during an update: register again when it ends. */
  readonly lostWhileUpdating: boolean;
  /** Offers answered in this run (bounded). */
  readonly answered: readonly number[];
  /** Targets given up in this run (refused, reverted), by `targetKey` (bounded). */
  readonly givenUp: readonly string[];
  /** Commands whose confirmation was reported in this run (bounded). */
  readonly confirmed: readonly number[];
}

/** What the transition function needs from outside: the back-off and jitter draws. */
export interface AgentContext {
  /** Delay before retry `n` (1-based): jittered exponential back-off. */
  readonly backoffMs: (n: number) => number;
  /** Wait before looking at the manifest again when there is none yet, or the device was busy. */
  readonly pollMs: (answer: RegistrationAnswer | undefined) => number;
}

/** The result of one transition. */
export interface AgentStep {
  readonly model: AgentModel;
  readonly effects: readonly AgentEffect[];
}

/** Ids remembered per list. */
const REMEMBER = 16;

/** The model of an agent that is off. */
export function initialModel(mode: AgentMode): AgentModel {
  return { state: 'off', mode, installed: 0, answer: undefined, failures: 0, retry: 'register', latest: undefined, lostWhileUpdating: false, answered: [], givenUp: [], confirmed: [] };
}

/** How a target is named in `givenUp`. */
export function targetKey(t: UpdateTarget): string {
  return t.commandId !== undefined ? `c:${t.commandId}` : `m:${t.manifest}`;
}

function remember<T>(list: readonly T[], v: T): readonly T[] {
  return list.includes(v) ? list : [...list, v].slice(-REMEMBER);
}

const none = (model: AgentModel): AgentStep => ({ model, effects: [] });

/** The transition function. */
export function agentStep(m: AgentModel, input: AgentInput, ctx: AgentContext): AgentStep {
  if (m.state === 'stopped') return none(m);
  switch (input.type) {
    case 'stop':
      return { model: { ...m, state: 'stopped' }, effects: [{ type: 'unobserve' }] };
    case 'powered':
      return { model: { ...m, state: 'registering', installed: input.installed }, effects: [{ type: 'register' }] };
    case 'registered': {
      if (m.state !== 'registering') return none(m);
      const a = input.answer;
      const path = m.mode === 'client' ? a.manifest : a.cmd;
      return { model: { ...m, state: 'watching', answer: a, failures: 0, latest: undefined }, effects: [{ type: 'observe', path, refreshMs: a.poll * 1000 }] };
    }
    case 'register-failed':
      return m.state === 'registering' ? retry(m, ctx, 'register') : none(m);
    case 'timer':
      return onTimer(m);
    case 'observed':
      if (m.state === 'updating' || m.state === 'negotiating' || busyWait(m)) return none({ ...m, latest: input.value });
      if (m.state !== 'watching' && m.state !== 'waiting') return none(m);
      return consider(m, input.value);
    case 'lost':
      return onLost(m, input.reason, ctx);
    case 'answered':
      if (m.state !== 'negotiating') return none(m);
      return reconsider({ ...m, state: 'waiting', answered: remember(m.answered, input.commandId) });
    case 'answer-failed':
      if (m.state !== 'negotiating') return none(m);
      // A closed command: the server moved on (cancelled, superseded); a new state will be notified.
      return input.closed ? reconsider({ ...m, state: 'watching' }) : retry(m, ctx, 'register');
    case 'updated':
      return m.state === 'updating' ? onUpdated(m, input.target, input.outcome, ctx) : none(m);
    default: {
      const never: never = input;
      return never;
    }
  }
}

function retry(m: AgentModel, ctx: AgentContext, action: RetryAction, ms?: number): AgentStep {
  const failures = action === 'register' ? m.failures + 1 : m.failures;
  return { model: { ...m, state: 'retrying', retry: action, failures }, effects: [{ type: 'wait', ms: ms ?? ctx.backoffMs(failures) }] };
}

/** Waiting for the device to become idle (client mode): the observation stays up meanwhile. */
function busyWait(m: AgentModel): boolean {
  return m.state === 'retrying' && m.retry === 'reconsider';
}

function onTimer(m: AgentModel): AgentStep {
  if (m.state !== 'retrying') return none(m);
  switch (m.retry) {
    case 'register':
      return { model: { ...m, state: 'registering' }, effects: [{ type: 'register' }] };
    case 'observe': {
      const a = m.answer!;
      return { model: { ...m, state: 'watching' }, effects: [{ type: 'observe', path: m.mode === 'client' ? a.manifest : a.cmd, refreshMs: a.poll * 1000 }] };
    }
    case 'reconsider':
      return m.latest === undefined ? none({ ...m, state: 'watching' }) : consider({ ...m, state: 'watching', latest: undefined }, m.latest);
    default: {
      const never: never = m.retry;
      return never;
    }
  }
}

function onLost(m: AgentModel, reason: 'not-found' | 'unreachable', ctx: AgentContext): AgentStep {
  if (m.state === 'updating') return none({ ...m, lostWhileUpdating: true });
  if (m.state !== 'watching' && m.state !== 'waiting' && m.state !== 'negotiating' && !busyWait(m)) return none(m);
  // Client mode, 4.04 on the class manifest: no release yet. Look again after the poll interval.
  if (reason === 'not-found' && m.mode === 'client') return retry(m, ctx, 'observe', ctx.pollMs(m.answer));
  // The server forgot the device (4.04), or is gone: register again.
  return retry(m, ctx, 'register');
}

/** Act on the newest value saved while busy, if any. */
function reconsider(m: AgentModel): AgentStep {
  return m.latest === undefined ? none(m) : consider({ ...m, latest: undefined }, m.latest);
}

/** What a fresh representation means in the current mode. */
function consider(m: AgentModel, v: Observed): AgentStep {
  if (v.kind === 'manifest') {
    const target: UpdateTarget = { seq: v.seq, manifest: v.manifest };
    if (m.mode !== 'client' || v.seq <= m.installed || m.givenUp.includes(targetKey(target))) return none({ ...m, state: 'watching' });
    return update(m, target);
  }
  const c = v.command;
  if (c.op === 'none') return none({ ...m, state: 'watching' });
  if (c.op === 'offer') {
    if (c.answered || m.answered.includes(c.id)) return none({ ...m, state: 'waiting' });
    return { model: { ...m, state: 'negotiating' }, effects: [{ type: 'negotiate', command: c }] };
  }
  if (c.seq <= m.installed) {
    // Already there (killed after confirming, before the report landed): say so once, which closes the command.
    if (m.confirmed.includes(c.id)) return none({ ...m, state: 'watching' });
    const report: AgentReport = c.seq === m.installed ? { state: 'confirmed', seq: c.seq, iseq: m.installed } : { state: 'failed', seq: c.seq, detail: `ROLLBACK: sequence ${c.seq} is not newer than the installed ${m.installed}` };
    return { model: { ...m, state: 'watching', confirmed: remember(m.confirmed, c.id) }, effects: [{ type: 'report', report }] };
  }
  const target: UpdateTarget = { seq: c.seq, manifest: c.manifest, commandId: c.id, downtime: c.downtime, urgency: c.urgency };
  if (m.givenUp.includes(targetKey(target))) return none({ ...m, state: 'watching' });
  return update(m, target);
}

function update(m: AgentModel, target: UpdateTarget): AgentStep {
  return { model: { ...m, state: 'updating', lostWhileUpdating: false }, effects: [{ type: 'update', target }] };
}

function onUpdated(m: AgentModel, target: UpdateTarget, o: UpdateOutcome, ctx: AgentContext): AgentStep {
  switch (o.kind) {
    case 'retry':
      // The server went away (or answered 5.xx): register again after a back-off; the journal resumes the download.
      return retry({ ...m, lostWhileUpdating: false }, ctx, 'register');
    case 'busy':
      return retry({ ...m, latest: m.latest ?? { kind: 'manifest', seq: target.seq, manifest: target.manifest } }, ctx, 'reconsider', ctx.pollMs(m.answer));
    case 'done': {
      const key = targetKey(target);
      const next: AgentModel = {
        ...m,
        state: 'watching',
        installed: o.installed,
        failures: 0,
        givenUp: o.gaveUp ? remember(m.givenUp, key) : m.givenUp,
        confirmed: !o.gaveUp && target.commandId !== undefined ? remember(m.confirmed, target.commandId) : m.confirmed,
      };
      if (m.lostWhileUpdating) return { model: { ...next, state: 'registering', lostWhileUpdating: false, latest: undefined }, effects: [{ type: 'register' }] };
      return reconsider(next);
    }
    default: {
      const never: never = o;
      return never;
    }
  }
}
