/**
 * `coapfw manifest create|sign|inspect|verify`: SUIT envelopes from the
 * command line. Reads and writes files (each read with a size bound);
 * everything else is the library's src/suit/.
 */
import { writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileError, readFileBounded } from '../bounded-read.js';
import { CoapfwError } from '../errors.js';
import {
  addSignatures,
  buildBlockDigests,
  checkManifestJson,
  compileManifest,
  createSignedEnvelope,
  describeImage,
  imageFiles,
  keyThumbprint,
  verifyEnvelope,
  withBlockDigests,
  withImages,
  type ImageBlockDigests,
  type JsonManifest,
  type SeverableMember,
  type SignOptions,
  type SuitPrivateKey,
} from '../suit/index.js';
import { intOption, parse, str, strings } from './args.js';
import { UsageError, type CliCommand, type CliIo } from './common.js';
import { INPUT_LIMITS, labelled, readEnvelope, readPrivateKey } from './inputs.js';
import { inspect, readAnchors, verify } from './manifest-read.js';

const HELP = `usage: coapfw manifest create INPUT.json --key FILE [--key FILE2] -o OUT.suit
       coapfw manifest sign ENV --key FILE [--key FILE2] [--trust PUBFILE] -o OUT.suit
       coapfw manifest inspect ENV [--json]
       coapfw manifest verify ENV --trust PUBFILE [--trust PUBFILE2] [--require-all]
                              [--installed-seq N] [--vendor-id ID] [--class-id ID] [--json]

SUIT manifests (draft-ietf-suit-manifest-37) in a signed envelope.

create   Compile INPUT.json (the input format of the SUIT WG's example*.json:
         components with install-id, install-digest, install-size, uri,
         vendor-id, class-id, slot, ...; manifest-sequence-number) into an
         envelope signed by each --key (Ed25519 -> COSE alg -19, P-256 ->
         ES256 -7). Unknown keys are an error (a typo must not sign an
         envelope without an image). Each signature's kid is the signer's
         RFC 9679 key thumbprint (a COSE_Key file's own kid is kept). A
         component may give "file": PATH
         (relative to INPUT.json) instead of install-digest/install-size;
         without "uri" it is then fetched from its content address
         /fw/sha256/<sha256 of the file>, where 'coapfw serve' serves it. A
         "uri" must be a valid URI (a placeholder like <sha256 of x> is
         refused). "severable": true severs install, payload-fetch and text.
           -k, --key FILE     private key (repeat for several signers)
           --unsigned         no signature: a digest-only envelope
           --sever LIST       sever these members (install,payload-fetch,text),
                              overriding "severable" in the JSON
           --max-image-size N largest "file" read, in bytes (default 1 GiB)
           --block-digests SIZE  per-block digests of every "file" image, over
                              SIZE-byte blocks (the devices' CoAP block size,
                              e.g. 1024): devices check each block before
                              writing it; single-bank devices need them
           --digests-dir DIR  where to write each digest list (default: the
                              directory of -o); serve it: 'coapfw serve' finds
                              it at its content address /fw/sha256/<hex>
           -o, --output FILE  where to write the envelope
sign     Add a signature by each --key to an existing envelope (for example
         the operator countersigning what the OEM signed). Refuses (exit 1,
         DIGEST_MISMATCH) unless the envelope's signed digest is the digest of
         the manifest it carries. Only the authentication wrapper is rebuilt:
         the manifest, severed members and integrated payloads are copied byte
         for byte; existing signatures are kept (re-wrapped in the new wrapper).
         Existing signatures are checked only with --trust.
           -k, --key FILE     private key (repeat for several signers)
           -t, --trust FILE   first verify the existing signatures with these
                              public keys (repeat; any one must have signed)
           -o, --output FILE  where to write the envelope
inspect  Print the sequence number, components and each image's digest,
         size and URI. The envelope is NOT verified.
           --json             machine-readable output
verify   Check signatures, digest, anti-rollback and device identity. Exit 0
         only if every check passes; otherwise one line naming the failed check.
           -t, --trust FILE   trusted public key (repeat); named by the path as given
           --require-all      every --trust key must have signed (default: any one)
           --installed-seq N  the device's installed sequence number (0..2^64-1)
           --vendor-id ID     device vendor UUID (8-4-4-4-12 hex digits, or 32)
           --class-id ID      device class UUID
           --json             one JSON line: {"result": "ok" | "rejected" | "failed", ...}

Key files: PEM (PKCS#8 / SEC 1 private, SPKI public, as OpenSSL writes them),
COSE_Key (CBOR), or hex (Ed25519: 32-byte public key or seed).
`;

