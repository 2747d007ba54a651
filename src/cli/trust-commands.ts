/**
 * What each `coapfw trust` sub-command does (trust.ts holds their options
 * and help). Thin: the documents are src/suit/'s, the device's trust is
 * src/device/trust-*.ts'; every file is read with a size bound.
 */
import { writeFile } from 'node:fs/promises';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { fileError } from '../bounded-read.js';
import { openFileDevice } from '../device/file-device.js';
import { applyTrustDocuments } from '../device/trust-apply.js';
import { openDeviceTrust, provisionTrust, readDeviceTrust } from '../device/trust-device.js';
import { CoapfwError, isCoapfwError } from '../errors.js';
import {
  createOwnerTransfer,
  createRevocationList,
  createTrustUpdate,
  encodeTrustChain,
  encodeTrustState,
  initialTrustState,
  keyThumbprint,
  signTrustDocument,
  type SuitPublicKey,
  type TrustState,
} from '../suit/index.js';
import { intOption, str, strings, type Values } from './args.js';
import { jsonLine, UsageError, type CliIo } from './common.js';
import { labelled, readPrivateKey, readPublicKey } from './inputs.js';
import { describeState, describeTrustFile, trustText } from './trust-inspect.js';
import { readTrustFile, readTrustSetJson } from './trust-input.js';

async function write(path: string, data: Uint8Array): Promise<void> {
  try {
    await writeFile(path, data);
  } catch (e) {
    throw fileError(e, path);
  }
}

function output(values: Values, sub: string): string {
  const out = str(values, 'output');
  if (!out) throw new UsageError(`${sub}: -o FILE is required`);
  return out;
}

const tp = (k: SuitPublicKey): string => bytesToHex(keyThumbprint(k));

async function privateKeys(values: Values): Promise<Awaited<ReturnType<typeof readPrivateKey>>[]> {
  const keys = [];
  for (const f of strings(values, 'key')) keys.push(await readPrivateKey(f));
  return keys;
}

function one(positionals: string[], sub: string, what: string): string {
  if (positionals.length !== 1) throw new UsageError(`${sub}: expected exactly one ${what}`);
  return positionals[0]!;
}

/** `init`: the state a device is provisioned with; into a file, a device's flash file, or both. */
export async function init(values: Values, positionals: string[], io: CliIo): Promise<number> {
  const file = one(positionals, 'init', 'SET.json');
  const out = str(values, 'output');
  const flash = str(values, 'flash');
  if (!out && !flash) throw new UsageError('init: give -o STATE.cbor, --flash FILE, or both');
  const set = await readTrustSetJson(file);
  const owner = str(values, 'owner');
  const ownerKey = owner === undefined ? undefined : await readPublicKey(owner);
  const state = labelled(file, () => initialTrustState(set, ownerKey));
  if (out) await write(out, encodeTrustState(state));
  if (flash) await provisionFile(flash, state, values.force === true);
  const where = [out, flash && `the trust store of ${flash}`].filter(Boolean).join(' and ');
  io.stdout.write(`wrote ${where}: trust version ${state.version}, ${state.anchors.length} anchors, ${state.roles.length} roles, ${ownerKey ? `owner ${tp(ownerKey)}` : 'no owner key (ownership cannot be transferred)'}\n`);
  return 0;
}

/** Provision the trust store of a simulated device (created when missing); a provisioned one only with --force. */
async function provisionFile(path: string, state: TrustState, force: boolean): Promise<void> {
  const dev = await openFileDevice(path, { trust: state });
  try {
    if (dev.trustProvisioned) return;
    let held: TrustState | undefined;
    try {
      held = await readDeviceTrust(dev.flash, dev.layout);
    } catch (e) {
      if (!force || !isCoapfwError(e, 'TRUST_STORE_CORRUPT')) throw e;
    }
    if (held !== undefined && !force) {
      throw new CoapfwError('ALREADY_EXISTS', `${path}: the trust store is provisioned (trust version ${held.version}); --force provisions it again, dropping every rotation and revocation it took`, { path });
    }
    await provisionTrust(dev.flash, dev.layout, state);
  } finally {
    await dev.flash.close();
  }
}

