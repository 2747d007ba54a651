/**
 * The trust parts of `coapfw device`: the trust state a new device is
 * provisioned with (--trust, --trust-state), the note when a provisioned
 * device is given one anyway, and the trust store in `device status`.
 */
import { stat } from 'node:fs/promises';
import { equalBytes } from '@noble/curves/utils.js';
import { openFileDevice, type FileDevice, type FileDeviceOptions } from '../device/file-device.js';
import { readDeviceTrust } from '../device/trust-device.js';
import { isCoapfwError } from '../errors.js';
import { encodeTrustState, trustStateFromPolicy, type TrustState } from '../suit/index.js';
import { str, type Values } from './args.js';
import { UsageError, type CliIo } from './common.js';
import { readPublicKey } from './inputs.js';
import { readTrustStateFile } from './trust-input.js';

/** The trust state to provision with, from --trust or --trust-state (never both). */
export async function provisioningTrust(values: Values): Promise<TrustState | undefined> {
  const key = str(values, 'trust');
  const file = str(values, 'trust-state');
  if (key !== undefined && file !== undefined) throw new UsageError('give --trust or --trust-state, not both');
  if (file !== undefined) return readTrustStateFile(file);
  // The simple case: one key for every component, as a trust state (converted here, at provisioning only).
  return key === undefined ? undefined : trustStateFromPolicy({ anchors: [{ name: 'trusted-key', publicKey: await readPublicKey(key) }] });
}

/** Whether `path` holds a device (a non-empty chip file: a new one appears whole or not at all). */
export async function isDeviceFile(path: string): Promise<boolean> {
  return ((await stat(path).catch(() => undefined))?.size ?? 0) > 0;
}

/** The trust store's version, revocation list and source for `status` (or why there is none). */
export async function trustSummary(dev: FileDevice): Promise<Record<string, unknown>> {
  try {
    const t = await readDeviceTrust(dev.flash, dev.layout);
    return t === undefined ? { provisioned: false } : { provisioned: true, version: t.version, revocationSequence: t.revocation.sequence, source: t.source ?? null };
  } catch (e) {
    if (isCoapfwError(e, 'TRUST_STORE_CORRUPT')) return { provisioned: true, error: e.code };
    throw e;
  }
}

/** Open the chip file, its trust store provisioned with `options.trust` when new; the note of {@link noteUnusedTrust} when it was not. */
export async function openDevice(path: string, options: FileDeviceOptions, io: CliIo): Promise<FileDevice> {
  const dev = await openFileDevice(path, options);
  if (options.trust !== undefined && !dev.trustProvisioned) await noteUnusedTrust(dev, options.trust, io);
  return dev;
}

/** --trust/--trust-state on a provisioned device: never used; say so when it differs from the store. */
export async function noteUnusedTrust(dev: FileDevice, given: TrustState, io: CliIo): Promise<void> {
  let held: TrustState | undefined;
  try {
    held = await readDeviceTrust(dev.flash, dev.layout);
  } catch {
    return; // damaged: the update reports TRUST_STORE_CORRUPT
  }
  if (held !== undefined && !equalBytes(encodeTrustState(held), encodeTrustState(given))) {
    io.stderr.write(`coapfw device: note: the trust store is already provisioned (trust version ${held.version}); --trust/--trust-state count only when provisioning ('coapfw trust init --flash FILE --force' provisions again)\n`);
  }
}
