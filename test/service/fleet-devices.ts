/**
 * Simulated devices for the fleet tests: each a DeviceAgent on its own
 * MemoryFlash, on its own UDP socket from its own loopback address
 * (127.0.x.y: devices of a real fleet do not share an address, and the
 * server bounds Observe registrations per address), all in this process.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { Peer } from '../../src/core/transport.js';
import { DeviceAgent } from '../../src/device/agent.js';
import type { AgentEvent } from '../../src/device/agent-options.js';
import type { AgentMode } from '../../src/device/agent-wire.js';
import { provisionDevice } from '../../src/device/device.js';
import { createLayout, type FlashLayout } from '../../src/flash/layout.js';
import { CoapEndpoint } from '../../src/messaging/endpoint.js';
import type { TrustPolicy } from '../../src/suit/trust.js';
import { MemoryFlash } from '../../src/testing/index.js';
import { systemRuntime } from '../../src/transport/runtime.js';
import { UdpTransport } from '../../src/transport/udp.js';

/** What a fleet test needs of one device. */
export interface SimDevice {
  readonly id: string;
  readonly mode: AgentMode;
  readonly defer: number;
  readonly flash: MemoryFlash;
  readonly layout: FlashLayout;
  readonly events: AgentEvent[];
  agent: DeviceAgent;
  /** Commands this device answered, with its deferral (seconds). */
  readonly answers: { readonly commandId: number; readonly defer: number }[];
}

/** How the fleet is built. */
export interface FleetOptions {
  readonly server: Peer;
  readonly count: number;
  readonly mode: (i: number) => AgentMode;
  /** Negotiated devices: the deferral each asks for, in seconds (0: now). */
  readonly defer: (i: number) => number;
  readonly trust: TrustPolicy;
  readonly vendorId: Uint8Array;
  readonly classId: Uint8Array;
  readonly prefix?: string;
}

/** The factory image every simulated device starts with (sequence 0). */
export const FACTORY = new TextEncoder().encode('fleet factory image'.padEnd(64, '.'));

/** The loopback address of device `i` (127.0.0.2 upwards; 127.0.0.1 is the server's). */
export function deviceAddress(i: number): string {
  const n = i + 2;
  return `127.0.${Math.floor(n / 250)}.${n % 250}`;
}

/** Transmission settings that let a fleet notice a dead server within seconds (RFC 7252 §4.8 allows tuning them). */
const PARAMS = { ackTimeoutMs: 500, maxRetransmit: 3 };

/** A fleet's devices; `close()` stops them all. */
export class Fleet {
  readonly devices: SimDevice[] = [];
  private readonly endpoints: CoapEndpoint[] = [];

  constructor(private readonly o: FleetOptions) {}

  /** Provision and start every device. */
  async start(): Promise<void> {
    for (let i = 0; i < this.o.count; i++) {
      const flash = new MemoryFlash({ size: 128 * 1024, eraseBlockSize: 4096 });
      const layout = createLayout(flash, { slotSize: 48 * 1024 });
      await provisionDevice(flash, layout, FACTORY, 0);
      const dev: SimDevice = { id: `${this.o.prefix ?? 'sim'}-${String(i).padStart(3, '0')}`, mode: this.o.mode(i), defer: this.o.defer(i), flash, layout, events: [], answers: [], agent: undefined! };
      this.devices.push(dev);
      dev.agent = await this.agent(dev, i);
    }
  }

  private async agent(dev: SimDevice, i: number): Promise<DeviceAgent> {
    const transport = await UdpTransport.bind({ host: deviceAddress(i), port: 0, connect: this.o.server });
    const ep = new CoapEndpoint(transport, { runtime: systemRuntime, params: PARAMS });
    this.endpoints.push(ep);
    const server = this.o.server;
    const agent = new DeviceAgent({
      flash: dev.flash,
      layout: dev.layout,
      server: `coap://${server.address}:${server.port}`,
      link: { request: (spec, ro) => ep.request(server, spec, ro), openStream: (l) => ep.openStream(server, l), runtime: systemRuntime },
      trust: this.o.trust,
      vendorId: this.o.vendorId,
      classId: this.o.classId,
      mode: dev.mode,
      deviceId: dev.id,
      answerOffer: () => (dev.defer === 0 ? { answer: 'now' } : { answer: 'defer', defer: dev.defer }),
      progressStepPercent: 25,
      backoff: { baseMs: 500, maxMs: 4000 },
      update: { blockRetry: { attempts: 6, baseMs: 300, maxMs: 2000 }, retry: { attempts: 4, baseMs: 500, maxMs: 3000 } },
      onEvent: (e) => {
        dev.events.push(e);
        if (e.type === 'answered' && e.code !== undefined && e.code >> 5 === 2) dev.answers.push({ commandId: e.commandId, defer: e.answer.answer === 'now' ? 0 : e.answer.defer });
      },
    });
    await agent.start();
    return agent;
  }

  /** Stop every agent and close the sockets. */
  async close(): Promise<void> {
    await Promise.all(this.devices.map((d) => d.agent?.stop()));
    await Promise.all(this.endpoints.splice(0).map((e) => e.close()));
  }
}

/** SHA-256 hex. */
export const sha256Hex = (b: Uint8Array): string => bytesToHex(sha256(b));