/**
 * Each signature's kid: the signer's RFC 9679 thumbprint (what trust sets
 * and revocation lists name keys by), so a verifier with many anchors tries
 * one key per signature; a COSE_Key file's own kid is kept.
 */
function kids(keys: readonly SuitPrivateKey[]): SignOptions[] {
  return keys.map((k) => (k.kid ? {} : { kid: keyThumbprint(k.publicKey) }));
}

async function readKeys(files: readonly string[]): Promise<SuitPrivateKey[]> {
  const keys: SuitPrivateKey[] = [];
  for (const f of files) keys.push(await readPrivateKey(f));
  return keys;
}

async function write(path: string, data: Uint8Array): Promise<void> {
  try {
    await writeFile(path, data);
  } catch (e) {
    throw fileError(e, path);
  }
}

/** INPUT.json, checked against the schema, with every "file" read (bounded) and resolved; and the images by file. */
async function readManifestJson(input: string, maxImage: number): Promise<{ json: JsonManifest; images: Map<string, Uint8Array> }> {
  const text = new TextDecoder().decode(await readFileBounded(input, INPUT_LIMITS.manifestJson, 'manifest JSON input'));
  let json: JsonManifest;
  try {
    json = JSON.parse(text) as JsonManifest;
  } catch (e) {
    throw new CoapfwError('INVALID_ARGUMENT', `${input}: not JSON (${(e as Error).message})`, { path: input });
  }
  // The schema first: a typo in "file" must be named before we go looking for files.
  labelled(input, () => checkManifestJson(json));
  const images = new Map<string, Uint8Array>();
  for (const f of imageFiles(json)) images.set(f, await readFileBounded(resolve(dirname(input), f), maxImage, 'image'));
  return { json: labelled(input, () => withImages(json, (f) => images.get(f))), images };
}

/** Block digests of every image file, written to `dir` as `<hex>.digests` (hex: the SHA-256 of the list, its content address). */
async function imageBlockDigests(images: ReadonlyMap<string, Uint8Array>, blockSize: number, dir: string, io: CliIo): Promise<ImageBlockDigests[]> {
  const out: ImageBlockDigests[] = [];
  for (const [file, bytes] of images) {
    const { info, resource } = labelled(file, () => buildBlockDigests(bytes, { blockSize }));
    const list = describeImage(resource);
    const path = join(dir, `${list.uri.slice(list.uri.lastIndexOf('/') + 1)}.digests`);
    await write(path, resource);
    io.stdout.write(`wrote ${path}: ${resource.length} bytes, block digests of ${file} (${blockSize}-byte blocks)\n`);
    out.push({ digest: describeImage(bytes).digest, info: { ...info, uri: list.uri } });
  }
  return out;
}

function severOption(raw: string): SeverableMember[] {
  const names: Record<string, SeverableMember> = { install: 'install', 'payload-fetch': 'payloadFetch', text: 'text' };
  return raw.split(',').filter((x) => x !== '').map((x) => {
    const n = names[x.trim()];
    if (!n) throw new UsageError(`--sever: expected install, payload-fetch or text, got '${x}'`);
    return n;
  });
}

