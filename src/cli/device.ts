/**
 * `coapfw device`: a simulated constrained device on a flash file. `update`
 * runs one update (power on, fetch, verify, download, install, reboot into
 * the test image, confirm); `boot`, `confirm` and `status` act on the file.
 * A thin shell over device/: everything here is callable from code.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { basename } from 'node:path';
import { parseCoapUri } from '../codec/uri.js';
import { confirm, readBootState } from '../device/boot.js';
import { CrashingFlash } from '../device/crash-flash.js';
import { powerOn } from '../device/device.js';
import { updateDevice } from '../device/device-update.js';
import type { FileDevice } from '../device/file-device.js';
import type { UpdateEvent } from '../device/states.js';
import { CoapfwError } from '../errors.js';
import { Journal } from '../flash/journal.js';
import { openClient } from '../client/open.js';
import { COMMON_OPTIONS, intOption, optionValue, parse, str, verbosity, type Values } from './args.js';
import { jsonLine, UsageError, type CliCommand, type CliIo } from './common.js';
import { pskCredentials } from './credentials.js';
import { blockSizeOption, uuidOption } from './inputs.js';
import { randomInt } from 'node:crypto';
import { statusPathFor } from '../device/privacy.js';
import { isDeviceFile, provisioningTrust, trustSummary } from './device-trust.js';
import { progressBar, type Progress } from './progress.js';
import { deviceRunCommand, withDeviceFile } from './device-run.js';
import type { StopSignal } from './signals.js';

const HELP = `usage: coapfw device update MANIFEST_URI --flash FILE [--trust PUBFILE | --trust-state FILE] [options]
       coapfw device run --flash FILE --server URI --trust PUBFILE --mode MODE ... (see 'coapfw device run --help')
       coapfw device boot --flash FILE [--no-confirm]
       coapfw device confirm --flash FILE
       coapfw device status --flash FILE

A simulated device whose flash chip is FILE (created and provisioned with a
small factory image, sequence number 0, when missing).

run: stay up and follow the update service (register, observe, update as
the mode says, report every step); see 'coapfw device run --help'.

Trust lives on the device's flash, in its trust store: --trust or
--trust-state provisions it when it was never written (a new file) and is
ignored afterwards (a note says so when it differs): rotations, revocation
lists and owner transfers change it from then on ('coapfw trust'). A device
whose trust store was never provisioned refuses every update
(TRUST_NOT_PROVISIONED). Before each manifest check the device fetches the
server's trust chain and revocation list (and over coaps its newest
revocation sequence number) and applies them.

update: power on (boot, confirm a pending test image), fetch the SUIT
envelope at MANIFEST_URI, verify it (signature by PUBFILE, anti-rollback,
vendor/class), download the image block by block into the secondary slot
(resuming from the journal after a kill or power loss), verify its digest,
request a test boot, reboot into it and confirm it. Prints one JSON line:
{"result", "installedSequence", "blocksFetched", "blocksResumed", ...}.
Exit code 0 when installed or up to date, 1 otherwise; SIGINT, SIGTERM and
SIGHUP stop it cleanly (flash file closed, exit 130, 143, 129) and the next
update resumes from the journal. Started by npx/npm exec, it stops as a device
losing power would when npm goes away (a SIGKILL of npm reaches only npm).
The image is fetched from the manifest's server (absolute image URIs are
resolved, but only their path is used). The JSON status is also POSTed to
the server's status tracker (best effort): at /status/DEVICE_ID over coaps;
over plain coap:// at /status/anon-<random, new each run> and without the
message text, so nothing in the clear names the device.

options:
  --flash FILE          the flash file (required)
  -t, --trust PUBFILE   provisioning: trust this public key (PEM, COSE_Key or hex)
                        for every component: the simple case, never rotated
  --trust-state FILE    provisioning: the trust state 'coapfw trust init' wrote
  --first-check-delay MS  wait a random 0..MS ms before the first request, so the
                        traffic does not tell when the device was switched on
                        (default 0: this command updates now)
  --flash-size N        size of a new flash file in bytes (default 1048576)
  --vendor-id UUID      device vendor UUID (8-4-4-4-12 hex digits, or 32)
  --class-id UUID       device class UUID
  --block-size N        Block2 size to ask for: 16..1024 (default 1024)
  --retries N           attempts per block (default 5)
  --no-qblock2          block-wise transfer (RFC 7959) only; by default the image
                        comes with Q-Block2 (RFC 9177) when the server does it
  --device-id ID        name in status reports over coaps (default: sim-<flash file name>)
  --status-path PATH    where to POST the status, as given, also in the clear
                        (default: see above)
  --no-report           do not POST the status
  --psk-identity ID     PSK identity for coaps://
  --psk-key KEY         PSK for coaps:// (0x<hex>, hex:<hex> or text; visible in ps)
  --credentials FILE    coaps identity and key from FILE ("identity key" lines, mode 0600)
  --no-reboot           stop after requesting the test boot
  --no-confirm          boot the test image without confirming it (it reverts on the next boot)
  --crash-after-ops N   fault injection (update): a power cut at flash operation N
                        (0-based, counted in this run): half of it lands, then the
                        process kills itself with SIGKILL
  --json                the update's events as JSON lines on stdout before the
                        result line (instead of text on stderr)
  -v, --verbose         also report state changes; -vv: every block and journal record
  -h, --help            this text

The result of every sub-command is one JSON line on stdout.
`;

const OPTIONS = {
  flash: { type: 'string' },
  trust: { type: 'string', short: 't' },
  'trust-state': { type: 'string' },
  'first-check-delay': { type: 'string' },
  'flash-size': { type: 'string' },
  'vendor-id': { type: 'string' },
  'class-id': { type: 'string' },
  'block-size': { type: 'string' },
  retries: { type: 'string' },
  'no-qblock2': { type: 'boolean' },
  'status-path': { type: 'string' },
  'device-id': { type: 'string' },
  'no-report': { type: 'boolean' },
  'psk-identity': { type: 'string' },
  'psk-key': { type: 'string' },
  credentials: { type: 'string' },
  'no-reboot': { type: 'boolean' },
  'no-confirm': { type: 'boolean' },
  'crash-after-ops': { type: 'string' },
  ...COMMON_OPTIONS,
} as const;

/** Where reports go: identity only inside coaps (device/privacy.ts). */
function statusPath(uri: string, values: Record<string, unknown>): string | undefined {
  if (values['no-report'] === true) return undefined;
  if (typeof values['status-path'] === 'string') return values['status-path'];
  const id = typeof values['device-id'] === 'string' ? values['device-id'] : `sim-${basename(String(values.flash))}`;
  const clean = id.replace(/[^A-Za-z0-9._:-]/g, '_').slice(0, 64) || '_';
  return statusPathFor(uri, clean, () => randomInt(0x10000) / 0x10000);
}

