/**
 * `coapfw manifest inspect` and `manifest verify`: look at an envelope, and
 * check it as a device would. Text for people, `--json` for scripts.
 */
import { CoapfwError } from '../errors.js';
import { describeEnvelope, verifyEnvelope, type EnvelopeSummary, type TrustAnchor } from '../suit/index.js';
import { parse, strings, type OptionTable } from './args.js';
import { errorJson, jsonLine, UsageError, type CliIo } from './common.js';
import { labelled, readEnvelope, readPublicKey, uuidOption } from './inputs.js';

function human(s: EnvelopeSummary): string {
  const lines = [
    `SUIT envelope (not verified)`,
    `  sequence number: ${s.sequenceNumber}`,
    `  manifest digest: sha-256 ${s.digest.hex}`,
    `  signatures:      ${s.signatures.length === 0 ? 'none' : s.signatures.map((g) => `alg ${g.alg}${g.kid ? ` kid ${g.kid}` : ''}`).join(', ')}`,
    `  components:      ${s.components.map((c) => `[${c.join(', ')}]`).join(' ')}`,
  ];
  if (s.vendorIds.length > 0) lines.push(`  vendor id:       ${s.vendorIds.join(', ')}`);
  if (s.classIds.length > 0) lines.push(`  class id:        ${s.classIds.join(', ')}`);
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

/**
 * Trust anchors from public key files, each named by its path as given: two
 * files with the same base name (oem/key.pub, op/key.pub) stay two parties.
 */
export async function readAnchors(files: readonly string[]): Promise<TrustAnchor[]> {
  const anchors: TrustAnchor[] = [];
  for (const f of files) {
    if (files.indexOf(f) !== files.lastIndexOf(f)) throw new UsageError(`--trust: '${f}' given twice`);
    const publicKey = await readPublicKey(f);
    anchors.push(publicKey.kid ? { name: f, publicKey, keyId: publicKey.kid } : { name: f, publicKey });
  }
  return anchors;
}

/** `manifest inspect ENV [--json]`. */
export async function inspect(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } });
  if (positionals.length !== 1) throw new UsageError('inspect: expected exactly one envelope file');
  const file = positionals[0]!;
  const bytes = await readEnvelope(file);
  const s = labelled(file, () => describeEnvelope(bytes));
  io.stdout.write(values.json ? JSON.stringify(s, null, 2) + '\n' : human(s));
  return 0;
}

const VERIFY_OPTIONS = {
  trust: { type: 'string', short: 't', multiple: true },
  'require-all': { type: 'boolean' },
  'installed-seq': { type: 'string' },
  'vendor-id': { type: 'string' },
  'class-id': { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies OptionTable;

/** `--installed-seq N`: 0..2^64-1 (a SUIT sequence number is a uint, RFC 9124 §4.3.2). */
function installedSeq(raw: string | undefined): bigint | undefined {
  if (raw === undefined) return undefined;
  if (!/^-?\d+$/.test(raw)) throw new UsageError(`--installed-seq: expected an integer, got '${raw}'`);
  const n = BigInt(raw);
  if (n < 0n || n >= 1n << 64n) throw new UsageError(`--installed-seq: expected 0..18446744073709551615 (a sequence number), got ${raw}`);
  return n;
}

/** A check the envelope failed (as opposed to a file that could not be read). */
function isRejection(e: unknown): boolean {
  return e instanceof CoapfwError && !['IO_ERROR', 'TOO_LARGE', 'KEY_INVALID'].includes(e.code);
}

/** `manifest verify ENV --trust PUB ... [--json]`: exit 0 only if every check passes. */
export async function verify(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, VERIFY_OPTIONS);
  if (positionals.length !== 1) throw new UsageError('verify: expected exactly one envelope file');
  const trustFiles = strings(values, 'trust');
  if (trustFiles.length === 0) throw new UsageError('verify: give at least one --trust PUBFILE');
  const installedSequence = installedSeq(values['installed-seq'] as string | undefined);
  const vendorId = uuidOption('vendor-id', values['vendor-id']);
  const classId = uuidOption('class-id', values['class-id']);
  const file = positionals[0]!;
  try {
    const anchors = await readAnchors(trustFiles);
    const bytes = await readEnvelope(file);
    const rule = values['require-all'] ? { kind: 'allOf' as const, names: anchors.map((a) => a.name!) } : { kind: 'any' as const };
    const v = labelled(file, () => verifyEnvelope(bytes, { trust: { anchors, rule }, installedSequence, vendorId, classId }));
    const by = v.signedBy.map((i) => anchors[i]!.name!);
    if (values.json) jsonLine(io, { result: 'ok', file, sequenceNumber: v.sequenceNumber, signedBy: by });
    else io.stdout.write(`OK: ${file}: sequence ${v.sequenceNumber}, signed by ${by.join(', ')}\n`);
    return 0;
  } catch (e) {
    if (values.json) jsonLine(io, { result: isRejection(e) ? 'rejected' : 'failed', file, error: errorJson(e) });
    throw e;
  }
}
