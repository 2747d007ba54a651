/**
 * The device agent: a device's whole life with the update service, as one
 * object a gateway author embeds (and `coapfw device run` runs). It powers
 * on (device.ts: boot, confirm a pending test image), registers, keeps its
 * Observe registration alive (messaging/observation.ts), follows its update mode
 * (agent-machine.ts decides), updates with the power-safe updater
 * (agent-update.ts over `updateDevice`) and reports every transition
 * (agent-reports.ts). It keeps nothing of its own on flash: after a kill the
 * journal resumes the download, the server's registration answer the report
 * counter, and the command resource what the device was told to do.
 *
 * @example
 * const client = await openClient('coap://fw.example');
 * const agent = new DeviceAgent({ flash, layout, server: 'coap://fw.example', link: agentLink(client), trust, vendorId, classId, mode: 'server', deviceId: 'dev-1' });
 * await agent.start();
 * // ... later
 * await agent.stop();
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import type { CoapMessage } from '../codec/message.js';
import { codeToString } from '../codec/numbers.js';
import type { TimerHandle } from '../core/runtime.js';
import { CoapfwError, isCoapfwError } from '../errors.js';
import { backoffDelay, retryAfterDelay } from '../messaging/retry.js';
import { agentStep, initialModel, type AgentContext, type AgentEffect, type AgentInput, type AgentModel, type AgentStateName, type UpdateTarget } from './agent-machine.js';
import { Observation, type ObserveLoss } from '../messaging/observation.js';
import { checkAgentOptions, type AgentEvent, type DeviceAgentOptions } from './agent-options.js';
import { Reporter, type ReportOutcome } from './agent-reports.js';
import { runAgentUpdate } from './agent-update.js';
import { answerOffer, classManifest, errorText, register } from './agent-requests.js';
import { decodeCommand, type AgentCommand, type CommandOf } from './agent-wire.js';
import { powerOn } from './device.js';

const hex = bytesToHex;

/** A device following the update service; see the module comment. */
export class DeviceAgent {
  private model: AgentModel;
  private readonly ctx: AgentContext;
  private readonly reporter: Reporter;
  private readonly abort = new AbortController();
  private readonly inputs: AgentInput[] = [];
  private stepping = false;
  private observation: Observation | undefined;
  private timer: TimerHandle | undefined;
  private running = '';
  private deviceIdSeen: string | undefined;
  private busy: Promise<unknown> = Promise.resolve();
  private settle!: { resolve: () => void; reject: (e: unknown) => void };
  /** Resolves when the agent was stopped, rejects with the error that ended it (`POWER_CUT`: the flash lost power). */
  readonly done: Promise<void>;

  constructor(private readonly o: DeviceAgentOptions) {
    checkAgentOptions(o);
    this.model = initialModel(o.mode);
    const random = (): number => o.link.runtime.random();
    this.ctx = {
      backoffMs: (n) => backoffDelay(n, o.backoff ?? { baseMs: 1000, maxMs: 60_000 }, random),
      pollMs: (a) => (a?.poll ?? 60) * 1000 * (1 + 0.25 * random()),
    };
    this.reporter = new Reporter({ request: o.link.request, runtime: o.link.runtime, backoff: o.backoff, maxQueued: o.maxQueuedReports, signal: this.abort.signal, onOutcome: (x) => this.onReport(x) });
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.done.catch(() => undefined); // observed through `done` by whoever cares; never an unhandled rejection
  }

  /** The agent's state. */
  get state(): AgentStateName {
    return this.model.state;
  }
  /** Installed (confirmed) sequence number. */
  get installedSequence(): number {
    return this.model.installed;
  }
  /** The id the server knows the device by, once registered. */
  get deviceId(): string | undefined {
    return this.deviceIdSeen ?? this.o.deviceId;
  }
  /** The counter of the last report sent. */
  get reportCounter(): number {
    return this.reporter.lastCounter;
  }

  /** Power on and start following the server. Rejects when the power-on fails (then the agent is stopped). */
  async start(): Promise<void> {
    if (this.model.state !== 'off') throw new CoapfwError('INVALID_ARGUMENT', 'device agent: start() was already called');
    try {
      await this.powerOn();
    } catch (e) {
      this.die(e);
      throw e;
    }
  }

  /** Stop: the observation, timers and reports end, an update in progress is aborted (its journal resumes it). */
  async stop(): Promise<void> {
    this.feed({ type: 'stop' });
    this.abort.abort();
    await this.busy.catch(() => undefined); // how the aborted update ended does not matter any more
    this.shutdown();
    this.settle.resolve();
  }

