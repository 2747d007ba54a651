/**
 * `coapfw publish IMAGE`: sign a SUIT envelope for an image and publish it,
 * to an update server over CoAP (`--server`: the image uploaded block-wise
 * unless the server has it, then the release), straight into a database
 * (`--db`), or into a directory `coapfw serve` serves (`--dir`).
 */
import { basename } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { readFileBounded } from '../bounded-read.js';
import { openClient, type CoapClient } from '../client/open.js';
import { Code } from '../codec/numbers.js';
import { parseCoapUri } from '../codec/uri.js';
import { isCoapfwError } from '../errors.js';
import { URGENCIES, type Urgency } from '../service/model.js';
import { ClassTargeting } from '../service/modes.js';
import { openStore } from '../service/open.js';
import { directorySequences, publishToDirectory } from '../service/publish-dir.js';
import { latestRemoteSequence, publishRemote } from '../service/publish-client.js';
import { publishEnvelope } from '../service/publish.js';
import { createEnvelope } from '../suit/create.js';
import { describeImage } from '../suit/image-input.js';
import type { SuitPrivateKey } from '../suit/keys.js';
import type { TrustPolicy } from '../suit/trust.js';
import { systemRuntime } from '../transport/runtime.js';
import { COMMON_OPTIONS, intOption, optionValue, parse, str, strings, verbosity, type Values } from './args.js';
import { errorJson, jsonLine, UsageError, type CliCommand, type CliIo } from './common.js';
import { pskCredentials } from './credentials.js';
import { blockSizeOption, INPUT_LIMITS, readPrivateKey, uuidOption } from './inputs.js';
import { progressBar } from './progress.js';
import { dbName, trustOf } from './serve-service.js';
import { stopOnSignals } from './signals.js';

const HELP = `usage: coapfw publish IMAGE --key KEY --vendor UUID --class UUID (--seq N | --bump)
                      (--server URI [--credentials FILE | --psk-identity ID --psk-key KEY] | --db URL | --dir DIR)
                      [--urgency critical|normal|configuration] [--downtime S]
                      [--trust KEY.pub ...] [--block-size N] [--json] [-v]

Sign a SUIT envelope for IMAGE (its SHA-256, size and content address
/fw/sha256/<hex>, vendor and class conditions, the sequence number) with KEY
and publish it:
  --server URI   an update server (coapfw serve): the image is uploaded
                 block-wise unless the server has it, then the release is
                 posted; publishing needs coaps:// and an identity with the
                 publisher role
  --db URL       straight into the service's database (sqlite:PATH,
                 postgres://...), with the checks the server makes; devices in
                 server-initiated and negotiated mode get their commands
  --dir DIR      into a directory coapfw serve serves: DIR/<class>/<seq>.suit,
                 DIR/<class>/latest.suit and the image, each written under a
                 temporary name and renamed, never half-written
--bump takes the next sequence after the newest there (and the next again if
another publisher takes it first); --seq N must be above the newest.

options:
  --key KEY             the signing key (coapfw keygen)
  --vendor UUID         vendor id of the devices
  --class UUID          class id of the devices
  --seq N               the release's sequence number
  --bump                the newest sequence published there, plus one
  --urgency U           critical (push at once), normal (spread, default) or
                        configuration (when the device is idle)
  --downtime S          seconds the device is unavailable while installing
  --trust KEY.pub       for --db and --dir: keys the release must verify under
                        (default: the signing key's own)
  --psk-identity ID     PSK identity for coaps://
  --psk-key KEY         PSK for coaps:// (0x<hex>, hex:<hex>, or text; visible in ps)
  --credentials FILE    coaps identity and key from FILE ("identity key" lines, mode 0600)
  --block-size N        upload block size: 16..1024 (default 1024)
  --max-image-size N    largest image read (default 1 GiB)
  --json                one JSON line with the result on stdout
  -v, --verbose         say what happens on stderr
  -h, --help            this text
`;