/** Everything `update` needs from its arguments, checked before the flash file is touched. */
async function updateArgs(uri: string, values: Values) {
  const scheme = optionValue(() => parseCoapUri(uri)).scheme;
  return {
    uri,
    vendorId: uuidOption('vendor-id', values['vendor-id']),
    classId: uuidOption('class-id', values['class-id']),
    szx: blockSizeOption(values['block-size']),
    attempts: intOption('retries', values.retries, 1, 100) ?? 5,
    qblock2: values['no-qblock2'] !== true,
    crashAt: intOption('crash-after-ops', values['crash-after-ops'], 0, Number.MAX_SAFE_INTEGER),
    psk: await pskCredentials(scheme, values),
    statusPath: statusPath(uri, values),
    firstCheckDelayMs: intOption('first-check-delay', values['first-check-delay'], 0, 24 * 3600_000),
    reboot: values['no-reboot'] !== true,
    confirm: values['no-confirm'] !== true,
    json: values.json === true,
    verbose: verbosity(values),
    trust: await provisioningTrust(values),
  };
}
type UpdateArgs = Awaited<ReturnType<typeof updateArgs>>;

/** The update's events: text on stderr (by verbosity), or JSON lines on stdout with --json. */
function eventPrinter(a: UpdateArgs, io: CliIo, bar: Progress): (e: UpdateEvent) => void {
  const say = (text: string): void => {
    bar.done();
    io.stderr.write(`coapfw device: ${text}\n`);
  };
  return (e) => {
    if (e.type === 'block') bar.update(e.offset + e.bytes, e.imageSize);
    const detail = e.type === 'block' || e.type === 'journal' ? 2 : e.type === 'state' || e.type === 'envelope' || e.type === 'status' || e.type === 'transfer' ? 1 : 0;
    if (a.verbose < detail) return;
    if (a.json) return jsonLine(io, { event: e.type, ...(e.type === 'status' ? { result: e.status.result, responseCode: e.responseCode } : e) });
    if (e.type === 'resume' && e.fromBlock > 0) say(`resuming at block ${e.fromBlock} (${e.phase})`);
    else if (e.type === 'restart') say(`download restarted: ${e.reason}`);
    else if (e.type === 'retry') say(`retry ${e.attempt} in ${Math.round(e.delayMs)} ms after ${e.error}`);
    else if (e.type === 'state') say(`state ${e.state}`);
    else if (e.type === 'envelope') say(`envelope: ${e.bytes} bytes, sequence ${e.sequence}, image ${e.imageSize} bytes`);
    else if (e.type === 'status') say(`status ${e.status.result}${e.responseCode === undefined ? '' : ` reported (${e.responseCode >> 5}.${String(e.responseCode & 31).padStart(2, '0')})`}`);
    else if (e.type === 'block') say(`block ${e.num} at ${e.offset}, ${e.bytes} bytes`);
    else if (e.type === 'journal') say(`journal: next block ${e.nextBlock}`);
    else if (e.type === 'transfer') say(e.mode === 'qblock2' ? 'the image came with Q-Block2 (RFC 9177)' : 'the image comes by block-wise transfer (RFC 7959)');
  };
}

