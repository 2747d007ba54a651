/** The agent's transition function alone: pure, no network, no clock. */
import { describe, expect, it } from 'vitest';
import { agentStep, initialModel, type AgentContext, type AgentInput, type AgentModel } from '../../src/device/agent-machine.js';
import type { AgentMode, RegistrationAnswer } from '../../src/device/agent-wire.js';

const ctx: AgentContext = { backoffMs: (n) => 1000 * n, pollMs: (a) => (a?.poll ?? 60) * 1000 };
const answer: RegistrationAnswer = { id: 'd1', rseq: 0, cmd: '/d/d1/c', manifest: '/m/aa', poll: 30 };

function run(mode: AgentMode, inputs: AgentInput[], start?: AgentModel): { model: AgentModel; effects: string[] } {
  let model = start ?? initialModel(mode);
  const effects: string[] = [];
  for (const i of inputs) {
    const r = agentStep(model, i, ctx);
    model = r.model;
    effects.push(...r.effects.map((e) => (e.type === 'wait' ? `wait ${e.ms}` : e.type === 'observe' ? `observe ${e.path}` : e.type === 'report' ? `report ${e.report.state}` : e.type)));
  }
  return { model, effects };
}

const up: AgentInput[] = [{ type: 'powered', installed: 2 }, { type: 'registered', answer }];
const update = (id: number, seq: number): AgentInput => ({ type: 'observed', value: { kind: 'command', command: { op: 'update', id, seq, manifest: '/fw/sha256/ab', urgency: 'normal', downtime: undefined, answered: false } } });
const offer = (id: number, answered = false): AgentInput => ({ type: 'observed', value: { kind: 'command', command: { op: 'offer', id, seq: 3, manifest: '/fw/sha256/ab', urgency: 'normal', downtime: 5, answered } } });

describe('agent machine', () => {
  it('powers on, registers, observes the command resource (server mode) or the class manifest (client mode)', () => {
    expect(run('server', up)).toMatchObject({ model: { state: 'watching', installed: 2 }, effects: ['register', 'observe /d/d1/c'] });
    expect(run('client', up).effects).toEqual(['register', 'observe /m/aa']);
  });

  it('server mode: op:update of a newer sequence starts an update; one it already runs is confirmed once', () => {
    expect(run('server', [...up, update(7, 3)]).effects.at(-1)).toBe('update');
    const r = run('server', [...up, update(7, 2), update(7, 2)]);
    expect(r.effects.slice(2)).toEqual(['report confirmed']);
    expect(r.model.state).toBe('watching');
  });

  it('negotiated: an offer is answered once; an offer the server marks answered is not answered again; then op:update', () => {
    const r = run('negotiated', [...up, offer(4), { type: 'answered', commandId: 4 }, offer(4), update(4, 3)]);
    expect(r.effects.slice(2)).toEqual(['negotiate', 'update']);
    expect(run('negotiated', [...up, offer(5, true)]).model.state).toBe('waiting');
  });

  it('what arrives while updating is kept and acted on afterwards', () => {
    const target = { seq: 3, manifest: '/fw/sha256/ab', commandId: 7 };
    const r = run('server', [...up, update(7, 3), update(8, 4), { type: 'updated', target, outcome: { kind: 'done', installed: 3, gaveUp: false } }]);
    expect(r.effects.slice(2)).toEqual(['update', 'update']);
    expect(r.model.installed).toBe(3);
  });

  it('a refused target is not tried again in this run', () => {
    const target = { seq: 3, manifest: '/fw/sha256/ab', commandId: 7 };
    const r = run('server', [...up, update(7, 3), { type: 'updated', target, outcome: { kind: 'done', installed: 2, gaveUp: true } }, update(7, 3)]);
    expect(r.effects.slice(2)).toEqual(['update']);
    expect(r.model.givenUp).toEqual(['c:7']);
  });

  it('a transient update failure backs off and registers again (the journal resumes)', () => {
    const target = { seq: 3, manifest: '/fw/sha256/ab', commandId: 7 };
    const r = run('server', [...up, update(7, 3), { type: 'updated', target, outcome: { kind: 'retry', error: 'TIMEOUT' } }, { type: 'timer' }]);
    expect(r.effects.slice(2)).toEqual(['update', 'wait 1000', 'register']);
  });

  it('losing the server: exponential back-off between registrations, reset once registered', () => {
    const r = run('server', [...up, { type: 'lost', reason: 'unreachable' }, { type: 'timer' }, { type: 'register-failed', error: 'TIMEOUT' }, { type: 'timer' }, { type: 'register-failed', error: 'TIMEOUT' }]);
    expect(r.effects.slice(2)).toEqual(['wait 1000', 'register', 'wait 2000', 'register', 'wait 3000']);
    const back = run('server', [{ type: 'timer' }, { type: 'registered', answer }], r.model);
    expect(back.model).toMatchObject({ state: 'watching', failures: 0 });
  });

  it('client mode, no release yet (4.04): looks again after the poll interval, without registering again', () => {
    expect(run('client', [...up, { type: 'lost', reason: 'not-found' }, { type: 'timer' }]).effects.slice(2)).toEqual(['wait 30000', 'observe /m/aa']);
  });

  it('the observation lost during an update: registers again when the update ends', () => {
    const target = { seq: 3, manifest: '/fw/sha256/ab', commandId: 7 };
    const r = run('server', [...up, update(7, 3), { type: 'lost', reason: 'unreachable' }, { type: 'updated', target, outcome: { kind: 'done', installed: 3, gaveUp: false } }]);
    expect(r.effects.slice(2)).toEqual(['update', 'register']);
  });

  it('server mode ignores manifests; a stopped agent ignores everything', () => {
    const manifest: AgentInput = { type: 'observed', value: { kind: 'manifest', seq: 9, manifest: '/fw/sha256/cd' } };
    expect(run('server', [...up, manifest]).effects).toHaveLength(2);
    expect(run('client', [...up, manifest]).effects.at(-1)).toBe('update');
    expect(run('client', [...up, { type: 'stop' }, manifest]).effects.slice(2)).toEqual(['unobserve']);
  });
});
