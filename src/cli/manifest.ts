/**
 * `coapfw manifest create|inspect|verify`: SUIT envelopes from the command
 * line. Reads and writes files; everything else is the library's src/suit/.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { CoapfwError } from '../errors.js';
import {
  addSignatures,
  compileManifest,
  computeDigest,
  createSignedEnvelope,
  describeEnvelope,
  parsePrivateKey,
  parsePublicKey,
  verifyEnvelope,
  type EnvelopeSummary,
  type JsonManifest,
  type SeverableMember,
  type SuitPrivateKey,
  type SuitPublicKey,
  type TrustAnchor,
} from '../suit/index.js';
import { fromHex, toHex } from '../suit/values.js';
import { parse, UsageError, type CliCommand, type CliIo } from './common.js';

const HELP = `usage: coapfw manifest create INPUT.json --key FILE [--key FILE2] -o OUT.suit
       coapfw manifest sign ENV --key FILE [--key FILE2] [--trust PUBFILE] -o OUT.suit
       coapfw manifest inspect ENV [--json]
       coapfw manifest verify ENV --trust PUBFILE [--trust PUBFILE2] [--require-all]
                              [--installed-seq N] [--vendor-id ID] [--class-id ID]

SUIT manifests (draft-ietf-suit-manifest-37) in a signed envelope.

create   Compile INPUT.json (the input format of the SUIT WG's example*.json:
         components with install-id, install-digest, install-size, uri,
         vendor-id, class-id, slot, ...; manifest-sequence-number) into an
         envelope signed by each --key (Ed25519 -> COSE alg -19, P-256 ->
         ES256 -7). A component may give "file": PATH (relative to INPUT.json)
         instead of install-digest/install-size. "severable": true severs
         install, payload-fetch and text into the envelope.
           -k, --key FILE     private key (repeat for several signers)
           --unsigned         no signature: a digest-only envelope
           --sever LIST       sever these members (install,payload-fetch,text),
                              overriding "severable" in the JSON
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
           --installed-seq N  the device's installed sequence number
           --vendor-id ID     device vendor UUID (hex, dashes allowed)
           --class-id ID      device class UUID

Key files: PEM (PKCS#8 / SEC 1 private, SPKI public, as OpenSSL writes them),
COSE_Key (CBOR), or hex (Ed25519: 32-byte public key or seed).
`;

async function readKeyFile(path: string): Promise<Uint8Array | string> {
  const b = await readFile(path);
  // Text files (PEM, hex) are parsed as text, anything else as COSE_Key CBOR.
  return /^[\x09\x0a\x0d\x20-\x7e]*$/.test(b.toString('latin1')) ? b.toString('utf8') : new Uint8Array(b);
}

function labelled<T>(path: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof CoapfwError) throw new CoapfwError(e.code, `${path}: ${e.message}`, { cause: e });
    throw e;
  }
}

function strings(v: unknown): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)];
}

function uuidOption(name: string, v: unknown): Uint8Array | undefined {
  if (v === undefined) return undefined;
  let b: Uint8Array;
  try {
    b = fromHex(String(v).replace(/-/g, ''), name);
  } catch {
    throw new UsageError(`--${name}: expected hex, got '${String(v)}'`);
  }
  if (b.length !== 16) throw new UsageError(`--${name}: expected 16 bytes, got ${b.length}`);
  return b;
}

async function create(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {
    key: { type: 'string', short: 'k', multiple: true },
    output: { type: 'string', short: 'o' },
    unsigned: { type: 'boolean' },
    sever: { type: 'string' },
  });
  if (positionals.length !== 1) throw new UsageError('create: expected exactly one INPUT.json');
  const out = values.output as string | undefined;
  if (!out) throw new UsageError('create: -o OUT.suit is required');
  const keyFiles = strings(values.key);
  if (keyFiles.length === 0 && !values.unsigned) throw new UsageError('create: give --key FILE (or --unsigned)');
  const input = positionals[0]!;
  let json: JsonManifest;
  try {
    json = JSON.parse(await readFile(input, 'utf8')) as JsonManifest;
  } catch (e) {
    if (e instanceof SyntaxError) throw new CoapfwError('INVALID_ARGUMENT', `${input}: not JSON (${e.message})`);
    throw e;
  }
  // CLI extension: "file" gives the image; digest and size are computed from it.
  for (const c of Array.isArray(json?.components) ? json.components : []) {
    const file = (c as { file?: unknown }).file;
    if (typeof file !== 'string') continue;
    const img = new Uint8Array(await readFile(resolve(dirname(input), file)));
    c['install-digest'] = { 'algorithm-id': 'sha256', 'digest-bytes': toHex(computeDigest(-16, img).bytes) };
    c['install-size'] = img.length;
  }
  const keys: SuitPrivateKey[] = [];
  for (const f of keyFiles) {
    const content = await readKeyFile(f);
    keys.push(labelled(f, () => parsePrivateKey(content)));
  }
  const compiled = labelled(input, () => compileManifest(json));
  const { manifest } = compiled;
  let sever = compiled.sever;
  if (values.sever !== undefined) {
    const names: Record<string, SeverableMember> = { install: 'install', 'payload-fetch': 'payloadFetch', text: 'text' };
    sever = String(values.sever).split(',').filter((x) => x !== '').map((x) => {
      const n = names[x.trim()];
      if (!n) throw new UsageError(`--sever: expected install, payload-fetch or text, got '${x}'`);
      return n;
    });
  }
  const env = createSignedEnvelope(manifest, keys, { sever });
  await writeFile(out, env);
  io.stdout.write(`wrote ${out}: ${env.length} bytes, sequence ${manifest.sequenceNumber}, ${keys.length} signature(s)\n`);
  return 0;
}

/** 16 bytes of hex as a UUID (RFC 9562 §4), anything else as is. */
function uuid(hex: string): string {
  return hex.length === 32 ? `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}` : hex;
}

