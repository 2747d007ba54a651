import type { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { flush } from '../../src/testing/mem-transport.js';

/** Run `p` to completion, moving the fake clock by `stepMs` whenever it waits (bounded). */
export async function drive<T>(rt: FakeRuntime, p: Promise<T>, stepMs = 50): Promise<T> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; !done && i < 200_000; i++) {
    await flush();
    if (!done) rt.advance(stepMs);
  }
  return p;
}
