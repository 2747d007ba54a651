/**
 * `coapfw device run`: a simulated device that stays up as a device would,
 * following the update service (device/agent.ts) on a flash file, until a
 * signal stops it. A thin shell: everything here is `DeviceAgent`.
 */
import { writeSync } from 'node:fs';
import { basename } from 'node:path';
import { codeToString } from '../codec/numbers.js';
import { parseCoapUri } from '../codec/uri.js';
import { openClient } from '../client/open.js';
import { DeviceAgent } from '../device/agent.js';
import { agentLink, type AgentEvent } from '../device/agent-options.js';
import { AGENT_MODES, type AgentMode, type OfferAnswer } from '../device/agent-wire.js';
import { CrashingFlash } from '../device/crash-flash.js';
import type { FileDevice, FileDeviceOptions } from '../device/file-device.js';
import type { UpdateEvent } from '../device/states.js';
import { CoapfwError } from '../errors.js';
import { COMMON_OPTIONS, intOption, optionValue, parse, str, verbosity, type Values } from './args.js';
import { jsonLine, UsageError, type CliCommand, type CliIo } from './common.js';
import { pskCredentials } from './credentials.js';
import { openDevice, provisioningTrust } from './device-trust.js';
import { blockSizeOption, uuidOption } from './inputs.js';
import { stopOnSignals, watchParent, type StopSignal } from './signals.js';

const HELP = `usage: coapfw device run --flash FILE --server URI --trust PUBFILE --vendor-id UUID
                         --class-id UUID --mode client|server|negotiated [options]

A simulated device on the flash chip FILE (created and provisioned with a
small factory image when missing) that stays up and follows the update
service at URI: it powers on (boot, confirm a pending test image), registers,
keeps its Observe registration alive across server restarts, and updates as
its mode says: client, when the class's newest manifest has a newer sequence;
server, when the server says "update" (at once); negotiated, it answers the
server's offer with "now" or "defer S seconds" (--defer) and updates when the
server triggers it. It says how long it will be unavailable before it starts,
downloads and installs with the power-safe updater (resuming from the journal
after a kill or power loss), reboots into the new image, confirms it, and
reports every step to the server. SIGINT, SIGTERM and SIGHUP stop it cleanly
(flash file closed, exit 130, 143, 129); the next run resumes.

options:
  --flash FILE          the flash file (required)
  --server URI          the update server, coap://HOST[:PORT] or coaps://... (required)
  -t, --trust PUBFILE   trusted public key: PEM, COSE_Key or hex (required)
  --vendor-id UUID      device vendor UUID (required)
  --class-id UUID       device class UUID (required)
  --mode MODE           client, server or negotiated (required)
  --group G             the device's group (rollouts may target one)
  --device-id ID        id to register under (default: sim-<flash file name>;
                        over coaps without it, the server names the device by
                        its PSK identity)
  --defer S             negotiated mode: answer offers with "defer S seconds"
                        (default 0: "now")
  --progress-step P     a downloading report every P percent (default 10)
  --flash-size N        size of a new flash file in bytes (default 1048576)
  --block-size N        Block2 size to ask for: 16..1024 (default 1024)
  --retries N           attempts per block (default 5)
  --no-qblock2          block-wise transfer (RFC 7959) only; by default images
                        come with Q-Block2 (RFC 9177) when the server does it
  --psk-identity ID     PSK identity for coaps://
  --psk-key KEY         PSK for coaps:// (0x<hex>, hex:<hex> or text; visible in ps)
  --credentials FILE    coaps identity and key from FILE ("identity key" lines, mode 0600)
  --no-confirm          the new image fails its self-test (it reverts)
  --crash-after-ops N   fault injection: a power cut at flash operation N of this
                        run (half of it lands, then the process SIGKILLs itself)
  --json                every event as a JSON line on stdout
  -v, --verbose         more events on stderr; -vv: every block
  -h, --help            this text
`;

const OPTIONS = {
  flash: { type: 'string' },
  server: { type: 'string' },
  trust: { type: 'string', short: 't' },
  'vendor-id': { type: 'string' },
  'class-id': { type: 'string' },
  mode: { type: 'string' },
  group: { type: 'string' },
  'device-id': { type: 'string' },
  defer: { type: 'string' },
  'progress-step': { type: 'string' },
  'flash-size': { type: 'string' },
  'block-size': { type: 'string' },
  retries: { type: 'string' },
  'no-qblock2': { type: 'boolean' },
  'psk-identity': { type: 'string' },
  'psk-key': { type: 'string' },
  credentials: { type: 'string' },
  'no-confirm': { type: 'boolean' },
  'crash-after-ops': { type: 'string' },
  ...COMMON_OPTIONS,
} as const;

