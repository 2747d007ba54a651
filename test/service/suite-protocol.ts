/**
 * The update service's protocol end to end over loopback (plain CoAP and
 * coaps), on every backend: registration, reports, the three modes'
 * commands, Observe on manifests and commands, publishing.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Code, ContentFormat, OptionNumber } from '../../src/codec/numbers.js';
import { encodeUint, pathOptions } from '../../src/codec/options.js';
import { CLASS } from './fixtures.js';
import type { Harness } from './harness.js';
import { answerOf, call, observer, etagOf, eventually, publishOver, reg, signedRelease, startService, type Service } from './service-harness.js';

export function protocolSuite(make: () => Harness): void {
  describe('update service protocol', () => {
    let h: Harness;
    let svc: Service;
    beforeEach(async () => {
      h = make();
      svc = await startService(h);
    });
    afterEach(async () => {
      await svc.close();
      await h.cleanup();
    });

    it('registers over plain CoAP (open registration) and over coaps as the identity, answering in the request format', async () => {
      const plain = await svc.plain();
      const a = await call(plain, Code.POST, '/d/lab-7', reg('client', 3), { json: true });
      expect(a.code).toBe(Code.CHANGED);
      expect(a.map).toEqual({ rseq: 0, cmd: '/d/lab-7/c', manifest: `/m/${CLASS}`, poll: 900 });
      const secure = await svc.secure('dev1');
      const b = await call(secure, Code.POST, '/d', reg('server', 1));
      expect(b.code).toBe(Code.CHANGED);
      expect(b.map.cmd).toBe('/d/dev-1/c');
      expect((await svc.server.store.getDevice('dev-1'))!.identity).toBe('dev-1');
      expect((await svc.server.store.getDevice('lab-7'))!.mode).toBe('client');
    });

    it('publishes over coaps and devices in server mode get op:update, negotiated ones an offer', async () => {
      const plain = await svc.plain();
      await call(plain, Code.POST, '/d/s-1', reg('server'));
      await call(plain, Code.POST, '/d/n-1', reg('negotiated'));
      await call(plain, Code.POST, '/d/c-1', reg('client'));
      const pub = await svc.secure('publisher');
      const r = signedRelease(2);
      const { blob, release } = await publishOver(pub, r, { downtime: 30 });
      expect(blob.code).toBe(Code.CREATED);
      expect(release.code).toBe(Code.CREATED);
      expect(release.map).toEqual({ class: CLASS, seq: 2, envelope: r.envelopeHex });
      const update = await eventually(async () => {
        const c = await call(plain, Code.GET, '/d/s-1/c');
        return c.map.op === 'update' ? c : undefined;
      }, 5000, 'op update');
      expect(update.map).toMatchObject({ op: 'update', class: CLASS, seq: 2, manifest: `/fw/sha256/${r.envelopeHex}`, urgency: 'normal', downtime: 30 });
      const offer = await call(plain, Code.GET, '/d/n-1/c');
      expect(offer.map).toMatchObject({ op: 'offer', seq: 2, downtime: 30 });
      expect((await call(plain, Code.GET, '/d/c-1/c')).map).toEqual({ op: 'none' });
      // The envelope and image are served from the store.
      const env = await plain.request({ code: Code.GET, options: pathOptions(`/m/${CLASS}`) });
      expect(env.code).toBe(Code.CONTENT);
      const img = await plain.request({ code: Code.GET, options: [...pathOptions(`/fw/sha256/${r.imageHex}`), { number: OptionNumber.BLOCK2, value: encodeUint(0) }] });
      expect(img.code).toBe(Code.CONTENT);
      expect(Buffer.from(img.payload)).toEqual(Buffer.from(r.image.subarray(0, 16)));
    });

    it('a negotiated device defers; the server triggers the update no earlier than its own clock says', async () => {
      const plain = await svc.plain();
      await call(plain, Code.POST, '/d/n-2', reg('negotiated'));
      await publishOver(await svc.secure('publisher'), signedRelease(2));
      const offer = await call(plain, Code.GET, '/d/n-2/c');
      expect(offer.map.op).toBe('offer');
      const answered = Date.now();
      const deferred = await call(plain, Code.POST, '/d/n-2/c', { id: offer.map.id, answer: 'defer', defer: 1 });
      expect(deferred.code).toBe(Code.CHANGED);
      expect(deferred.map).toEqual({ op: 'none' });
      const update = await eventually(async () => ((await call(plain, Code.GET, '/d/n-2/c')).map.op === 'update' ? Date.now() : undefined), 5000, 'deferred update');
      expect(update - answered).toBeGreaterThanOrEqual(1000);
      const cmd = await svc.server.store.getCommand(offer.map.id as number);
      expect(cmd).toMatchObject({ state: 'triggered', deferS: 1 });
      expect(cmd!.notBefore! - cmd!.answeredAt!).toBe(1000);
      // The offer is no longer open for an answer.
      expect((await call(plain, Code.POST, '/d/n-2/c', { id: offer.map.id, answer: 'now' })).code).toBe(Code.CONFLICT);
    });

    it('reports move the device and close its command; a replay is 4.09 and writes nothing', async () => {
      const plain = await svc.plain();
      await call(plain, Code.POST, '/d/s-2', reg('server'));
      await publishOver(await svc.secure('publisher'), signedRelease(2));
      await eventually(async () => ((await call(plain, Code.GET, '/d/s-2/c')).map.op === 'update' ? true : undefined), 5000);
      expect((await call(plain, Code.POST, '/d/s-2/r', { rseq: 1, state: 'downloading', seq: 2, done: 1024, total: 5000 })).code).toBe(Code.CHANGED);
      expect((await call(plain, Code.POST, '/d/s-2/r', { rseq: 2, state: 'confirmed', seq: 2, iseq: 2 })).code).toBe(Code.CHANGED);
      const replay = await call(plain, Code.POST, '/d/s-2/r', { rseq: 2, state: 'failed', seq: 2, detail: 'x' });
      expect(replay.code).toBe(Code.CONFLICT);
      const device = (await svc.server.store.getDevice('s-2'))!;
      expect(device).toMatchObject({ state: 'confirmed', installedSeq: 2, reportSeq: 2 });
      expect((await svc.server.store.listHistory('s-2')).map((e) => e.transition)).toEqual(['confirmed', 'downloading', 'registered']);
      expect((await call(plain, Code.GET, '/d/s-2/c')).map).toEqual({ op: 'none' });
    });

    it('Observe on /m/<class> fires when a release is published, and on /d/<id>/c when its command changes', async () => {
      const plain = await svc.plain();
      await call(plain, Code.POST, '/d/s-3', reg('server'));
      // Nothing published yet: the 4.04 ends that observation (RFC 7641 §4.2); observe again after the first release.
      const none = await plain.request({ code: Code.GET, options: [{ number: OptionNumber.OBSERVE, value: encodeUint(0) }, ...pathOptions(`/m/${CLASS}`)] });
      expect(none.code).toBe(Code.NOT_FOUND);
      const pub = await svc.secure('publisher');
      await publishOver(pub, signedRelease(2));
      const notes = observer(plain);
      notes.observe(`/m/${CLASS}`);
      notes.observe('/d/s-3/c');
      await eventually(() => (notes.of(`/m/${CLASS}`).length >= 1 && notes.of('/d/s-3/c').some((a) => a.map.op === 'update') ? true : undefined), 5000, 'first answers');
      const r3 = signedRelease(3);
      await publishOver(pub, r3);
      // A notification of the new envelope (block 0: its ETag is the new envelope's digest prefix), and the new command.
      await eventually(() => (notes.of(`/m/${CLASS}`).some((a) => etagOf(a) === r3.envelopeHex.slice(0, 16)) ? true : undefined), 5000, '/m notification');
      await eventually(() => (notes.of('/d/s-3/c').some((a) => a.map.op === 'update' && a.map.seq === 3) ? true : undefined), 5000, '/d/<id>/c notification');
      notes.close();
    });

    it('JSON clients get JSON; Accept picks the format; other formats are 4.15 / 4.06', async () => {
      const plain = await svc.plain();
      await call(plain, Code.POST, '/d/j-1', reg('client'), { json: true });
      const cbor = await plain.request({ code: Code.GET, options: pathOptions('/d/j-1/c') });
      expect(cbor.options.find((o) => o.number === OptionNumber.CONTENT_FORMAT)?.value).toEqual(encodeUint(ContentFormat.CBOR));
      const json = await plain.request({ code: Code.GET, options: [...pathOptions('/d/j-1/c'), { number: OptionNumber.ACCEPT, value: encodeUint(ContentFormat.JSON) }] });
      expect(new TextDecoder().decode(json.payload)).toBe('{"op":"none"}');
      const xml = await plain.request({ code: Code.POST, options: [...pathOptions('/d/j-1/r'), { number: OptionNumber.CONTENT_FORMAT, value: encodeUint(41) }], payload: new Uint8Array([0x3c]) });
      expect(xml.code).toBe(Code.UNSUPPORTED_CONTENT_FORMAT);
      const text = await plain.request({ code: Code.GET, options: [...pathOptions('/d/j-1/c'), { number: OptionNumber.ACCEPT, value: encodeUint(0) }] });
      expect(text.code).toBe(Code.NOT_ACCEPTABLE);
    });
  });
}
