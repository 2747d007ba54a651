/**
 * `coapfw device`: a simulated constrained device on a flash file. `update`
 * runs one update (power on, fetch, verify, download, install, reboot into
 * the test image, confirm); `boot`, `confirm` and `status` act on the file.
 * A thin shell over device/: everything here is callable from code.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { szxForSize } from '../codec/block.js';
import { confirm, readBootState } from '../device/boot.js';
import { CrashingFlash } from '../device/crash-flash.js';
import { bootStatus, powerOn } from '../device/device.js';
import { postStatus } from '../device/report.js';
import { openFileDevice, type FileDevice } from '../device/file-device.js';
import type { UpdateEvent } from '../device/states.js';
import { runUpdate } from '../device/updater.js';
import { CoapfwError } from '../errors.js';
import { Journal } from '../flash/journal.js';
import { parsePublicKey } from '../suit/keys.js';
import { openClient } from '../transport/client.js';
import { parsePskKey } from '../transport/dtls/psk-store.js';
import { intOption, parse, UsageError, type CliCommand, type CliIo } from './common.js';
import { progressBar } from './progress.js';

const HELP = `usage: coapfw device update MANIFEST_URI --flash FILE --trust PUBFILE [options]
       coapfw device boot --flash FILE [--no-confirm]
       coapfw device confirm --flash FILE
       coapfw device status --flash FILE

A simulated device whose flash chip is FILE (created and provisioned with a
small factory image, sequence number 0, when missing).

update: power on (boot, confirm a pending test image), fetch the SUIT
envelope at MANIFEST_URI, verify it (signature by PUBFILE, anti-rollback,
vendor/class), download the image block by block into the secondary slot
(resuming from the journal after a kill or power loss), verify its digest,
request a test boot, reboot into it and confirm it. Prints one JSON line:
{"result", "installedSequence", "blocksFetched", "blocksResumed", ...}.
Exit code 0 when installed or up to date, 1 otherwise.
The image is fetched from the manifest's server (absolute image URIs are
resolved, but only their path is used). The JSON status is also POSTed to
the server's status tracker at /status/DEVICE_ID (best effort).

options:
  --flash FILE          the flash file (required)
  -t, --trust PUBFILE   trusted public key: PEM, COSE_Key or hex (update)
  --flash-size N        size of a new flash file in bytes (default 1048576)
  --vendor-id HEX       device vendor UUID (16 bytes)
  --class-id HEX        device class UUID (16 bytes)
  --block-size N        Block2 size to ask for: 16..1024 (default 1024)
  --retries N           attempts per block (default 5)
  --device-id ID        name in status reports (default: sim-<flash file name>)
  --status-path PATH    where to POST the status (default /status/DEVICE_ID)
  --no-report           do not POST the status
  --psk-identity ID     PSK identity for coaps://
  --psk-key KEY         PSK for coaps:// (0x<hex>, hex:<hex> or text)
  --no-reboot           stop after requesting the test boot
  --no-confirm          boot the test image without confirming it (it reverts on the next boot)
  --crash-after-ops N   fault injection (update): a power cut at flash operation N
                        (0-based, counted in this run): half of it lands, then the
                        process kills itself with SIGKILL
  -h, --help            this text
`;

const OPTIONS = {
  flash: { type: 'string' },
  trust: { type: 'string', short: 't' },
  'flash-size': { type: 'string' },
  'vendor-id': { type: 'string' },
  'class-id': { type: 'string' },
  'block-size': { type: 'string' },
  retries: { type: 'string' },
  'status-path': { type: 'string' },
  'device-id': { type: 'string' },
  'no-report': { type: 'boolean' },
  'psk-identity': { type: 'string' },
  'psk-key': { type: 'string' },
  'no-reboot': { type: 'boolean' },
  'no-confirm': { type: 'boolean' },
  'crash-after-ops': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function uuid(name: string, v: unknown): Uint8Array | undefined {
  if (v === undefined) return undefined;
  const s = String(v).replace(/-/g, '');
  if (!/^([0-9a-fA-F]{2}){16}$/.test(s)) throw new UsageError(`--${name}: expected 16 bytes of hex, got '${String(v)}'`);
  return Uint8Array.from(Buffer.from(s, 'hex'));
}

function blockSzx(v: unknown): number | undefined {
  const n = intOption('block-size', v, 16, 1024);
  if (n === undefined) return undefined;
  try {
    return szxForSize(n);
  } catch {
    throw new UsageError(`--block-size: expected a power of two 16..1024, got ${n}`);
  }
}

async function trustKey(path: string) {
  const b = await readFile(path);
  const text = /^[\x09\x0a\x0d\x20-\x7e]*$/.test(b.toString('latin1'));
  try {
    return parsePublicKey(text ? b.toString('utf8') : new Uint8Array(b));
  } catch (e) {
    if (e instanceof CoapfwError) throw new CoapfwError(e.code, `${path}: ${e.message}`, { cause: e });
    throw e;
  }
}

function pskOption(uri: string, identity: unknown, key: unknown) {
  if (identity === undefined && key === undefined) return undefined;
  if (!uri.toLowerCase().startsWith('coaps:')) throw new UsageError('--psk-identity and --psk-key are for coaps:// URIs');
  if (typeof identity !== 'string' || identity === '' || typeof key !== 'string') throw new UsageError('coaps:// needs --psk-identity ID and --psk-key KEY');
  return { identity, key: parsePskKey(key, '--psk-key') };
}

function statusPath(values: Record<string, unknown>): string | undefined {
  if (values['no-report'] === true) return undefined;
  if (typeof values['status-path'] === 'string') return values['status-path'];
  const id = typeof values['device-id'] === 'string' ? values['device-id'] : `sim-${basename(String(values.flash))}`;
  const clean = id.replace(/[^A-Za-z0-9._:-]/g, '_').slice(0, 64);
  return `/status/${encodeURIComponent(clean)}`;
}

function line(io: CliIo, obj: unknown): void {
  io.stdout.write(`${JSON.stringify(obj)}\n`);
}

/** Everything `update` needs from its arguments, checked before the flash file is touched. */
async function updateArgs(uri: string, values: Record<string, unknown>) {
  if (typeof values.trust !== 'string') throw new UsageError('update: --trust PUBFILE is required');
  return {
    uri,
    trust: { anchors: [{ name: values.trust, publicKey: await trustKey(values.trust) }] },
    vendorId: uuid('vendor-id', values['vendor-id']),
    classId: uuid('class-id', values['class-id']),
    szx: blockSzx(values['block-size']),
    attempts: intOption('retries', values.retries, 1, 100) ?? 5,
    crashAt: intOption('crash-after-ops', values['crash-after-ops'], 0, Number.MAX_SAFE_INTEGER),
    psk: pskOption(uri, values['psk-identity'], values['psk-key']),
    statusPath: statusPath(values),
    reboot: values['no-reboot'] !== true,
    confirm: values['no-confirm'] !== true,
  };
}