function required(values: Values, name: string): string {
  const v = str(values, name);
  if (v === undefined) throw new UsageError(`run: --${name} is required`);
  return v;
}

/** Everything `run` needs, checked before the flash file is touched. */
async function runArgs(values: Values) {
  const flash = required(values, 'flash');
  const server = required(values, 'server');
  const scheme = optionValue(() => parseCoapUri(server)).scheme;
  required(values, 'trust'); // read below, by provisioningTrust
  const mode = required(values, 'mode');
  if (!AGENT_MODES.includes(mode as AgentMode)) throw new UsageError(`run: --mode must be one of ${AGENT_MODES.join(', ')}, got '${mode}'`);
  const defer = intOption('defer', values.defer, 0, 0x7fffffff);
  if (defer !== undefined && mode !== 'negotiated') throw new UsageError('run: --defer is for --mode negotiated');
  const psk = await pskCredentials(scheme, values);
  const deviceId = str(values, 'device-id') ?? (psk ? undefined : `sim-${basename(flash)}`.replace(/[^A-Za-z0-9._:-]/g, '_').slice(0, 64));
  return {
    flash,
    server,
    psk,
    mode: mode as AgentMode,
    deviceId,
    group: str(values, 'group'),
    answer: (defer ?? 0) === 0 ? ({ answer: 'now' } as const) : ({ answer: 'defer', defer: defer! } as const),
    vendorId: uuidOption('vendor-id', required(values, 'vendor-id'))!,
    classId: uuidOption('class-id', required(values, 'class-id'))!,
    progressStep: intOption('progress-step', values['progress-step'], 1, 100),
    size: intOption('flash-size', values['flash-size'], 7 * 4096, 2 ** 31),
    szx: blockSizeOption(values['block-size']),
    attempts: intOption('retries', values.retries, 1, 100) ?? 5,
    qblock2: values['no-qblock2'] !== true,
    crashAt: intOption('crash-after-ops', values['crash-after-ops'], 0, Number.MAX_SAFE_INTEGER),
    confirm: values['no-confirm'] !== true,
    json: values.json === true,
    verbose: verbosity(values),
    // The device's trust store is provisioned with it when the flash file is new (as for `device update`).
    trust: await provisioningTrust(values),
  };
}
type RunArgs = Awaited<ReturnType<typeof runArgs>>;

const code = (c: number | undefined): string => (c === undefined ? 'no answer' : codeToString(c));

/** The update events `run` tells of as text (the rest only with --json). */
function updateLine(e: UpdateEvent): [number, string] | undefined {
  if (e.type === 'block') return [2, `block ${e.num} at ${e.offset}`];
  if (e.type === 'resume' && e.fromBlock > 0) return [0, `resuming at block ${e.fromBlock} (${e.phase})`];
  if (e.type === 'transfer') return [1, e.mode === 'qblock2' ? 'the image came with Q-Block2 (RFC 9177)' : 'the image comes by block-wise transfer (RFC 7959)'];
  return undefined;
}

/** One line of text for an event, and the verbosity it needs; undefined for none. */
function describe(e: AgentEvent): [number, string] | undefined {
  switch (e.type) {
    case 'powered':
      return [0, `powered on: running ${e.running.slice(0, 16)}…, installed sequence ${e.installed}${e.outcome === 'none' ? '' : ` (${e.outcome})`}`];
    case 'registered':
      return [0, `registered as ${e.id} (report counter ${e.rseq}, poll ${e.poll} s)`];
    case 'register-failed':
      return [1, `registration failed: ${e.error}`];
    case 'observing':
      return [1, `observing ${e.path}`];
    case 'observe-lost':
      return [0, `observation lost (${e.reason}): registering again`];
    case 'command':
      return e.command.op === 'none' ? [1, 'command: none'] : [0, `command ${e.command.id}: ${e.command.op} to sequence ${e.command.seq}${e.command.urgency ? ` (${e.command.urgency})` : ''}`];
    case 'manifest':
      return [1, `class manifest: sequence ${e.seq}`];
    case 'ignored':
      return [0, `ignored a notification on ${e.path}: ${e.error}`];
    case 'answered':
      return [0, `answered offer ${e.commandId}: ${e.answer.answer === 'now' ? 'now' : `defer ${e.answer.defer} s`} (${code(e.code)})`];
    case 'downtime':
      return [0, `updating to sequence ${e.seq}: unavailable for about ${e.seconds} s from now`];
    case 'update-start':
      return [0, `update to sequence ${e.target.seq} from ${e.target.manifest}`];
    case 'update-end': {
      const s = e.status;
      const detail = s ? `${s.result}${s.error ? ` ${s.error}` : ''}, ${s.blocksFetched} blocks fetched, ${s.blocksResumed} resumed` : '';
      return [0, `update to sequence ${e.target.seq}: ${e.outcome.kind === 'done' ? (e.outcome.gaveUp ? 'given up' : `running sequence ${e.outcome.installed}`) : e.outcome.kind} (${detail})`];
    }
    case 'report':
      if (e.outcome.kind === 'dropped') return [0, `report ${e.outcome.report.state} refused (${code(e.outcome.code)}), dropped`];
      return e.outcome.kind === 'accepted' ? [1, `reported ${e.outcome.report.state} (${e.outcome.rseq})`] : [1, `report: ${e.outcome.kind}`];
    case 'waiting':
      return [1, `waiting ${Math.round(e.ms)} ms`];
    case 'state':
      return [1, `state ${e.state}`];
    case 'update':
      return updateLine(e.event);
    case 'stopped':
      return [0, `stopped${e.error ? `: ${e.error}` : ''}`];
    default: {
      const never: never = e;
      return never;
    }
  }
}

