/**
 * Test doubles for code built on coapfw, the same ones our own tests use: a
 * runtime whose clock moves only when told, an in-memory datagram network, a
 * lossy/reordering transport wrapper, a wrapper that taps datagrams, a NOR flash that loses power at any
 * operation, and a sweep that cuts power at every operation of a scenario.
 *
 * @example
 * import { FakeRuntime, MemNetwork } from 'coapfw/testing';
 * import { CoapEndpoint } from 'coapfw/messaging';
 * const rt = new FakeRuntime();
 * const net = new MemNetwork();
 * const a = new CoapEndpoint(net.endpoint('10.0.0.1', 5683), { runtime: rt });
 * rt.advance(2000); // fires the retransmission timers that are due
 */
export { FakeRuntime } from './fake-runtime.js';
export { MemNetwork, MemTransport, flush } from './mem-transport.js';
export { ImpairedTransport, type Impairment, type ImpairmentStats } from '../transport/impaired.js';
export { MemoryFlash, type CutOptions, type FlashOperation, type FlashStats, type MemoryFlashOptions } from '../flash/memory.js';
export { powerCutSweep, runUntilDone, type PowerCutSweepOptions, type PowerCutSweepReport } from '../flash/power-cut.js';
export { CrashingFlash } from '../device/crash-flash.js';
export { mulberry32 } from '../core/prng.js';
export { tapTransport, type Tap } from './tap.js';
