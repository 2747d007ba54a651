/**
 * The Observe table cannot be filled (issue 8, item 5): a per-address cap,
 * eviction of the oldest registration of the address holding the most
 * instead of refusing a new one, and expiry of registrations whose
 * confirmable notifications go unanswered, including the 24-hourly one a
 * resource that never changes still gets (RFC 7641 §4.5).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MessageType, OptionNumber } from '../../src/codec/numbers.js';
import { getOption } from '../../src/codec/options.js';
import { flush } from '../../src/testing/mem-transport.js';
import { observeRequest, observerDevice, observeServer, until } from './observe-helpers.js';

type Server = Awaited<ReturnType<typeof observeServer>>;
let s: Server | undefined;
afterEach(async () => {
  await s?.close();
  s = undefined;
});

const token = (i: number) => Uint8Array.of(i >> 24, (i >> 16) & 255, (i >> 8) & 255, i & 255);
const DAY = 24 * 3600_000;

describe('Observe table limits', () => {
  it('one address cannot take more than its cap; its newest registrations stay', async () => {
    s = await observeServer({ endpoint: { amplification: false } });
    for (let port = 1; port <= 100; port++) s.inject(observeRequest(token(port)), { address: '10.0.0.5', port });
    await until(() => s!.net.log.length >= 100, 'responses');
    expect(s.observe.size).toBe(32);
    expect(s.observe.sizeOf('10.0.0.5')).toBe(32);
    // A device at another address is not affected.
    const dev = observerDevice(s.net, { address: '10.0.0.9', port: 5683 });
    await dev.register();
    await until(() => dev.got.length > 0, 'registration response');
    expect(getOption(dev.got[0]!, OptionNumber.OBSERVE)).toBeDefined();
    expect(s.observe.size).toBe(33);
  });

  it('10,000 vanished ports of one address do not lock a real device out', async () => {
    s = await observeServer({ endpoint: { amplification: false } });
    for (let i = 0; i < 10_000; i++) s.inject(observeRequest(token(i)), { address: '10.0.0.5', port: 10_000 + (i % 50_000) });
    await until(() => s!.net.log.length >= 10_000, 'responses');
    const dev = observerDevice(s.net, { address: '10.0.0.9', port: 5683 });
    await dev.register();
    await until(() => dev.got.length > 0, 'registration response');
    expect(getOption(dev.got[0]!, OptionNumber.OBSERVE), 'the real device is registered').toBeDefined();
    await s.change();
    await until(() => dev.notifications().length >= 2, 'notification');
    expect(dev.notifications()[1]!.type).toBe(MessageType.CON);
    console.log(`observe flood (one address): 10000 registrations tried, ${s.observe.sizeOf('10.0.0.5')} kept for that address, real device registered and notified`);
  });

  it('10,000 vanished ports at as many addresses: the table stays full of them only until they fail to ACK', async () => {
    s = await observeServer({ endpoint: { amplification: false } });
    for (let i = 0; i < 10_000; i++) s.inject(observeRequest(token(i)), { address: `10.1.${i >> 8}.${i & 255}`, port: 40_000 });
    await until(() => s!.net.log.length >= 10_000, 'responses');
    expect(s.observe.size).toBe(1000);
    const dev = observerDevice(s.net, { address: '10.0.0.9', port: 5683 });
    await dev.register();
    await until(() => dev.got.length > 0, 'registration response');
    expect(getOption(dev.got[0]!, OptionNumber.OBSERVE), 'registered, evicting the oldest').toBeDefined();
    expect(s.observe.size).toBe(1000);
    await s.change();
    await until(() => dev.notifications().length >= 2, 'notification');
    // Nobody ACKs the 999 other notifications: each is removed when its retransmissions run out.
    for (let t = 0; t < 300; t++) {
      s.rt.advance(1000);
      await flush();
    }
    expect(s.observe.size).toBe(1);
    console.log(`observe flood (10000 addresses): 10000 registrations tried, ${s.observe.stats.registered} registered, table capped at 1000, ${s.observe.stats.evicted} evicted, ${s.observe.stats.expired} expired, real device kept`);
  });

  it('a registration whose periodic confirmable notification goes unanswered expires though the file never changes', async () => {
    s = await observeServer({ endpoint: { amplification: false } });
    const live = observerDevice(s.net, { address: '10.0.0.9', port: 5683 });
    const gone = observerDevice(s.net, { address: '10.0.0.8', port: 5683 });
    await live.register();
    await gone.register();
    await until(() => live.got.length > 0 && gone.got.length > 0, 'registrations');
    gone.state.acking = false; // it vanished
    expect(s.observe.size).toBe(2);
    for (let day = 1; day <= 3; day++) {
      s.rt.advance(DAY);
      await until(() => live.notifications().length >= 1 + day, `day ${day} notification`);
      for (let t = 0; t < 100; t++) {
        s.rt.advance(1000);
        await flush();
      }
    }
    expect(s.observe.size).toBe(1);
    expect(live.notifications().slice(1).every((m) => m.type === MessageType.CON)).toBe(true);
    expect(s.observe.stats.expired).toBe(1);
  });
});
