/**
 * The Prometheus endpoint (`GET /metrics`, text format 0.0.4) on prom-client.
 * Nothing is counted here: every value is read at scrape time from counters
 * the library keeps anyway (endpoint, DTLS server, Observe registry, file
 * resources) and from the store (devices by state, rollout progress), so the
 * per-block path pays nothing for metrics. The sources are structural types:
 * this module needs no server objects, only their counters.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { cpuUsage } from 'node:process';
import type { Store } from '../service/store.js';
import { TARGET_STATES } from '../service/fleet.js';

/** A CoAP endpoint's counters (src/messaging/endpoint.ts). */
export interface EndpointCounters {
  readonly stats: { readonly received: number; readonly sent: number; readonly bytesIn: number; readonly bytesOut: number; readonly duplicates: number; readonly malformed: number; readonly overloaded: number };
  readonly requestCodes: Uint32Array;
  readonly responseCodes: Uint32Array;
  readonly retransmissions: number;
}

/** What the metrics read; every source is optional. */
export interface MetricSources {
  /** Endpoints with the transport they serve (`coap`, `coaps`). */
  readonly endpoints?: () => ReadonlyArray<{ readonly transport: string; readonly endpoint: EndpointCounters }>;
  readonly dtls?: () => { readonly stats: { readonly handshakesStarted: number; readonly handshakesOk: number; readonly handshakesFailed: number; readonly recordsDropped: number } } | undefined;
  readonly observe?: () => { readonly size: number; readonly notificationsSent: number; readonly stats: { readonly registered: number } } | undefined;
  /** Blocks (Block2 responses) served from files and from the store. */
  readonly blocksServed?: () => number;
  readonly store?: Store;
}

const METHODS: Record<number, string> = { 1: 'GET', 2: 'POST', 3: 'PUT', 4: 'DELETE', 5: 'FETCH', 6: 'PATCH', 7: 'iPATCH' };
const code = (c: number): string => `${c >> 5}.${String(c & 31).padStart(2, '0')}`;

/** A registry with coapfw's metrics and Node's default process metrics. */
export function createMetrics(sources: MetricSources): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const endpoints = (): ReturnType<NonNullable<MetricSources['endpoints']>> => sources.endpoints?.() ?? [];
  const perTransport = (name: string, help: string, read: (e: EndpointCounters) => number): void => {
    new Counter({
      name,
      help,
      labelNames: ['transport'],
      registers: [registry],
      collect() {
        this.reset();
        for (const { transport, endpoint } of endpoints()) this.inc({ transport }, read(endpoint));
      },
    });
  };
  perTransport('coapfw_coap_datagrams_received_total', 'CoAP datagrams received', (e) => e.stats.received);
  perTransport('coapfw_coap_datagrams_sent_total', 'CoAP datagrams sent, retransmissions included', (e) => e.stats.sent);
  perTransport('coapfw_coap_bytes_received_total', 'CoAP datagram bytes received', (e) => e.stats.bytesIn);
  perTransport('coapfw_coap_bytes_sent_total', 'CoAP datagram bytes sent', (e) => e.stats.bytesOut);
  perTransport('coapfw_coap_retransmissions_total', 'Confirmable messages sent again (RFC 7252 §4.2)', (e) => e.retransmissions);
  perTransport('coapfw_coap_duplicates_total', 'Duplicate requests answered from the dedup cache (RFC 7252 §4.5)', (e) => e.stats.duplicates);
  perTransport('coapfw_coap_malformed_total', 'Datagrams that were not valid CoAP', (e) => e.stats.malformed);
  perTransport('coapfw_coap_overloaded_total', 'Requests refused with 5.03 because too many were in progress', (e) => e.stats.overloaded);
  byCode(registry, 'coapfw_coap_requests_total', 'CoAP requests by method', 'method', endpoints, (e) => e.requestCodes, (c) => METHODS[c] ?? String(c));
  byCode(registry, 'coapfw_coap_responses_total', 'CoAP responses by code', 'code', endpoints, (e) => e.responseCodes, code);
  simpleCounter(registry, 'coapfw_blocks_served_total', 'Block2 responses served', () => sources.blocksServed?.());
  dtlsMetrics(registry, sources);
  observeMetrics(registry, sources);
  cpuPerBlock(registry, sources);
  if (sources.store !== undefined) storeMetrics(registry, sources.store);
  return registry;
}

