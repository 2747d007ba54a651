/** The agent's bodies on the wire, and its report queue (counter, replays, coalescing, bounds). */
import { Encoder } from 'cbor-x';
import { describe, expect, it } from 'vitest';
import type { CoapMessage } from '../../src/codec/message.js';
import { Code, ContentFormat, MessageType, OptionNumber } from '../../src/codec/numbers.js';
import { encodeUint } from '../../src/codec/options.js';
import type { RequestSpec } from '../../src/core/request.js';
import { Reporter } from '../../src/device/agent-reports.js';
import { decodeCommand, decodeRegistrationAnswer, reportBody } from '../../src/device/agent-wire.js';
import { decodeCbor } from '../../src/suit/cbor.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { flush } from '../../src/testing/mem-transport.js';

const enc = new Encoder({ mapsAsObjects: true, useRecords: false });
function msg(payload: Uint8Array, cf?: number, code = Code.CHANGED): CoapMessage {
  const options = cf === undefined ? [] : [{ number: OptionNumber.CONTENT_FORMAT, value: encodeUint(cf) }];
  return { type: MessageType.ACK, code, messageId: 1, token: new Uint8Array(0), options, payload };
}
const cbor = (v: unknown): CoapMessage => msg(enc.encode(v), ContentFormat.CBOR);
const json = (v: unknown, cf: number | undefined = ContentFormat.JSON): CoapMessage => msg(new TextEncoder().encode(JSON.stringify(v)), cf);

describe('agent wire format', () => {
  it('reads a registration answer in CBOR or JSON, the id from cmd when the server leaves it out; ignores unknown keys', () => {
    const a = { id: 'dev-1', rseq: 9, cmd: '/d/dev-1/c', manifest: '/m/ab', poll: 30, future: [1, 2] };
    expect(decodeRegistrationAnswer(cbor(a))).toEqual({ id: 'dev-1', rseq: 9, cmd: '/d/dev-1/c', manifest: '/m/ab', poll: 30 });
    expect(decodeRegistrationAnswer(json({ ...a, id: undefined }, undefined)).id).toBe('dev-1');
    expect(decodeRegistrationAnswer(cbor({ ...a, id: undefined, cmd: '/d/a%3Ab/c' })).id).toBe('a:b');
  });

  it('refuses wrong types, paths that are not paths, tags, oversized bodies and other formats with labelled errors', () => {
    const good = { rseq: 1, cmd: '/d/x/c', manifest: '/m/ab', poll: 30 };
    expect(() => decodeRegistrationAnswer(cbor({ ...good, rseq: -1 }))).toThrow(/registration answer: "rseq" must be an unsigned integer/);
    expect(() => decodeRegistrationAnswer(cbor({ ...good, manifest: 'm/ab' }))).toThrow(/"manifest" must be a path/);
    expect(() => decodeRegistrationAnswer(cbor({ ...good, poll: 0 }))).toThrow(/poll/);
    expect(() => decodeRegistrationAnswer(cbor({ ...good, cmd: '/x' }))).toThrow(/no "id"/);
    expect(() => decodeRegistrationAnswer(msg(Uint8Array.from([0xd2, 0x80]), ContentFormat.CBOR))).toThrow(/tag at byte 0/);
    expect(() => decodeRegistrationAnswer(msg(new Uint8Array(5000), ContentFormat.CBOR))).toThrow(/exceeds/);
    expect(() => decodeRegistrationAnswer(msg(Uint8Array.from([1]), 0))).toThrow(/Content-Format 0/);
    expect(() => decodeRegistrationAnswer(json([1]))).toThrow(/expected a map/);
    expect(() => decodeRegistrationAnswer(msg(new TextEncoder().encode('{"a":'), ContentFormat.JSON))).toThrow(/not valid JSON/);
  });

  it('reads commands; an unknown op or urgency is refused', () => {
    expect(decodeCommand(cbor({ op: 'none' }))).toEqual({ op: 'none' });
    const c = { op: 'offer', id: 3, class: 'ab', seq: 4, manifest: '/fw/sha256/cd', urgency: 'critical', downtime: 20, answered: 'defer' };
    expect(decodeCommand(cbor(c))).toEqual({ op: 'offer', id: 3, seq: 4, manifest: '/fw/sha256/cd', urgency: 'critical', downtime: 20, answered: true });
    expect(decodeCommand(json({ ...c, op: 'update', answered: undefined, downtime: undefined }))).toMatchObject({ op: 'update', answered: false, downtime: undefined });
    expect(() => decodeCommand(cbor({ ...c, op: 'reboot' }))).toThrow(/"op" must be/);
    expect(() => decodeCommand(cbor({ ...c, urgency: 'soon' }))).toThrow(/urgency/);
    expect(() => decodeCommand(cbor({ ...c, seq: 'x' }))).toThrow(/"seq"/);
  });

  it('leaves absent members out of a report and bounds its detail', () => {
    const body = reportBody(5, { state: 'failed', seq: 2, detail: 'x'.repeat(500) });
    expect(Object.keys(body).filter((k) => (body as Record<string, unknown>)[k] !== undefined)).toEqual(['rseq', 'state', 'seq', 'detail']);
    expect((body as { detail: string }).detail).toHaveLength(200);
  });
});