async function create(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {
    key: { type: 'string', short: 'k', multiple: true },
    output: { type: 'string', short: 'o' },
    unsigned: { type: 'boolean' },
    sever: { type: 'string' },
    'max-image-size': { type: 'string' },
    'block-digests': { type: 'string' },
    'digests-dir': { type: 'string' },
  });
  if (positionals.length !== 1) throw new UsageError('create: expected exactly one INPUT.json');
  const out = str(values, 'output');
  if (!out) throw new UsageError('create: -o OUT.suit is required');
  const keyFiles = strings(values, 'key');
  if (keyFiles.length === 0 && !values.unsigned) throw new UsageError('create: give --key FILE (or --unsigned)');
  const maxImage = intOption('max-image-size', values['max-image-size'], 0, Number.MAX_SAFE_INTEGER) ?? INPUT_LIMITS.image;
  const sever = str(values, 'sever');
  const input = positionals[0]!;
  const blockSize = intOption('block-digests', values['block-digests'], 16, 1 << 20);
  if (blockSize === undefined && values['digests-dir'] !== undefined) throw new UsageError('create: --digests-dir needs --block-digests SIZE');
  const { json, images } = await readManifestJson(input, maxImage);
  const keys = await readKeys(keyFiles);
  const compiled = labelled(input, () => compileManifest(json));
  let { manifest } = compiled;
  if (blockSize !== undefined) {
    if (images.size === 0) throw new UsageError('create: --block-digests needs components with a "file" (the image to cut into blocks)');
    const digests = await imageBlockDigests(images, blockSize, str(values, 'digests-dir') ?? dirname(out), io);
    manifest = labelled(input, () => withBlockDigests(manifest, digests));
  }
  const env = createSignedEnvelope(manifest, keys, { sever: sever === undefined ? compiled.sever : severOption(sever), signOptions: kids(keys) });
  await write(out, env);
  io.stdout.write(`wrote ${out}: ${env.length} bytes, sequence ${manifest.sequenceNumber}, ${keys.length} signature(s)\n`);
  return 0;
}

async function sign(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {
    key: { type: 'string', short: 'k', multiple: true },
    trust: { type: 'string', short: 't', multiple: true },
    output: { type: 'string', short: 'o' },
  });
  if (positionals.length !== 1) throw new UsageError('sign: expected exactly one envelope file');
  const out = str(values, 'output');
  if (!out) throw new UsageError('sign: -o OUT.suit is required');
  const keyFiles = strings(values, 'key');
  if (keyFiles.length === 0) throw new UsageError('sign: give --key FILE');
  const keys = await readKeys(keyFiles);
  const file = positionals[0]!;
  const input = await readEnvelope(file);
  const trustFiles = strings(values, 'trust');
  if (trustFiles.length > 0) {
    const anchors = await readAnchors(trustFiles);
    labelled(file, () => verifyEnvelope(input, { trust: { anchors } }));
  }
  const env = labelled(file, () => addSignatures(input, keys, kids(keys)));
  await write(out, env);
  io.stdout.write(`wrote ${out}: ${env.length} bytes, ${keys.length} signature(s) added\n`);
  return 0;
}

const SUBCOMMANDS: Record<string, (args: string[], io: CliIo) => Promise<number>> = { create, sign, inspect, verify };

/** `coapfw manifest`: create, sign, inspect, verify. */
export const manifestCommand: CliCommand = async (args, io) => {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h' || rest.includes('--help') || rest.includes('-h')) {
    (sub === undefined ? io.stderr : io.stdout).write(HELP);
    return sub === undefined ? 2 : 0;
  }
  const run = Object.hasOwn(SUBCOMMANDS, sub) ? SUBCOMMANDS[sub] : undefined;
  if (!run) throw new UsageError(`unknown sub-command '${sub}' (create, sign, inspect, verify)`);
  return run(rest, io);
};