async function update(a: UpdateArgs, dev: FileDevice, io: CliIo, stop: StopSignal): Promise<number> {
  const { uri, crashAt, szx, vendorId, classId } = a;
  const { layout } = dev;
  const flash = new CrashingFlash(dev.flash, crashAt, () => {
    process.kill(process.pid, 'SIGKILL');
    throw new CoapfwError('POWER_CUT', 'simulated power cut');
  });
  const client = await openClient(uri, { psk: a.psk, dtls: { signal: stop.signal } });
  const bar = progressBar(io, 'image');
  let r;
  try {
    // Power on, update, reboot into the new image: every outcome (a failed power-on too) is one status, reported.
    r = await updateDevice({
      flash,
      layout,
      request: client.request,
      openStream: (l) => client.openStream(l),
      qblock2: a.qblock2,
      manifestUri: uri,
      runtime: client.runtime,
      vendorId,
      classId,
      szx,
      blockRetry: { attempts: a.attempts, baseMs: 1000, maxMs: 30_000 },
      statusPath: a.statusPath,
      firstCheckDelayMs: a.firstCheckDelayMs,
      signal: stop.signal,
      onEvent: eventPrinter(a, io, bar),
      reboot: a.reboot,
      selfTest: () => a.confirm,
    });
  } finally {
    bar.done();
    await client.close();
  }
  const { status, after } = r;
  jsonLine(io, {
    ...status,
    bootMode: after?.boot.mode ?? null,
    boot: after?.outcome ?? null,
    running: after ? bytesToHex(after.boot.image.digest) : null,
    provisioned: dev.provisioned,
    trustProvisioned: dev.trustProvisioned,
    flashOps: flash.ops,
  });
  return status.result === 'installed' || status.result === 'up-to-date' ? 0 : 1;
}

async function run(sub: string, values: Values, prepared: UpdateArgs | undefined, dev: FileDevice, io: CliIo, stop: StopSignal): Promise<number> {
  switch (sub) {
    case 'update':
      return update(prepared!, dev, io, stop);
    case 'boot': {
      const p = await powerOn(dev.flash, dev.layout, { selfTest: () => values['no-confirm'] !== true });
      jsonLine(io, { mode: p.boot.mode, outcome: p.outcome, actions: p.boot.actions, running: bytesToHex(p.boot.image.digest), size: p.boot.image.size, installedSequence: p.installedSequence });
      return 0;
    }
    case 'confirm': {
      const changed = await confirm(dev.flash, dev.layout);
      jsonLine(io, { confirmed: true, changed });
      return 0;
    }
    default: {
      const state = await readBootState(dev.flash, dev.layout);
      const rec = (await Journal.open(dev.flash, dev.layout)).latest();
      const trust = await trustSummary(dev);
      jsonLine(io, {
        primaryMode: state?.primaryMode,
        pending: state?.pending,
        running: state?.components[0]?.primary ? bytesToHex(state.components[0].primary.digest) : null,
        journal: rec ? { phase: rec.phase, installedSeq: rec.installedSeq, nextBlock: rec.nextBlock, imageSize: rec.imageSize } : null,
        trust,
      });
      return 0;
    }
  }
}

/** `coapfw device`. */
export const deviceCommand: CliCommand = async (args, io) => {
  const [sub, ...rest] = args;
  if (sub === 'run') return deviceRunCommand(rest, io);
  const { values, positionals } = parse(rest, OPTIONS);
  if (sub === undefined || sub === '--help' || sub === '-h' || values.help) {
    (sub === undefined ? io.stderr : io.stdout).write(HELP);
    return sub === undefined ? 2 : 0;
  }
  const flashFile = str(values, 'flash');
  if (flashFile === undefined) throw new UsageError('--flash FILE is required');
  const size = intOption('flash-size', values['flash-size'], 7 * 4096, 2 ** 31);
  const expected = sub === 'update' ? 1 : 0;
  if (!['update', 'boot', 'confirm', 'status'].includes(sub)) throw new UsageError(`unknown sub-command '${sub}' (run, update, boot, confirm, status)`);
  if (positionals.length !== expected) throw new UsageError(sub === 'update' ? 'update: expected exactly one MANIFEST_URI' : `${sub}: unexpected argument`);
  const prepared = sub === 'update' ? await updateArgs(positionals[0]!, values) : undefined;
  // A device is given its trust when it is made, never later by a stray option (device/trust-device.ts).
  if (prepared && prepared.trust === undefined && !(await isDeviceFile(flashFile))) {
    throw new UsageError('update: a new device needs --trust PUBFILE or --trust-state FILE to be provisioned with');
  }
  // From here on the flash file is open: a signal stops the work and closes it.
  const options = { size, create: sub === 'update' || sub === 'boot', trust: prepared?.trust };
  return withDeviceFile(flashFile, options, io, 'the next update resumes from the journal', (dev, stop) => run(sub, values, prepared, dev, io, stop));
};