function printer(a: RunArgs, io: CliIo): (e: AgentEvent) => void {
  return (e) => {
    if (a.json) {
      if (e.type !== 'update' || a.verbose >= 2 || e.event.type !== 'block') jsonLine(io, { event: e.type, ...e });
      return;
    }
    const line = describe(e);
    if (line !== undefined && a.verbose >= line[0]) io.stderr.write(`coapfw device: ${line[1]}\n`);
  };
}

async function run(a: RunArgs, dev: FileDevice, io: CliIo, signal: AbortSignal): Promise<number> {
  const flash = new CrashingFlash(dev.flash, a.crashAt, () => {
    process.kill(process.pid, 'SIGKILL');
    throw new CoapfwError('POWER_CUT', 'simulated power cut');
  });
  const client = await openClient(a.server, { psk: a.psk, dtls: { signal } });
  try {
    const agent = new DeviceAgent({
      flash,
      layout: dev.layout,
      server: a.server,
      link: agentLink(client),
      vendorId: a.vendorId,
      classId: a.classId,
      mode: a.mode,
      deviceId: a.deviceId,
      group: a.group,
      answerOffer: (): OfferAnswer => a.answer,
      selfTest: () => a.confirm,
      progressStepPercent: a.progressStep,
      update: { szx: a.szx, qblock2: a.qblock2, blockRetry: { attempts: a.attempts, baseMs: 1000, maxMs: 30_000 } },
      onEvent: printer(a, io),
    });
    await agent.start();
    const stopped = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    const ended = await Promise.race([agent.done.then(() => 'done' as const), stopped.then(() => 'signal' as const)]);
    if (ended === 'signal') await agent.stop();
    return 0;
  } finally {
    await client.close();
  }
}

/**
 * Under npx/npm exec: when npm goes away (a SIGKILL of npm reaches only npm),
 * stop at once as a device losing power would, with no further flash write
 * (synchronously: nothing may run after this point). Returns the unwatch.
 */
export function exitWhenNpmIsGone(): () => void {
  return watchParent(() => {
    try {
      writeSync(2, 'coapfw device: the npm process that started us is gone: stopping now, as a power cut would\n');
    } catch {
      // stderr may be gone with npm; stopping is what matters.
    }
    process.exit(129);
  });
}

/** `coapfw device run` (its arguments after `run`). */
export const deviceRunCommand: CliCommand = async (args, io) => {
  const { values } = parse(args, OPTIONS, false);
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  const a = await runArgs(values);
  return withDeviceFile(a.flash, { size: a.size, create: true, trust: a.trust }, io, 'the next run resumes', async (dev, stop) => {
    await run(a, dev, io, stop.signal);
    stop.throwIfCaught();
    return 0;
  });
};

/**
 * The chip file open for the life of `work`, as a device process holds its
 * flash: a signal stops the work and the file is closed cleanly (`resumes`
 * says what comes next), and npm going away stops it as a power cut would.
 */
export async function withDeviceFile<T>(path: string, options: FileDeviceOptions, io: CliIo, resumes: string, work: (dev: FileDevice, stop: StopSignal) => Promise<T>): Promise<T> {
  const stop = stopOnSignals((sig) => io.stderr.write(`${io.stderr.isTTY ? '\n' : ''}coapfw device: ${sig}: stopping; the flash file is closed cleanly and ${resumes}\n`));
  const unwatch = exitWhenNpmIsGone();
  let dev: FileDevice | undefined;
  try {
    dev = await openDevice(path, options, io);
    return await work(dev, stop);
  } catch (e) {
    stop.throwIfCaught();
    throw e;
  } finally {
    unwatch();
    stop.dispose();
    await dev?.flash.close();
  }
}