  /** Resolves when the reports queued so far were delivered (tests; a gateway before it powers a device down). */
  reportsDelivered(): Promise<void> {
    return this.reporter.drained();
  }

  private async powerOn(): Promise<void> {
    const { flash, layout, selfTest } = this.o;
    let p = await powerOn(flash, layout, { selfTest });
    // A test image that failed its self-test: the device resets and the bootloader reverts it.
    if (p.outcome === 'unconfirmed') p = await powerOn(flash, layout);
    this.running = hex(p.boot.image.digest);
    this.emit({ type: 'powered', outcome: p.outcome, installed: p.installedSequence, running: this.running });
    // Settled by this power-on (a kill after the install): the registry hears it as soon as the device is registered.
    if (p.outcome === 'confirmed') this.reporter.enqueue({ state: 'confirmed', seq: p.installedSequence, iseq: p.installedSequence, digest: this.running });
    if (p.outcome === 'reverted') this.reporter.enqueue({ state: 'reverted', detail: 'the new image did not pass its self-test: reverted', iseq: p.installedSequence, digest: this.running });
    this.feed({ type: 'powered', installed: p.installedSequence });
  }

  private emit(e: AgentEvent): void {
    this.o.onEvent?.(e);
  }

  /** Run inputs through the machine one at a time, in order. */
  private feed(input: AgentInput): void {
    this.inputs.push(input);
    if (this.stepping) return;
    this.stepping = true;
    try {
      for (let next = this.inputs.shift(); next !== undefined; next = this.inputs.shift()) {
        const before = this.model.state;
        const { model, effects } = agentStep(this.model, next, this.ctx);
        this.model = model;
        if (model.state !== before) this.emit({ type: 'state', state: model.state });
        for (const e of effects) this.apply(e);
      }
    } finally {
      this.stepping = false;
    }
  }

  private apply(e: AgentEffect): void {
    switch (e.type) {
      case 'register':
        return this.track(this.register());
      case 'observe':
        return this.observe(e.path, e.refreshMs);
      case 'unobserve':
        this.observation?.close();
        this.observation = undefined;
        return;
      case 'negotiate':
        return this.track(this.negotiate(e.command));
      case 'update':
        return this.track((this.busy = this.update(e.target)));
      case 'report':
        return this.reporter.enqueue(e.report);
      case 'wait': {
        const rt = this.o.link.runtime;
        rt.clearTimer(this.timer);
        this.emit({ type: 'waiting', ms: e.ms });
        this.timer = rt.setTimer(e.ms, () => this.feed({ type: 'timer' }));
        return;
      }
      default: {
        const never: never = e;
        return never;
      }
    }
  }

  /** An effect's promise: a failure no outcome covers (a power cut, a bug) ends the agent. */
  private track(p: Promise<unknown>): void {
    p.catch((err: unknown) => this.die(err));
  }

  private die(err: unknown): void {
    if (this.model.state === 'stopped') return;
    this.model = { ...this.model, state: 'stopped' };
    this.abort.abort();
    this.shutdown();
    this.emit({ type: 'stopped', error: errorText(err) });
    this.settle.reject(err);
  }

  private shutdown(): void {
    this.observation?.close();
    this.observation = undefined;
    this.o.link.runtime.clearTimer(this.timer);
    this.reporter.close();
  }

  private async register(): Promise<void> {
    let answer;
    try {
      answer = await register(this.o, this.model.installed, this.running, this.abort.signal);
    } catch (e) {
      if (isCoapfwError(e, 'ABORTED')) return;
      this.emit({ type: 'register-failed', error: errorText(e) });
      return this.feed({ type: 'register-failed', error: errorText(e) });
    }
    this.deviceIdSeen = answer.id;
    this.reporter.registered(answer.id, answer.rseq);
    this.emit({ type: 'registered', id: answer.id, rseq: answer.rseq, poll: answer.poll });
    this.feed({ type: 'registered', answer });
  }

  private observe(path: string, refreshMs: number): void {
    this.observation?.close();
    const obs = new Observation({
      runtime: this.o.link.runtime,
      openStream: this.o.link.openStream,
      path,
      refreshMs,
      onValue: (msg) => this.onNotification(obs, path, msg),
      onLost: (loss) => this.onLost(obs, loss),
    });
    this.observation = obs;
    this.emit({ type: 'observing', path });
    obs.start();
  }