/** A fake server answering reports with the codes of `script` (then 2.04), recording bodies. */
function fakeServer(script: (number | 'timeout')[]) {
  const seen: { rseq: number; state: string; done?: number }[] = [];
  const request = async (spec: RequestSpec): Promise<CoapMessage> => {
    const body = decodeCbor(spec.payload!, { maxDepth: 4, maxArrayLength: 16, maxItems: 64 }, 'test') as Map<string, unknown>;
    seen.push({ rseq: Number(body.get('rseq')), state: String(body.get('state')), done: body.get('done') as number | undefined });
    const next = script.shift() ?? Code.CHANGED;
    if (next === 'timeout') throw Object.assign(new Error('timeout'), { code: 'TIMEOUT' });
    return msg(new Uint8Array(0), undefined, next);
  };
  return { seen, request };
}

describe('reporter', () => {
  it('continues the counter from the registration, keeps it for a resend, counts a 4.09 as delivered', async () => {
    const rt = new FakeRuntime(1);
    const srv = fakeServer(['timeout', Code.CONFLICT]);
    const r = new Reporter({ request: srv.request, runtime: rt });
    r.enqueue({ state: 'downloading', seq: 1, done: 0, total: 10 });
    r.enqueue({ state: 'downloaded', seq: 1 });
    await flush();
    expect(srv.seen).toHaveLength(0); // not registered yet: nothing is sent
    r.registered('d1', 40);
    for (let i = 0; i < 100 && r.pending > 0; i++) {
      await flush();
      rt.advance(1000);
    }
    expect(srv.seen.map((s) => s.rseq)).toEqual([41, 41, 42]);
    expect(r.delivered).toBe(2);
  });

  it('a newer progress report replaces one not yet sent; transitions are never dropped; the queue is bounded', async () => {
    const rt = new FakeRuntime(2);
    const srv = fakeServer([]);
    const r = new Reporter({ request: srv.request, runtime: rt, maxQueued: 4 });
    for (let d = 0; d <= 10; d++) r.enqueue({ state: 'downloading', seq: 1, done: d, total: 10 });
    r.enqueue({ state: 'downloaded', seq: 1 });
    r.enqueue({ state: 'installing', seq: 1 });
    r.enqueue({ state: 'installed', seq: 1 });
    r.enqueue({ state: 'confirmed', seq: 1 });
    expect(r.pending).toBe(4);
    r.registered('d1', 0);
    await r.drained();
    expect(srv.seen.map((s) => s.state)).toEqual(['downloaded', 'installing', 'installed', 'confirmed']);
  });

  it('4.04 holds the reports until the device registers again, then renumbers above the server', async () => {
    const rt = new FakeRuntime(3);
    const srv = fakeServer([Code.NOT_FOUND]);
    const outcomes: string[] = [];
    const r = new Reporter({ request: srv.request, runtime: rt, onOutcome: (o) => outcomes.push(o.kind) });
    r.registered('d1', 5);
    r.enqueue({ state: 'confirmed', seq: 1 });
    await flush();
    expect(outcomes).toEqual(['unknown-device']);
    r.registered('d1', 10); // the server's counter is past ours (another copy of the device reported)
    await r.drained();
    expect(srv.seen.map((s) => s.rseq)).toEqual([6, 11]);
  });
});
