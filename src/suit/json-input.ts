/**
 * The JSON input format of {@link compileManifest} (the SUIT WG's
 * `example*.json`, suit-tool's input) as a strict schema: every key must be
 * one the compiler reads. A typo (`"url"` for `"uri"`) would otherwise be
 * ignored and an envelope without an image signed, so an unknown key is an
 * error naming the key, where it is, and the known key it is closest to.
 */
import { CoapfwError } from '../errors.js';
import { didYouMean } from '../suggest.js';
import { TEXT, TEXT_COMPONENT } from './constants.js';

/** Manifest-level text fields (draft-ietf-suit-manifest-37 §8.4.4). */
export const MANIFEST_TEXT: Readonly<Record<string, number>> = {
  'manifest-description': TEXT.manifestDescription,
  'update-description': TEXT.updateDescription,
  'manifest-json-source': TEXT.manifestJsonSource,
  'manifest-yaml-source': TEXT.manifestYamlSource,
};

/** Component-level text fields (§8.4.4). */
export const COMPONENT_TEXT: Readonly<Record<string, number>> = {
  'vendor-name': TEXT_COMPONENT.vendorName,
  'model-name': TEXT_COMPONENT.modelName,
  'vendor-domain': TEXT_COMPONENT.vendorDomain,
  'model-info': TEXT_COMPONENT.modelInfo,
  'component-description': TEXT_COMPONENT.componentDescription,
  'component-version': TEXT_COMPONENT.componentVersion,
};

// "include-json" appears in the WG's example 2; suit-tool's own output for it
// carries no JSON source either, so it is accepted (a boolean) and has no effect.
const TOP = ['manifest-version', 'manifest-sequence-number', 'reference-uri', 'components', 'description', 'severable', 'include-json'];
const COMPONENT = [
  'install-id', 'install-digest', 'install-size', 'uri', 'vendor-id', 'class-id', 'slot', 'bootable',
  'download-id', 'download-digest', 'download-size', 'install-on-download', 'loadable', 'load-id', 'load-digest', 'load-size',
  'description',
  // Not in the WG format: the image file, resolved by withImages() before compiling.
  'file',
];
const DIGEST = ['algorithm-id', 'digest-bytes'];
const DIGESTS = ['install-digest', 'download-digest', 'load-digest'];

function bad(msg: string): CoapfwError {
  return new CoapfwError('INVALID_ARGUMENT', msg);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function onlyKeys(obj: Record<string, unknown>, known: readonly string[], where: string): void {
  for (const k of Object.keys(obj)) {
    if (known.includes(k)) continue;
    const near = didYouMean(k, known);
    throw bad(`${where}: unknown key "${k}"${near ? ` (did you mean "${near}"?)` : ''}`);
  }
}

function checkText(d: unknown, fields: Readonly<Record<string, number>>, where: string): void {
  if (d === undefined) return;
  if (!isObject(d)) throw bad(`${where}: expected an object of languages ({"en-US": {...}})`);
  for (const [lang, t] of Object.entries(d)) {
    if (!isObject(t)) throw bad(`${where}.${lang}: expected an object of text fields`);
    onlyKeys(t, Object.keys(fields), `${where}.${lang}`);
    for (const [k, v] of Object.entries(t)) if (typeof v !== 'string') throw bad(`${where}.${lang}.${k}: expected a string`);
  }
}

// RFC 3986 §2: a URI reference only holds unreserved and reserved characters and %-escapes.
const URI_REFERENCE = /^(?:[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+$/;

/**
 * Check a component's "uri": a URI reference (RFC 3986 §4.1), and where it is
 * one of our content addresses (`/fw/sha256/...`) a full SHA-256 in hex. This
 * catches a placeholder such as `<sha256 of app-v2.bin>` before it is signed.
 */
export function checkImageUri(uri: unknown, where: string): void {
  if (typeof uri !== 'string' || uri.length === 0) throw bad(`${where}: expected a non-empty URI string`);
  if (!URI_REFERENCE.test(uri)) {
    throw bad(`${where}: '${uri.slice(0, 80)}' is not a valid URI (RFC 3986: no spaces, '<', '>' or quotes; escape them as %XX); leave "uri" out to use the content address of "file"`);
  }
  const m = /\/fw\/sha256\/([^/?#]*)$/.exec(uri.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, ''));
  if (m && !/^[0-9a-fA-F]{64}$/.test(m[1]!)) throw bad(`${where}: '${uri}' is not a content address: /fw/sha256/ needs the 64 hex digits of the image's SHA-256`);
}

/**
 * Throws INVALID_ARGUMENT unless `json` has the shape of the JSON input: only
 * known keys at every level (manifest, component, digest, text), arrays and
 * objects where they belong, valid image URIs. Values are checked further by
 * {@link compileManifest}.
 */
export function checkManifestJson(json: unknown): void {
  if (!isObject(json)) throw bad('manifest JSON: expected an object');
  onlyKeys(json, TOP, 'manifest JSON');
  if (json['include-json'] !== undefined && typeof json['include-json'] !== 'boolean') throw bad('include-json: expected true or false');
  if (json.severable !== undefined && typeof json.severable !== 'boolean') throw bad('severable: expected true or false');
  checkText(json.description, MANIFEST_TEXT, 'description');
  if (!Array.isArray(json.components) || json.components.length === 0) throw bad('components: expected a non-empty array');
  json.components.forEach((c: unknown, n) => {
    const w = `components[${n}]`;
    if (!isObject(c)) throw bad(`${w}: expected an object`);
    onlyKeys(c, COMPONENT, w);
    for (const d of DIGESTS) {
      if (c[d] === undefined) continue;
      if (!isObject(c[d])) throw bad(`${w} ${d}: expected {"algorithm-id", "digest-bytes"}`);
      onlyKeys(c[d], DIGEST, `${w} ${d}`);
    }
    checkText(c.description, COMPONENT_TEXT, `${w} description`);
    if (c.file !== undefined && (typeof c.file !== 'string' || c.file === '')) throw bad(`${w} file: expected a file name`);
    if (c.uri !== undefined) checkImageUri(c.uri, `${w} uri`);
  });
}
