/**
 * Bad input to the update service, on every backend: each gets a clear CoAP
 * error, nothing half-written becomes visible, and the database stays
 * consistent (issue 10, item 6).
 */
import { readdirSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sendBlock1 } from '../../src/blockwise/block1-send.js';
import { encodeBlock } from '../../src/codec/block.js';
import { Code, ContentFormat, OptionNumber } from '../../src/codec/numbers.js';
import { encodeUint, pathOptions } from '../../src/codec/options.js';
import { systemRuntime } from '../../src/transport/runtime.js';
import { bytes, CLASS } from './fixtures.js';
import type { Harness } from './harness.js';
import { answerOf, call, eventually, publishOver, reg, signedRelease, startService, STRANGER, type Service } from './service-harness.js';

const raw = (path: string, payload: Uint8Array, cf = ContentFormat.CBOR) => ({
  code: Code.POST,
  options: [...pathOptions(path), { number: OptionNumber.CONTENT_FORMAT, value: encodeUint(cf) }],
  payload,
});

export function badInputSuite(make: () => Harness): void {
  describe('update service: bad input', () => {
    let h: Harness;
    let svc: Service;
    beforeEach(async () => {
      h = make();
      svc = await startService(h, { limits: { uploadIdleMs: 400 } });
    });
    afterEach(async () => {
      await svc.close();
      await h.cleanup();
    });

    it('malformed registrations: 4.00 with a one-line reason naming the field, nothing written', async () => {
      const plain = await svc.plain();
      const cases: [Record<string, unknown>, RegExp][] = [
        [{ ...reg('client'), class: undefined }, /"class"/],
        [{ ...reg('client'), vendor: 'not-hex' }, /"vendor"/],
        [{ ...reg('client'), mode: 'auto' }, /"mode": expected one of client, server, negotiated/],
        [{ ...reg('client'), seq: -1 }, /"seq"/],
        [{ ...reg('client'), seq: '3' }, /"seq"/],
        [{ ...reg('client'), digest: 'abc' }, /"digest"/],
        [{ ...reg('client'), group: '' }, /"group"/],
      ];
      for (const [body, reason] of cases) {
        const a = await call(plain, Code.POST, '/d/bad-1', Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined)), { json: true });
        expect(a.code, JSON.stringify(body)).toBe(Code.BAD_REQUEST);
        expect(a.text).toMatch(reason);
      }
      const garbage = [Uint8Array.of(0x82, 0x01, 0x02), Uint8Array.of(0xa1, 0x61), Uint8Array.of(0xff, 0x00), Uint8Array.of(0xa1, 0x61, 0x61, 0xc1, 0x00)];
      for (const g of garbage) expect((await plain.request(raw('/d/bad-1', g))).code).toBe(Code.BAD_REQUEST);
      expect((await plain.request(raw('/d/bad-1', new TextEncoder().encode('{"vendor":'), ContentFormat.JSON))).code).toBe(Code.BAD_REQUEST);
      expect((await plain.request(raw('/d/has space', new Uint8Array(0)))).code).toBe(Code.BAD_REQUEST);
      expect(await svc.server.store.getDevice('bad-1')).toBeUndefined();
      expect(await svc.server.store.listDevices()).toEqual([]);
    });

    it('malformed reports and unknown devices: 4.00 / 4.04, history untouched', async () => {
      const plain = await svc.plain();
      await call(plain, Code.POST, '/d/r-1', reg('client'));
      const cases: [Record<string, unknown>, RegExp][] = [
        [{ rseq: 1, state: 'exploded' }, /"state"/],
        [{ rseq: 1, state: 'failed' }, /needs "detail"/],
        [{ rseq: 1, state: 'reverted' }, /needs "detail"/],
        [{ rseq: 0, state: 'idle' }, /"rseq"/],
        [{ state: 'idle' }, /"rseq"/],
        [{ rseq: 1, state: 'downloading', done: 10, total: 5 }, /above "total"/],
        [{ rseq: 1, state: 'downloading', done: 10 }, /go together/],
        [{ rseq: 1, state: 'failed', detail: 'x'.repeat(300) }, /"detail"/],
      ];
      for (const [body, reason] of cases) {
        const a = await call(plain, Code.POST, '/d/r-1/r', body);
        expect(a.code, JSON.stringify(body)).toBe(Code.BAD_REQUEST);
        expect(a.text).toMatch(reason);
      }
      expect((await call(plain, Code.POST, '/d/nobody/r', { rseq: 1, state: 'idle' })).code).toBe(Code.NOT_FOUND);
      expect((await call(plain, Code.GET, '/d/nobody/c')).code).toBe(Code.NOT_FOUND);
      expect((await svc.server.store.listHistory('r-1')).map((e) => e.transition)).toEqual(['registered']);
      expect((await svc.server.store.getDevice('r-1'))!.reportSeq).toBe(0);
    });

    it('replays: of the same report sent twice at once exactly one is accepted, the other is 4.09', async () => {
      const plain = await svc.plain();
      const other = await svc.plain();
      await call(plain, Code.POST, '/d/r-2', reg('client'));
      const report = { rseq: 5, state: 'downloading', seq: 2, done: 0, total: 10 };
      const [a, b] = await Promise.all([call(plain, Code.POST, '/d/r-2/r', report), call(other, Code.POST, '/d/r-2/r', report)]);
      expect([a.code, b.code].sort()).toEqual([Code.CHANGED, Code.CONFLICT].sort());
      expect((await call(plain, Code.POST, '/d/r-2/r', { ...report, rseq: 4 })).code).toBe(Code.CONFLICT);
      expect((await svc.server.store.listHistory('r-2')).filter((e) => e.transition === 'downloading')).toHaveLength(1);
    });

    it('oversized bodies: 4.13 with Size1, block-wise or whole', async () => {
      const plain = await svc.plain();
      const big = { ...reg('client'), group: 'g', pad: 'x'.repeat(3000) };
      // Our sender announces Size1 on the first block and turns the 4.13 into TOO_LARGE with the server's limit.
      await expect(call(plain, Code.POST, '/d/o-1', big, { blockSize: 256 })).rejects.toThrow(/more than the server takes \(at most 2048\)/);
      const payload = new Uint8Array(3000).fill(0x61);
      const first = await plain.request({ ...raw('/d/o-1', payload.subarray(0, 256)), options: [...raw('/d/o-1', payload).options, { number: OptionNumber.BLOCK1, value: encodeBlock({ num: 0, more: true, szx: 4 }) }] });
      expect(first.code).toBe(Code.CONTINUE); // without Size1 the server learns the size as blocks arrive ...
      let last = first;
      for (let n = 1; n < 12 && last.code === Code.CONTINUE; n++) {
        last = await plain.request({ ...raw('/d/o-1', payload.subarray(n * 256, n * 256 + 256)), options: [...raw('/d/o-1', payload).options, { number: OptionNumber.BLOCK1, value: encodeBlock({ num: n, more: true, szx: 4 }) }] });
      }
      expect(last.code).toBe(Code.REQUEST_ENTITY_TOO_LARGE); // ... and refuses the block that goes past the limit
      expect(last.options.find((o) => o.number === OptionNumber.SIZE1)?.value).toEqual(encodeUint(2048));
      const whole = await plain.request(raw('/d/o-1', new Uint8Array(2100).fill(0x61)));
      expect(whole.code).toBe(Code.REQUEST_ENTITY_TOO_LARGE);
      expect(await svc.server.store.getDevice('o-1')).toBeUndefined();
    });

    it('who may act: a coaps device only as itself, plain CoAP never for a coaps device', async () => {
      const d1 = await svc.secure('dev1');
      const d2 = await svc.secure('dev2');
      const plain = await svc.plain();
      expect((await call(d2, Code.POST, '/d', reg('server'))).code).toBe(Code.CHANGED);
      expect((await call(d1, Code.POST, '/d/dev-2', reg('server'))).code).toBe(Code.FORBIDDEN);
      expect((await call(d1, Code.POST, '/d/dev-2/r', { rseq: 1, state: 'idle' })).code).toBe(Code.FORBIDDEN);
      expect((await call(d1, Code.GET, '/d/dev-2/c')).code).toBe(Code.FORBIDDEN);
      expect((await call(plain, Code.POST, '/d/dev-2/r', { rseq: 1, state: 'idle' })).code).toBe(Code.FORBIDDEN);
      expect((await call(plain, Code.POST, '/d/dev-2', reg('client'))).code).toBe(Code.FORBIDDEN);
      expect((await call(plain, Code.POST, '/d', reg('client'))).code).toBe(Code.BAD_REQUEST);
      // dev-1 takes a name of its own; it cannot then register a second one.
      expect((await call(d1, Code.POST, '/d/sensor-17', reg('server'))).code).toBe(Code.CHANGED);
      expect((await call(d1, Code.POST, '/d/sensor-18', reg('server'))).code).toBe(Code.FORBIDDEN);
      expect((await svc.server.store.getDevice('dev-2'))!.reportSeq).toBe(0);
      expect((await svc.server.store.getDevice('sensor-17'))!.identity).toBe('dev-1');
      expect(await svc.server.store.getDevice('sensor-18')).toBeUndefined();
    });

    it('publishing: only coaps publishers, only trusted signers, only with the images, only a new sequence', async () => {
      const plain = await svc.plain();
      const device = await svc.secure('dev1');
      const pub = await svc.secure('publisher');
      const r = signedRelease(5);
      for (const client of [plain, device]) {
        const put = await sendBlock1(client.request, { code: Code.PUT, options: pathOptions(`/pub/blob/${r.imageHex}`), payload: r.image }, { runtime: systemRuntime });
        expect(put.code).toBe(Code.FORBIDDEN);
        expect((await call(client, Code.POST, '/pub/release', { envelope: r.envelope })).code).toBe(Code.FORBIDDEN);
      }
      expect(svc.server.staging.list()).toEqual([]);
      // The image is not uploaded: 4.12 naming it.
      const missing = await call(pub, Code.POST, '/pub/release', { envelope: r.envelope });
      expect(missing.code).toBe(Code.PRECONDITION_FAILED);
      expect(missing.text).toContain(r.imageHex.slice(0, 20));
      // Signed by a key the server does not trust: 4.00.
      const untrusted = signedRelease(5, STRANGER, bytes(5000, 55));
      const refused = await publishOver(pub, untrusted);
      expect(refused.release.code).toBe(Code.BAD_REQUEST);
      expect(refused.release.text).toMatch(/UNTRUSTED|trust/i);
      // Not an envelope at all; a wrong type for the envelope.
      expect((await call(pub, Code.POST, '/pub/release', { envelope: bytes(40, 1) })).code).toBe(Code.BAD_REQUEST);
      expect((await call(pub, Code.POST, '/pub/release', { envelope: 12 })).code).toBe(Code.BAD_REQUEST);
      expect((await call(pub, Code.POST, '/pub/release', { envelope: r.envelope, urgency: 'soon' })).code).toBe(Code.BAD_REQUEST);
      // A blob whose bytes are not its address: 4.00, nothing kept.
      const wrong = await sendBlock1(pub.request, { code: Code.PUT, options: pathOptions(`/pub/blob/${r.imageHex}`), payload: bytes(5000, 99) }, { runtime: systemRuntime });
      expect(wrong.code).toBe(Code.BAD_REQUEST);
      expect(svc.server.staging.get(r.imageHex)).toBeUndefined();
      // Published (JSON, envelope as hex); then the same and a lower sequence are 4.09.
      const ok = await publishOver(pub, r);
      expect(ok.release.code).toBe(Code.CREATED);
      const again = await publishOver(pub, signedRelease(5, undefined, bytes(5000, 77)));
      expect(again.release.code).toBe(Code.CONFLICT);
      const lower = await publishOver(pub, signedRelease(4));
      expect(lower.release.code).toBe(Code.CONFLICT);
      expect((await svc.server.store.listReleases()).map((x) => x.sequence)).toEqual([5]);
      expect(await svc.server.store.blobSize(signedRelease(4).imageHex)).toBeUndefined();
    });

    it('two publishers racing for one sequence: exactly one wins, the loser leaves nothing in the store', async () => {
      const p1 = await svc.secure('publisher');
      const p2 = await svc.secure('publisher');
      const a = signedRelease(7, undefined, bytes(4000, 1));
      const b = signedRelease(7, undefined, bytes(4000, 2));
      const [ra, rb] = await Promise.all([publishOver(p1, a), publishOver(p2, b)]);
      const codes = [ra.release.code, rb.release.code];
      expect(codes.filter((c) => c === Code.CREATED)).toHaveLength(1);
      expect(codes.filter((c) => c === Code.CONFLICT)).toHaveLength(1);
      const winner = ra.release.code === Code.CREATED ? a : b;
      const loser = winner === a ? b : a;
      const release = (await svc.server.store.getRelease(CLASS, 7))!;
      expect(release.envelopeSha256).toBe(winner.envelopeHex);
      expect(release.images.map((i) => i.sha256)).toEqual([winner.imageHex]);
      expect(await svc.server.store.blobSize(loser.imageHex)).toBeUndefined();
      expect(await svc.server.store.blobSize(loser.envelopeHex)).toBeUndefined();
      expect(await svc.server.store.listReleases()).toHaveLength(1);
    });

    it('an upload that stops half-way expires: nothing staged, nothing served, the release cannot use it', async () => {
      const pub = await svc.secure('publisher');
      const r = signedRelease(3, undefined, bytes(3000, 4));
      const opts = (num: number, more: boolean) => [
        ...pathOptions(`/pub/blob/${r.imageHex}`),
        { number: OptionNumber.BLOCK1, value: encodeBlock({ num, more, szx: 6 }) },
        { number: OptionNumber.REQUEST_TAG, value: Uint8Array.of(1, 2) },
        ...(num === 0 ? [{ number: OptionNumber.SIZE1, value: encodeUint(3000) }] : []),
      ];
      const first = await pub.request({ code: Code.PUT, options: opts(0, true), payload: r.image.subarray(0, 1024) });
      expect(first.code).toBe(Code.CONTINUE);
      expect(svc.server.staging.uploading).toBe(1);
      await eventually(() => (svc.server.staging.uploading === 0 ? true : undefined), 5000, 'the upload to expire');
      await eventually(() => (readdirSync(svc.server.staging.dir).length === 0 ? true : undefined), 2000, 'the part file to go');
      const late = await pub.request({ code: Code.PUT, options: opts(1, true), payload: r.image.subarray(1024, 2048) });
      expect(late.code).toBe(Code.REQUEST_ENTITY_INCOMPLETE);
      const plain = await svc.plain();
      expect((await plain.request({ code: Code.GET, options: pathOptions(`/fw/sha256/${r.imageHex}`) })).code).toBe(Code.NOT_FOUND);
      expect((await call(pub, Code.POST, '/pub/release', { envelope: r.envelope })).code).toBe(Code.PRECONDITION_FAILED);
      expect(await svc.server.store.listReleases()).toEqual([]);
    });

    it('the files of the directory are still served beside the service; unknown paths and methods as before', async () => {
      const plain = await svc.plain();
      const file = await plain.request({ code: Code.GET, options: pathOptions('/files/readme.txt') });
      expect(new TextDecoder().decode(file.payload)).toBe('served from the directory\n');
      expect((await plain.request({ code: Code.GET, options: pathOptions(`/m/${CLASS}/x`) })).code).toBe(Code.NOT_FOUND);
      expect((await plain.request({ code: Code.GET, options: pathOptions('/m/zz') })).code).toBe(Code.BAD_REQUEST);
      expect((await plain.request({ code: Code.DELETE, options: pathOptions('/d/x') })).code).toBe(Code.METHOD_NOT_ALLOWED);
      // Block1 only where bodies are taken: a GET with Block1 elsewhere is 4.02, as before.
      const b1 = await plain.request({ code: Code.GET, options: [...pathOptions('/files/readme.txt'), { number: OptionNumber.BLOCK1, value: encodeUint(0) }] });
      expect(b1.code).toBe(Code.BAD_OPTION);
      expect(answerOf(await plain.request({ code: Code.GET, options: pathOptions('/.well-known/core') })).text).toContain('</d>;rt="coapfw.register"');
    });
  });
}