/** `update SET.json`: a trust update, unsigned or signed by each --key. */
export async function update(values: Values, positionals: string[], io: CliIo): Promise<number> {
  const file = one(positionals, 'update', 'SET.json');
  const out = output(values, 'update');
  const set = await readTrustSetJson(file);
  const keys = await privateKeys(values);
  const doc = labelled(file, () => createTrustUpdate(set, keys));
  await write(out, doc);
  io.stdout.write(`wrote ${out}: trust update to version ${set.version}, ${keys.length} signature(s); add more with 'coapfw trust sign'\n`);
  return 0;
}

/** `sign DOC`: add one signature per --key. */
export async function sign(values: Values, positionals: string[], io: CliIo): Promise<number> {
  const file = one(positionals, 'sign', 'document');
  const out = output(values, 'sign');
  const keys = await privateKeys(values);
  if (keys.length === 0) throw new UsageError('sign: give --key FILE');
  const bytes = await readTrustFile(file);
  const doc = labelled(file, () => signTrustDocument(bytes, keys));
  await write(out, doc);
  io.stdout.write(`wrote ${out}: ${keys.length} signature(s) added (${keys.map((k) => tp(k.publicKey).slice(0, 16)).join(', ')})\n`);
  return 0;
}

/** `--revoke` values: public key files, or 64 hex digits (an RFC 9679 thumbprint). */
async function revokedKeys(values: Values): Promise<(SuitPublicKey | Uint8Array)[]> {
  const out: (SuitPublicKey | Uint8Array)[] = [];
  for (const v of strings(values, 'revoke')) out.push(/^[0-9a-fA-F]{64}$/.test(v) ? hexToBytes(v.toLowerCase()) : await readPublicKey(v));
  return out;
}

/** `revoke --sequence N`: a revocation list of the --revoke keys. */
export async function revoke(values: Values, positionals: string[], io: CliIo): Promise<number> {
  if (positionals.length > 0) throw new UsageError('revoke: unexpected argument');
  const out = output(values, 'revoke');
  const sequence = intOption('sequence', values.sequence, 1, Number.MAX_SAFE_INTEGER);
  if (sequence === undefined) throw new UsageError('revoke: --sequence N is required (above the list devices hold)');
  const revoked = await revokedKeys(values);
  const keys = await privateKeys(values);
  const doc = createRevocationList({ sequence, revoked }, keys);
  await write(out, doc);
  io.stdout.write(`wrote ${out}: revocation list ${sequence}, ${revoked.length} key(s) revoked, ${keys.length} signature(s)\n`);
  return 0;
}

/** `transfer --owner-key KEY`: a transfer of authority signed by the owner. */
export async function transfer(values: Values, positionals: string[], io: CliIo): Promise<number> {
  if (positionals.length > 0) throw new UsageError('transfer: unexpected argument');
  const out = output(values, 'transfer');
  const ownerFile = str(values, 'owner-key');
  if (ownerFile === undefined) throw new UsageError('transfer: --owner-key FILE (the owner\'s private key) is required');
  const setFile = str(values, 'set');
  const set = setFile === undefined ? undefined : await readTrustSetJson(setFile, false);
  const given = intOption('version', values.version, 1, Number.MAX_SAFE_INTEGER);
  if (set?.versionGiven && given !== undefined) throw new UsageError('transfer: the version is in --set\'s JSON; do not give --version too');
  const version = set?.versionGiven ? set.version : given;
  if (version === undefined) throw new UsageError('transfer: --version N is required (above the devices\' trust version)');
  const sourceOpt = str(values, 'source');
  if (sourceOpt !== undefined && set?.source !== undefined) throw new UsageError('transfer: the source is in --set\'s JSON; do not give --source too');
  const source = sourceOpt ?? set?.source;
  const newOwner = str(values, 'new-owner');
  const owner = newOwner === undefined ? undefined : await readPublicKey(newOwner);
  const ownerKey = await readPrivateKey(ownerFile);
  const doc = labelled(setFile ?? out, () =>
    createOwnerTransfer({ version, ...(set ? { trust: { anchors: set.anchors, roles: set.roles } } : {}), ...(source === undefined ? {} : { source }), ...(owner ? { owner } : {}) }, ownerKey),
  );
  await write(out, doc);
  const what = [set && `${set.anchors.length} anchors, ${set.roles.length} roles`, source && `source ${source}`, owner && `new owner ${tp(owner)}`].filter(Boolean).join(', ');
  io.stdout.write(`wrote ${out}: owner transfer to trust version ${version} (${what}), signed by owner ${tp(ownerKey.publicKey)}\n`);
  return 0;
}

