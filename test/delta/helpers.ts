import fc from 'fast-check';

/** xorshift32 bytes: deterministic "random" content. */
export function noise(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/**
 * A toy executable: "instructions" of one byte, or a call opcode and a 4-byte
 * absolute address into the image. Version 1 inserts `grow` bytes of new code
 * before the first instruction at or after `at`, which shifts every later
 * address, as a linker would: the case bsdiff's ADD is made for.
 */
export function toyExecutable(n: number, seed: number, version = 0, at = 0, grow = 0): Uint8Array {
  const ops = noise(n, seed);
  const insns: { off: number; op: number; addr: number }[] = [];
  for (let i = 0, off = 0; off < n; i++) {
    const op = ops[i % n]!;
    const call = op < 96;
    insns.push({ off, op, addr: call ? ((ops[(i * 7) % n]! << 8) | ops[(i * 13) % n]!) % n : -1 });
    off += call ? 5 : 1;
  }
  const p = version > 0 ? (insns.find((x) => x.off >= at)?.off ?? Infinity) : Infinity;
  const out: number[] = [];
  for (const x of insns) {
    if (x.off === p) out.push(...noise(grow, seed + 77));
    if (x.addr < 0) {
      out.push(x.op);
      continue;
    }
    const addr = x.addr >= p ? x.addr + grow : x.addr;
    out.push(0xe8, addr & 0xff, (addr >> 8) & 0xff, (addr >> 16) & 0xff, 0);
  }
  return Uint8Array.from(out);
}

/** One edit of `b` made from `a`. */
type Edit =
  | { kind: 'flip'; at: number; v: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'move'; from: number; to: number; len: number }
  | { kind: 'shift'; stride: number; add: number };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), v: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 300 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 400 }) }),
  fc.record({ kind: fc.constant('move' as const), from: fc.nat(), to: fc.nat(), len: fc.integer({ min: 1, max: 800 }) }),
  fc.record({ kind: fc.constant('shift' as const), stride: fc.integer({ min: 3, max: 64 }), add: fc.integer({ min: 1, max: 255 }) }),
);

function applyEdit(a: Uint8Array, e: Edit): Uint8Array {
  const n = a.length;
  switch (e.kind) {
    case 'flip': {
      if (n === 0) return a;
      const b = a.slice();
      b[e.at % n]! ^= e.v;
      return b;
    }
    case 'insert': {
      const at = n === 0 ? 0 : e.at % (n + 1);
      return Uint8Array.from([...a.subarray(0, at), ...e.bytes, ...a.subarray(at)]);
    }
    case 'delete': {
      if (n === 0) return a;
      const at = e.at % n;
      return Uint8Array.from([...a.subarray(0, at), ...a.subarray(at + e.len)]);
    }
    case 'move': {
      if (n === 0) return a;
      const from = e.from % n;
      const piece = a.subarray(from, from + e.len);
      const rest = Uint8Array.from([...a.subarray(0, from), ...a.subarray(from + e.len)]);
      const to = e.to % (rest.length + 1);
      return Uint8Array.from([...rest.subarray(0, to), ...piece, ...rest.subarray(to)]);
    }
    case 'shift': {
      const b = a.slice();
      for (let i = 0; i < n; i += e.stride) b[i] = (b[i]! + e.add) & 0xff;
      return b;
    }
  }
}

/** Pairs (a, b): independent random ones, empty ones, and b = a with edits. */
export const pairs: fc.Arbitrary<{ a: Uint8Array; b: Uint8Array }> = fc.oneof(
  fc.record({ a: fc.uint8Array({ maxLength: 3000 }), b: fc.uint8Array({ maxLength: 3000 }) }),
  fc.record({ a: fc.constant(new Uint8Array(0)), b: fc.uint8Array({ maxLength: 2000 }) }),
  fc.record({ a: fc.uint8Array({ maxLength: 2000 }), b: fc.constant(new Uint8Array(0)) }),
  fc
    .record({ n: fc.integer({ min: 0, max: 20000 }), seed: fc.nat(), edits: fc.array(edit, { maxLength: 8 }), lowEntropy: fc.boolean() })
    .map(({ n, seed, edits, lowEntropy }) => {
      const a = lowEntropy ? noise(n, seed).map((x) => x & 3) : noise(n, seed);
      return { a, b: edits.reduce(applyEdit, a) };
    }),
  fc
    .record({ n: fc.integer({ min: 100, max: 20000 }), seed: fc.nat(), at: fc.nat(), grow: fc.integer({ min: 1, max: 2000 }) })
    .map(({ n, seed, at, grow }) => {
      return { a: toyExecutable(n, seed), b: toyExecutable(n, seed, 1, at % n, grow) };
    }),
);