function human(s: EnvelopeSummary): string {
  const lines = [
    `SUIT envelope (not verified)`,
    `  sequence number: ${s.sequenceNumber}`,
    `  manifest digest: sha-256 ${s.digest.hex}`,
    `  signatures:      ${s.signatures.length === 0 ? 'none' : s.signatures.map((g) => `alg ${g.alg}${g.kid ? ` kid ${g.kid}` : ''}`).join(', ')}`,
    `  components:      ${s.components.map((c) => `[${c.join(', ')}]`).join(' ')}`,
  ];
  if (s.vendorIds.length > 0) lines.push(`  vendor id:       ${s.vendorIds.map(uuid).join(', ')}`);
  if (s.classIds.length > 0) lines.push(`  class id:        ${s.classIds.map(uuid).join(', ')}`);
  if (s.referenceUri) lines.push(`  reference URI:   ${s.referenceUri}`);
  if (s.severed.length > 0) lines.push(`  severed:         ${s.severed.join(', ')}`);
  for (const [name, cmds] of Object.entries(s.sequences)) lines.push(`  ${`${name}:`.padEnd(16)} ${cmds.join(', ')}`);
  lines.push(`  images:${s.images.length === 0 ? ' none' : ''}`);
  for (const i of s.images) {
    lines.push(`    [${i.component.join(', ')}] ${i.sequence} ${i.action}${i.slot !== undefined ? ` slot ${i.slot}` : ''}`);
    if (i.uri !== undefined) lines.push(`      uri:    ${i.uri}`);
    if (i.digest) lines.push(`      digest: ${i.digest.alg === -16 ? 'sha-256' : `alg ${i.digest.alg}`} ${i.digest.hex}`);
    if (i.size !== undefined) lines.push(`      size:   ${i.size}`);
  }
  if (s.planError) lines.push(`  note: ${s.planError}`);
  for (const [lang, t] of Object.entries(s.text)) for (const [k, v] of Object.entries(t)) lines.push(`  text ${lang} ${k}: ${v.split('\n')[0]}`);
  return lines.join('\n') + '\n';
}

