/**
 * The legacy `/status/<id>` reports (what `coapfw device update` and older
 * devices POST: `{ result, installedSequence, candidateSequence, error,
 * message, running }`) recorded into the store when the device is known to
 * it, with the same access rules as `/d/<id>/r`. They carry no report
 * counter, so the server numbers them itself (the next after the last
 * accepted); an unknown device's report stays in the in-memory tracker, as
 * before the service existed.
 */
import { isCoapfwError } from '../errors.js';
import type { CoapRequest, ResponseSpec } from '../messaging/endpoint.js';
import type { PeerIdentity } from '../server/serve.js';
import { deviceOf, type AccessPolicy } from './access.js';
import type { StatusReport } from './model.js';
import type { Store } from './store.js';

const DEVICE_ID = /^[A-Za-z0-9._:-]{1,64}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

type Fields = Omit<StatusReport, 'reportSeq'>;

const seq = (v: unknown): number | undefined => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined);
const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v.slice(0, 256) : undefined);

/** A legacy report as a store report (without its counter), or undefined when it says nothing the store keeps. */
export function legacyReport(r: Readonly<Record<string, unknown>>): Fields | undefined {
  const installed = seq(r.installedSequence);
  const candidate = seq(r.candidateSequence);
  const reason = [text(r.error), text(r.message)].filter((x) => x !== undefined).join(': ').slice(0, 256) || undefined;
  const running = typeof r.running === 'string' && SHA256_HEX.test(r.running) ? r.running : undefined;
  const at = (state: Fields['state'], sequence: number | undefined, extra: Partial<Fields> = {}): Fields => ({
    state,
    ...(sequence === undefined ? {} : { sequence }),
    ...extra,
  });
  switch (r.result) {
    case 'installed':
      return at('installed', candidate);
    case 'up-to-date':
      return at('idle', installed, installed === undefined ? {} : { installedSeq: installed });
    case 'rejected':
    case 'failed':
      return at('failed', candidate, { detail: reason ?? String(r.result) });
    case 'confirmed':
      return at('confirmed', installed, { ...(installed === undefined ? {} : { installedSeq: installed }), ...(running === undefined ? {} : { runningDigest: running }) });
    case 'unconfirmed':
      return at('installed', installed);
    case 'reverted':
      return at('reverted', installed, { detail: reason ?? 'reverted', ...(installed === undefined ? {} : { installedSeq: installed }) });
    default:
      return undefined;
  }
}

/** The tracker's `forward` hook: record the report of a known device in the store. */
export function legacyForward(store: Store, policy: AccessPolicy, identify: (req: CoapRequest) => PeerIdentity) {
  return async (deviceId: string, report: Readonly<Record<string, unknown>>, req: CoapRequest): Promise<ResponseSpec | undefined> => {
    if (!DEVICE_ID.test(deviceId) || (await store.getDevice(deviceId)) === undefined) return undefined;
    const device = await deviceOf(store, identify(req), policy, deviceId, 'report');
    const fields = legacyReport(report);
    if (fields === undefined) return undefined;
    // Numbered by the server; a report another server accepted in between takes the number: take the next.
    for (let attempt = 0, last = device.reportSeq; ; attempt++) {
      try {
        await store.recordReport(device.id, { ...fields, reportSeq: last + 1 });
        return undefined;
      } catch (e) {
        if (!isCoapfwError(e, 'REPORT_REPLAY') || attempt >= 3) throw e;
        last = (await store.getDevice(device.id))?.reportSeq ?? last + 1;
      }
    }
  };
}