async function update(a: Awaited<ReturnType<typeof updateArgs>>, dev: FileDevice, io: CliIo): Promise<number> {
  const { uri, crashAt, szx, vendorId, classId } = a;
  const { layout } = dev;
  const flash = new CrashingFlash(dev.flash, crashAt, () => {
    process.kill(process.pid, 'SIGKILL');
    throw new CoapfwError('POWER_CUT', 'simulated power cut');
  });
  const before = await powerOn(flash, layout);
  const client = await openClient(uri, { psk: a.psk });
  const bar = progressBar(io, 'image');
  const onEvent = (e: UpdateEvent): void => {
    if (e.type === 'block') bar.update(e.offset + e.bytes, e.imageSize);
    else if (e.type === 'resume' && e.fromBlock > 0) io.stderr.write(`resuming at block ${e.fromBlock} (${e.phase})\n`);
    else if (e.type === 'restart') io.stderr.write(`download restarted: ${e.reason}\n`);
    else if (e.type === 'retry') io.stderr.write(`retry ${e.attempt} in ${Math.round(e.delayMs)} ms after ${e.error}\n`);
  };
  let status;
  let after = before;
  const path = a.statusPath;
  try {
    status = await runUpdate({
      flash,
      layout,
      request: client.request,
      manifestUri: uri,
      runtime: client.runtime,
      trust: a.trust,
      vendorId,
      classId,
      szx,
      blockRetry: { attempts: a.attempts, baseMs: 1000, maxMs: 30_000 },
      statusPath: path,
      onEvent,
    });
    bar.done();
    if (status.result === 'installed' && a.reboot) {
      after = await powerOn(flash, layout, { selfTest: () => a.confirm });
      const report = bootStatus(after);
      if (report && path !== undefined) await postStatus(client.request, path, report);
    }
  } finally {
    bar.done();
    await client.close();
  }
  line(io, {
    ...status,
    installedSequence: after.installedSequence,
    bootMode: after.boot.mode,
    boot: after.outcome,
    running: hex(after.boot.image.digest),
    provisioned: dev.provisioned,
    flashOps: flash.ops,
  });
  return status.result === 'installed' || status.result === 'up-to-date' ? 0 : 1;
}

/** `coapfw device`. */
export const deviceCommand: CliCommand = async (args, io) => {
  const [sub, ...rest] = args;
  const { values, positionals } = parse(rest, OPTIONS);
  if (sub === undefined || sub === '--help' || sub === '-h' || values.help) {
    io.stdout.write(HELP);
    return sub === undefined ? 2 : 0;
  }
  if (typeof values.flash !== 'string') throw new UsageError('--flash FILE is required');
  const size = intOption('flash-size', values['flash-size'], 7 * 4096, 2 ** 31);
  const expected = sub === 'update' ? 1 : 0;
  if (!['update', 'boot', 'confirm', 'status'].includes(sub)) throw new UsageError(`unknown sub-command '${sub}'`);
  if (positionals.length !== expected) throw new UsageError(sub === 'update' ? 'update: expected exactly one MANIFEST_URI' : `${sub}: unexpected argument`);
  const prepared = sub === 'update' ? await updateArgs(positionals[0]!, values) : undefined;
  const dev = await openFileDevice(values.flash, { size, create: sub === 'update' || sub === 'boot' });
  try {
    switch (sub) {
      case 'update':
        return await update(prepared!, dev, io);
      case 'boot': {
        const p = await powerOn(dev.flash, dev.layout, { selfTest: () => values['no-confirm'] !== true });
        line(io, { mode: p.boot.mode, outcome: p.outcome, actions: p.boot.actions, running: hex(p.boot.image.digest), size: p.boot.image.size, installedSequence: p.installedSequence });
        return 0;
      }
      case 'confirm': {
        const changed = await confirm(dev.flash, dev.layout);
        line(io, { confirmed: true, changed });
        return 0;
      }
      default: {
        const state = await readBootState(dev.flash, dev.layout);
        const rec = (await Journal.open(dev.flash, dev.layout)).latest();
        line(io, {
          primaryMode: state?.primaryMode,
          pending: state?.pending,
          running: state?.primary ? hex(state.primary.digest) : null,
          journal: rec ? { phase: rec.phase, installedSeq: rec.installedSeq, nextBlock: rec.nextBlock, imageSize: rec.imageSize } : null,
        });
        return 0;
      }
    }
  } finally {
    await dev.flash.close();
  }
};