async function sign(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {
    key: { type: 'string', short: 'k', multiple: true },
    trust: { type: 'string', short: 't', multiple: true },
    output: { type: 'string', short: 'o' },
  });
  if (positionals.length !== 1) throw new UsageError('sign: expected exactly one envelope file');
  const out = values.output as string | undefined;
  if (!out) throw new UsageError('sign: -o OUT.suit is required');
  const keyFiles = strings(values.key);
  if (keyFiles.length === 0) throw new UsageError('sign: give --key FILE');
  const keys: SuitPrivateKey[] = [];
  for (const f of keyFiles) {
    const content = await readKeyFile(f);
    keys.push(labelled(f, () => parsePrivateKey(content)));
  }
  const file = positionals[0]!;
  const input = new Uint8Array(await readFile(file));
  const trustFiles = strings(values.trust);
  if (trustFiles.length > 0) verifyEnvelope(input, { trust: { anchors: await readAnchors(trustFiles) } });
  const env = labelled(file, () => addSignatures(input, keys));
  await writeFile(out, env);
  io.stdout.write(`wrote ${out}: ${env.length} bytes, ${keys.length} signature(s) added\n`);
  return 0;
}

/**
 * Trust anchors from public key files, each named by its path as given: two
 * files with the same base name (oem/key.pub, op/key.pub) stay two parties.
 */
async function readAnchors(files: readonly string[]): Promise<TrustAnchor[]> {
  const anchors: TrustAnchor[] = [];
  for (const f of files) {
    if (files.indexOf(f) !== files.lastIndexOf(f)) throw new UsageError(`--trust: '${f}' given twice`);
    const content = await readKeyFile(f);
    const publicKey: SuitPublicKey = labelled(f, () => parsePublicKey(content));
    anchors.push(publicKey.kid ? { name: f, publicKey, keyId: publicKey.kid } : { name: f, publicKey });
  }
  return anchors;
}

async function inspect(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } });
  if (positionals.length !== 1) throw new UsageError('inspect: expected exactly one envelope file');
  const file = positionals[0]!;
  const bytes = new Uint8Array(await readFile(file));
  const s = labelled(file, () => describeEnvelope(bytes));
  io.stdout.write(values.json ? JSON.stringify(s, null, 2) + '\n' : human(s));
  return 0;
}

async function verify(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {
    trust: { type: 'string', short: 't', multiple: true },
    'require-all': { type: 'boolean' },
    'installed-seq': { type: 'string' },
    'vendor-id': { type: 'string' },
    'class-id': { type: 'string' },
  });
  if (positionals.length !== 1) throw new UsageError('verify: expected exactly one envelope file');
  const trustFiles = strings(values.trust);
  if (trustFiles.length === 0) throw new UsageError('verify: give at least one --trust PUBFILE');
  const seqRaw = values['installed-seq'] as string | undefined;
  if (seqRaw !== undefined && !/^\d+$/.test(seqRaw)) throw new UsageError(`--installed-seq: expected an unsigned integer, got '${seqRaw}'`);
  const anchors = await readAnchors(trustFiles);
  const file = positionals[0]!;
  const bytes = new Uint8Array(await readFile(file));
  const rule = values['require-all'] ? { kind: 'allOf' as const, names: anchors.map((a) => a.name!) } : { kind: 'any' as const };
  const v = verifyEnvelope(bytes, {
    trust: { anchors, rule },
    installedSequence: seqRaw === undefined ? undefined : BigInt(seqRaw),
    vendorId: uuidOption('vendor-id', values['vendor-id']),
    classId: uuidOption('class-id', values['class-id']),
  });
  const by = v.signedBy.map((i) => anchors[i]!.name).join(', ');
  io.stdout.write(`OK: ${file}: sequence ${v.sequenceNumber}, signed by ${by}\n`);
  return 0;
}

/** `coapfw manifest`: create, sign, inspect, verify. */
export const manifestCommand: CliCommand = async (args, io) => {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h' || rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(HELP);
    return sub === undefined ? 2 : 0;
  }
  switch (sub) {
    case 'create':
      return create(rest, io);
    case 'sign':
      return sign(rest, io);
    case 'inspect':
      return inspect(rest, io);
    case 'verify':
      return verify(rest, io);
    default:
      throw new UsageError(`unknown sub-command '${sub}' (create, sign, inspect, verify)`);
  }
};
