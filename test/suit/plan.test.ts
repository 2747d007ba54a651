import { describe, expect, test } from 'vitest';
import { planUpdate, type SuitCommand, type SuitManifest } from '../../src/suit/index.js';

const d = (b: number) => ({ alg: -16, bytes: new Uint8Array(32).fill(b) });
const cond = (code: number): SuitCommand => ({ kind: 'condition', code, policy: 15 });
const dir = (code: number): SuitCommand => ({ kind: 'directive', code, policy: 2 });
const set = (params: Extract<SuitCommand, { kind: 'override-parameters' }>['params']): SuitCommand => ({ kind: 'override-parameters', params });
const manifest = (install: SuitCommand[], components = 1, shared: SuitCommand[] = []): SuitManifest => ({
  version: 1,
  sequenceNumber: 1n,
  components: [...Array(components)].map((_, i) => [new Uint8Array([i])]),
  sharedSequence: shared,
  install,
  severed: {},
});

describe('interpreter', () => {
  test('a failed try-each alternative leaves no checks behind', () => {
    const m = manifest([
      set({ uri: 'coap://x/a', imageDigest: d(1) }),
      dir(21),
      {
        kind: 'try-each',
        allowNone: false,
        branches: [
          [set({ imageDigest: d(2) }), cond(3), cond(14)], // image-match then abort
          [set({ imageDigest: d(3) }), cond(3)],
        ],
      },
    ]);
    const p = planUpdate(m, {});
    expect(p.images).toHaveLength(1);
    expect(p.images[0]!.checks.map((c) => c.digest!.bytes[0])).toEqual([3]);
  });

  test('set-component-index true fetches every component with its own parameters', () => {
    const m = manifest([
      { kind: 'set-component-index', index: 0 },
      set({ uri: 'coap://x/0' }),
      { kind: 'set-component-index', index: 1 },
      set({ uri: 'coap://x/1' }),
      { kind: 'set-component-index', index: true },
      set({ imageSize: 9 }),
      dir(21),
    ], 2);
    const p = planUpdate(m, {});
    expect(p.images.map((i) => [i.componentIndex, i.uri, i.size])).toEqual([[0, 'coap://x/0', 9], [1, 'coap://x/1', 9]]);
  });

  test('componentSlot may be chosen per component', () => {
    const slotChoice: SuitCommand = {
      kind: 'try-each',
      allowNone: false,
      branches: [
        [set({ componentSlot: 0, uri: 'coap://x/slot0' }), cond(5)],
        [set({ componentSlot: 1, uri: 'coap://x/slot1' }), cond(5)],
      ],
    };
    const m = manifest([{ kind: 'set-component-index', index: 0 }, slotChoice, dir(21), { kind: 'set-component-index', index: 1 }, slotChoice, dir(21)], 2);
    const p = planUpdate(m, { componentSlot: (_id, i) => (i === 0 ? 1 : 0) });
    expect(p.images.map((i) => [i.componentIndex, i.slot, i.uri])).toEqual([[0, 1, 'coap://x/slot1'], [1, 0, 'coap://x/slot0']]);
    expect(p.conditionsChecked).toEqual(['component-slot']);
  });

  test('fetch without a URI and copy without a source are malformed', () => {
    expect(() => planUpdate(manifest([dir(21)]), {})).toThrow(expect.objectContaining({ code: 'SUIT_MALFORMED' }));
    expect(() => planUpdate(manifest([dir(22)]), {})).toThrow(expect.objectContaining({ code: 'SUIT_MALFORMED' }));
  });

  test('device-identifier condition', () => {
    const m = manifest([set({ deviceId: new Uint8Array(16).fill(1) }), cond(24)]);
    expect(planUpdate(m, { deviceId: new Uint8Array(16).fill(1) }).conditionsChecked).toEqual(['device-identifier']);
    expect(() => planUpdate(m, { deviceId: new Uint8Array(16).fill(2) })).toThrow(expect.objectContaining({ code: 'CONDITION_FAILED' }));
    expect(planUpdate(m, {}).unchecked).toEqual(['device-identifier']);
  });
});