  private onLost(obs: Observation, loss: ObserveLoss): void {
    if (this.observation !== obs) return;
    this.observation = undefined;
    const notFound = loss.kind === 'refused' && loss.code === 0x84; // 4.04
    this.emit({ type: 'observe-lost', reason: loss.kind === 'refused' ? `response ${codeToString(loss.code)}` : loss.error.code });
    // A "try again after" (5.03 + Max-Age) is waited out as the server asks, spread like a fetch's (retryAfterDelay).
    const after = loss.kind === 'refused' && loss.maxAge !== undefined ? retryAfterDelay(loss.maxAge, this.o.backoff ?? {}, () => this.o.link.runtime.random()) : undefined;
    this.feed({ type: 'lost', reason: notFound ? 'not-found' : 'unreachable', ...(after === undefined ? {} : { retryAfterMs: after }) });
  }

  private onNotification(obs: Observation, path: string, msg: CoapMessage): void {
    if (this.observation !== obs) return;
    if (this.o.mode !== 'client') {
      let command: AgentCommand;
      try {
        command = decodeCommand(msg);
      } catch (e) {
        return this.emit({ type: 'ignored', path, error: errorText(e) });
      }
      this.emit({ type: 'command', command });
      return this.feed({ type: 'observed', value: { kind: 'command', command } });
    }
    this.track(this.onManifest(obs, path, msg));
  }

  private async onManifest(obs: Observation, path: string, msg: CoapMessage): Promise<void> {
    let m;
    try {
      m = await classManifest(this.o, path, msg, this.abort.signal);
    } catch (e) {
      if (isCoapfwError(e, 'ABORTED')) return;
      return this.emit({ type: 'ignored', path, error: errorText(e) });
    }
    if (this.observation !== obs) return;
    this.emit({ type: 'manifest', ...m });
    this.feed({ type: 'observed', value: { kind: 'manifest', ...m } });
  }

  private async negotiate(c: CommandOf<'offer'>): Promise<void> {
    const answer = (await this.o.answerOffer?.({ id: c.id, seq: c.seq, urgency: c.urgency, downtime: c.downtime })) ?? { answer: 'now' as const };
    let code: number | undefined;
    try {
      code = await answerOffer(this.o, this.model.answer!.cmd, c.id, answer, this.abort.signal);
    } catch {
      return; // aborted: the agent is stopping
    }
    this.emit({ type: 'answered', commandId: c.id, answer, code });
    if (code !== undefined && code >> 5 === 2) return this.feed({ type: 'answered', commandId: c.id });
    // 4.09: no longer open; 4.04: gone. Anything else (no answer, 5.xx): the server is in trouble, register again.
    this.feed({ type: 'answer-failed', commandId: c.id, closed: code === 0x89 || code === 0x84 });
  }

  private async update(target: UpdateTarget): Promise<void> {
    const o = this.o;
    if (o.mode === 'client' && o.isIdle !== undefined && !(await o.isIdle())) {
      return this.feed({ type: 'updated', target, outcome: { kind: 'busy' } });
    }
    // The draft's denial-of-service requirement: the device is told how long it will be gone before it starts.
    if (target.downtime !== undefined && target.downtime > 0) this.emit({ type: 'downtime', seq: target.seq, seconds: target.downtime });
    this.emit({ type: 'update-start', target });
    const r = await runAgentUpdate(
      {
        update: { ...o.update, flash: o.flash, layout: o.layout, request: o.link.request, openStream: o.link.openStream, runtime: o.link.runtime, trust: o.trust, vendorId: o.vendorId, classId: o.classId, selfTest: o.selfTest, signal: this.abort.signal },
        server: o.server,
        progressStepPercent: o.progressStepPercent ?? 10,
        report: (x) => this.reporter.enqueue(x),
        onEvent: (event) => this.emit({ type: 'update', event }),
      },
      target,
    );
    if (r.after !== undefined) this.running = hex(r.after.boot.image.digest);
    this.emit({ type: 'update-end', target, outcome: r.outcome, status: r.status });
    this.feed({ type: 'updated', target, outcome: r.outcome });
  }

  private onReport(x: ReportOutcome): void {
    this.emit({ type: 'report', outcome: x });
    // The server forgot the device: register again (the reports wait for it).
    if (x.kind === 'unknown-device') this.feed({ type: 'lost', reason: 'not-found' });
  }
}