function byCode(
  registry: Registry,
  name: string,
  help: string,
  label: string,
  endpoints: () => ReadonlyArray<{ transport: string; endpoint: EndpointCounters }>,
  table: (e: EndpointCounters) => Uint32Array,
  show: (c: number) => string,
): void {
  new Counter({
    name,
    help,
    labelNames: ['transport', label],
    registers: [registry],
    collect() {
      this.reset();
      for (const { transport, endpoint } of endpoints()) {
        const t = table(endpoint);
        for (let c = 0; c < t.length; c++) if (t[c]! > 0) this.inc({ transport, [label]: show(c) }, t[c]!);
      }
    },
  });
}

function simpleCounter(registry: Registry, name: string, help: string, read: () => number | undefined, labels: Record<string, string> = {}): void {
  new Counter({
    name,
    help,
    labelNames: Object.keys(labels),
    registers: [registry],
    collect() {
      this.reset();
      const v = read();
      if (v !== undefined) this.inc(labels, v);
    },
  });
}

function dtlsMetrics(registry: Registry, sources: MetricSources): void {
  new Counter({
    name: 'coapfw_dtls_handshakes_total',
    help: 'DTLS handshakes by result (started, ok, failed)',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      this.reset();
      const s = sources.dtls?.()?.stats;
      if (s === undefined) return;
      this.inc({ result: 'started' }, s.handshakesStarted);
      this.inc({ result: 'ok' }, s.handshakesOk);
      this.inc({ result: 'failed' }, s.handshakesFailed);
    },
  });
  simpleCounter(registry, 'coapfw_dtls_records_dropped_total', 'DTLS records dropped (replays, bad MACs, no session)', () => sources.dtls?.()?.stats.recordsDropped);
}

function observeMetrics(registry: Registry, sources: MetricSources): void {
  new Gauge({
    name: 'coapfw_observe_registrations',
    help: 'Observe registrations held now (RFC 7641)',
    registers: [registry],
    collect() {
      this.set(sources.observe?.()?.size ?? 0);
    },
  });
  simpleCounter(registry, 'coapfw_observe_registrations_total', 'Observe registrations made', () => sources.observe?.()?.stats.registered);
  simpleCounter(registry, 'coapfw_observe_notifications_total', 'Observe notifications sent', () => sources.observe?.()?.notificationsSent);
}

/** Process CPU time per block served since the previous scrape: what one block costs the server. */
function cpuPerBlock(registry: Registry, sources: MetricSources): void {
  let last = { cpu: cpuUsage(), blocks: sources.blocksServed?.() ?? 0 };
  new Gauge({
    name: 'coapfw_cpu_seconds_per_block',
    help: 'Process CPU seconds (user + system) per block served, between the last two scrapes (0 when no block was served)',
    registers: [registry],
    collect() {
      const now = { cpu: cpuUsage(), blocks: sources.blocksServed?.() ?? 0 };
      const blocks = now.blocks - last.blocks;
      const cpuUs = now.cpu.user - last.cpu.user + (now.cpu.system - last.cpu.system);
      this.set(blocks > 0 ? cpuUs / 1e6 / blocks : 0);
      last = now;
    },
  });
}

function storeMetrics(registry: Registry, store: Store): void {
  new Gauge({
    name: 'coapfw_devices',
    help: 'Registered devices by last reported state',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [state, n] of Object.entries(await store.countDevicesByState())) this.set({ state }, n ?? 0);
    },
  });
  new Gauge({
    name: 'coapfw_rollout_targets',
    help: 'Devices of each active rollout by wave and target state',
    labelNames: ['rollout', 'class', 'sequence', 'wave', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of [...(await store.listRollouts({ state: 'running' })), ...(await store.listRollouts({ state: 'paused' }))]) {
        for (const c of await store.rolloutCounts(r.id)) {
          for (const state of TARGET_STATES) {
            this.set({ rollout: String(r.id), class: r.classId, sequence: String(r.sequence), wave: String(c.wave), state }, c.byState[state]);
          }
        }
      }
    },
  });
  new Gauge({
    name: 'coapfw_rollouts',
    help: 'Rollouts by state (the newest 100)',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of await store.listRollouts({ limit: 100 })) this.inc({ state: r.state });
    },
  });
}