const OPTIONS = {
  ...COMMON_OPTIONS,
  key: { type: 'string' },
  vendor: { type: 'string' },
  class: { type: 'string' },
  seq: { type: 'string' },
  bump: { type: 'boolean' },
  urgency: { type: 'string' },
  downtime: { type: 'string' },
  server: { type: 'string' },
  db: { type: 'string' },
  dir: { type: 'string' },
  trust: { type: 'string', multiple: true },
  'psk-identity': { type: 'string' },
  'psk-key': { type: 'string' },
  credentials: { type: 'string' },
  'block-size': { type: 'string' },
  'max-image-size': { type: 'string' },
} as const;

/** Where a release goes, and how to learn the newest sequence there. */
interface Target {
  readonly name: string;
  latest(): Promise<number | undefined>;
  publish(envelope: Uint8Array): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

interface PublishArgs {
  readonly image: string;
  readonly key: string;
  readonly vendorId: Uint8Array;
  readonly classId: Uint8Array;
  readonly seq: number | undefined;
  readonly urgency: Urgency;
  readonly downtimeS: number | undefined;
  readonly szx: number | undefined;
  readonly maxImage: number;
  readonly json: boolean;
  readonly verbose: number;
}

function need(values: Values, name: string): string {
  const v = str(values, name);
  if (v === undefined || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

function publishArgs(values: Values, positionals: string[]): PublishArgs {
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'expected the IMAGE file' : `expected one IMAGE, got ${positionals.length} arguments`);
  const destinations = ['server', 'db', 'dir'].filter((d) => values[d] !== undefined);
  if (destinations.length !== 1) throw new UsageError(destinations.length === 0 ? 'say where to publish: --server URI, --db URL or --dir DIR' : `--${destinations.join(' and --')}: give one destination`);
  const seq = intOption('seq', values.seq, 0, Number.MAX_SAFE_INTEGER);
  if ((seq === undefined) === (values.bump !== true)) throw new UsageError(seq === undefined ? 'give --seq N or --bump' : '--seq and --bump contradict each other');
  const urgency = str(values, 'urgency') ?? 'normal';
  if (!(URGENCIES as readonly string[]).includes(urgency)) throw new UsageError(`--urgency: expected ${URGENCIES.join(', ')}, got '${urgency}'`);
  return {
    image: positionals[0]!,
    key: need(values, 'key'),
    vendorId: uuidOption('vendor', need(values, 'vendor'))!,
    classId: uuidOption('class', need(values, 'class'))!,
    seq,
    urgency: urgency as Urgency,
    downtimeS: intOption('downtime', values.downtime, 0, 0x7fffffff),
    szx: blockSizeOption(values['block-size']),
    maxImage: intOption('max-image-size', values['max-image-size'], 1, Number.MAX_SAFE_INTEGER) ?? INPUT_LIMITS.image,
    json: values.json === true,
    verbose: verbosity(values),
  };
}

/** `coapfw publish`. */
export const publishCommand: CliCommand = async (args, io) => {
  const { values, positionals } = parse(args, OPTIONS);
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  const a = publishArgs(values, positionals);
  const key = await readPrivateKey(a.key);
  const image = await readFileBounded(a.image, a.maxImage, 'image');
  const stop = stopOnSignals();
  let target: Target | undefined;
  try {
    target = await openTarget(values, a, image, key, io, stop.signal);
    const result = await publishWithRetry(target, a, image, key, io);
    if (a.json) jsonLine(io, { result: 'published', ...result });
    else io.stderr.write(`${basename(a.image)}: release ${String(result.seq)} of class ${String(result.class)} published to ${target.name}${result.uploaded === false ? ' (image already there)' : ''}\n`);
    return 0;
  } catch (e) {
    if (a.json) jsonLine(io, { result: 'failed', error: errorJson(e) });
    stop.throwIfCaught();
    throw e;
  } finally {
    stop.dispose();
    await target?.close();
  }
};

/** Sign and publish; with --bump, a sequence another publisher took first moves on to the next (a few times). */
async function publishWithRetry(target: Target, a: PublishArgs, image: Uint8Array, key: SuitPrivateKey, io: CliIo): Promise<Record<string, unknown>> {
  const img = describeImage(image);
  for (let attempt = 1; ; attempt++) {
    const seq = a.seq ?? ((await target.latest()) ?? 0) + 1;
    const envelope = createEnvelope({ sequence: seq, vendorId: a.vendorId, classId: a.classId, uri: img.uri, digest: img.digest, size: img.size }, [key]);
    try {
      return { ...(await target.publish(envelope)), seq, image: bytesToHex(img.digest.bytes), envelope: bytesToHex(sha256(envelope)) };
    } catch (e) {
      if (a.seq !== undefined || attempt >= 5 || !sequenceTaken(e)) throw e;
      if (a.verbose > 0) io.stderr.write(`coapfw publish: sequence ${seq} was taken meanwhile; trying the next\n`);
    }
  }
}

/** Another publisher took the sequence: a 4.09 from the server, ALREADY_EXISTS or CONFLICT locally. */
function sequenceTaken(e: unknown): boolean {
  return isCoapfwError(e, 'ALREADY_EXISTS') || isCoapfwError(e, 'CONFLICT') || (isCoapfwError(e, 'RESPONSE_CODE') && e.responseCode === Code.CONFLICT);
}

async function openTarget(values: Values, a: PublishArgs, image: Uint8Array, key: SuitPrivateKey, io: CliIo, signal: AbortSignal): Promise<Target> {
  const classHex = bytesToHex(a.classId);
  const trust: TrustPolicy = (await trustOf(strings(values, 'trust'))) ?? { anchors: [{ name: 'signer', publicKey: key.publicKey }] };
  const server = str(values, 'server');
  if (server !== undefined) return serverTarget(server, values, a, image, io, signal);
  const db = str(values, 'db');
  if (db !== undefined) {
    const store = await openStore(db);
    return {
      name: dbName(db),
      latest: async () => (await store.latestRelease(classHex))?.sequence,
      publish: async (envelope) => {
        const digest = bytesToHex(sha256(image));
        const { release, uploaded } = await publishEnvelope(store, envelope, {
          trust,
          publisher: process.env.USER ?? 'coapfw-publish',
          urgency: a.urgency,
          images: (sha) => (sha === digest ? image : undefined),
          ...(a.downtimeS === undefined ? {} : { downtimeS: a.downtimeS }),
        });
        // No server published it, so no server opens the devices' commands: do it here, as a server would.
        await new ClassTargeting(store, Date.now, Math.random).released(release);
        return { class: release.classId, uploaded: uploaded.length > 0 };
      },
      close: () => store.close(),
    };
  }
  const dir = str(values, 'dir')!;
  return {
    name: dir,
    latest: async () => (await directorySequences(dir, classHex)).at(-1),
    publish: async (envelope) => {
      const r = await publishToDirectory(dir, envelope, [image], { trust });
      return { class: r.classId, file: r.envelopePath, latest: r.latest };
    },
    close: async () => {},
  };
}

async function serverTarget(uri: string, values: Values, a: PublishArgs, image: Uint8Array, io: CliIo, signal: AbortSignal): Promise<Target> {
  const parsed = optionValue(() => parseCoapUri(uri));
  const psk = await pskCredentials(parsed.scheme, values);
  const classHex = bytesToHex(a.classId);
  const client: CoapClient = await openClient(uri, { psk, dtls: { signal }, unreachable: 'fail' });
  const bar = progressBar(io, basename(a.image));
  const opts = {
    runtime: systemRuntime,
    szx: a.szx,
    signal,
    retry: { attempts: 8, baseMs: 1000, maxMs: 30_000 },
    onProgress: (_sha: string, p: { sent: number; total: number }) => bar.update(p.sent, p.total),
  };
  return {
    name: uri,
    latest: () => latestRemoteSequence(client.request, classHex, opts),
    publish: async (envelope) => {
      try {
        const r = await publishRemote(client.request, { envelope, images: [image], urgency: a.urgency, ...(a.downtimeS === undefined ? {} : { downtimeS: a.downtimeS }) }, opts);
        return { class: r.classId, uploaded: r.uploaded.length > 0, server: uri };
      } finally {
        bar.done();
      }
    },
    close: () => client.close(),
  };
}