/** `chain DOC...`: the chain a server serves, from updates and transfers. */
export async function chain(values: Values, positionals: string[], io: CliIo): Promise<number> {
  if (positionals.length === 0) throw new UsageError('chain: give the trust updates and owner transfers, in any order');
  const out = output(values, 'chain');
  const docs: Uint8Array[] = [];
  for (const f of positionals) {
    const bytes = await readTrustFile(f);
    const d = labelled(f, () => describeTrustFile(bytes));
    if (d.type !== 'trust update' && d.type !== 'owner transfer') throw new CoapfwError('DOCUMENT_TYPE', `${f}: a ${String(d.type)} does not belong in a trust chain`, { path: f });
    docs.push(bytes);
  }
  await write(out, encodeTrustChain(docs));
  io.stdout.write(`wrote ${out}: trust chain of ${docs.length} document(s)\n`);
  return 0;
}

/** `inspect FILE | --flash FILE`: describe, without verifying. */
export async function inspect(values: Values, positionals: string[], io: CliIo): Promise<number> {
  const flash = str(values, 'flash');
  let d;
  if (flash !== undefined) {
    if (positionals.length > 0) throw new UsageError('inspect: give a FILE or --flash FILE, not both');
    const dev = await openFileDevice(flash, { create: false });
    try {
      const state = await readDeviceTrust(dev.flash, dev.layout);
      d = state === undefined ? { type: 'trust state', provisioned: false } : describeState(state);
    } finally {
      await dev.flash.close();
    }
  } else {
    const file = one(positionals, 'inspect', 'FILE (or --flash FILE)');
    const bytes = await readTrustFile(file);
    d = labelled(file, () => describeTrustFile(bytes));
  }
  if (values.json) jsonLine(io, d);
  else io.stdout.write(d.provisioned === false ? 'trust state: not provisioned (the device refuses every update)\n' : trustText(d));
  return 0;
}

/** `apply DOC... --flash FILE`: hand documents to a simulated device directly. */
export async function apply(values: Values, positionals: string[], io: CliIo): Promise<number> {
  const flash = str(values, 'flash');
  if (flash === undefined) throw new UsageError('apply: --flash FILE is required');
  if (positionals.length === 0) throw new UsageError('apply: give one or more trust documents or chains');
  const docs: Uint8Array[] = [];
  for (const f of positionals) docs.push(await readTrustFile(f));
  const dev = await openFileDevice(flash, { create: false });
  try {
    const trust = await openDeviceTrust(dev.flash, dev.layout);
    const before = trust.state;
    const done = await applyTrustDocuments(trust, docs);
    const after = trust.state;
    const summary = { trustVersion: after.version, revocationSequence: after.revocation.sequence, changed: after !== before, applied: done, source: after.source ?? null };
    if (values.json) jsonLine(io, summary);
    else io.stdout.write(`${flash}: trust version ${before.version} -> ${after.version}, revocation list ${before.revocation.sequence} -> ${after.revocation.sequence}${after.source !== before.source ? `, source ${after.source ?? 'none'}` : ''}${after === before ? ' (already held: nothing written)' : ''}\n`);
    return 0;
  } finally {
    await dev.flash.close();
  }
}
