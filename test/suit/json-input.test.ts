/**
 * The JSON input's strict schema, image URIs, and building a manifest from
 * the image bytes (withImages, describeImage), plus the one UUID parser.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { describe, expect, test } from 'vitest';
import { checkImageUri, checkManifestJson, compileManifest, describeImage, formatUuid, imageFiles, parseUuid, withImages, type JsonManifest } from '../../src/suit/index.js';
import { fixtureText } from './helpers.js';

const wg = (n: number): JsonManifest => JSON.parse(fixtureText(`wg/example${n}.json`)) as JsonManifest;
const base = (c: Record<string, unknown>, top: Record<string, unknown> = {}): JsonManifest =>
  ({ 'manifest-sequence-number': 1, components: [{ 'install-id': ['00'], ...c }], ...top }) as unknown as JsonManifest;

describe('checkManifestJson', () => {
  test.each([0, 1, 2, 3, 4, 5])('accepts the WG example %i as it is', (n) => {
    expect(() => checkManifestJson(wg(n))).not.toThrow();
  });

  test.each([
    [base({ url: '/x' }), /^components\[0\]: unknown key "url" \(did you mean "uri"\?\)$/],
    [base({}, { 'manifest-sequence': 2 }), /^manifest JSON: unknown key "manifest-sequence"/],
    [base({ 'install-digest': { 'algorithm-id': 'sha256', digest: 'ab' } }), /^components\[0\] install-digest: unknown key "digest"/],
    [base({ description: { 'en-US': { 'vendor-nam': 'x' } } }), /^components\[0\] description\.en-US: unknown key "vendor-nam" \(did you mean "vendor-name"\?\)/],
    [base({}, { description: { 'en-US': { 'manifest-description': 3 } } }), /^description\.en-US\.manifest-description: expected a string/],
    [base({}, { severable: 'yes' }), /^severable: expected true or false/],
    [base({ file: '' }), /^components\[0\] file: expected a file name/],
    [{ 'manifest-sequence-number': 1, components: [] } as unknown as JsonManifest, /^components: expected a non-empty array/],
  ])('refuses %j', (json, message) => {
    expect(() => checkManifestJson(json)).toThrow(message);
    expect(() => compileManifest(json)).toThrow(message);
  });

  test('compileManifest refuses a "file" nobody resolved', () => {
    expect(() => compileManifest(base({ file: 'a.bin' }))).toThrow(/components\[0\] file: 'a\.bin' is not resolved: pass the image bytes through withImages\(\) first/);
  });
});

describe('checkImageUri', () => {
  test.each(['http://example.com/file1.bin', 'coaps://[::1]:5684/fw/x?y=1', '/files/a%20b.bin', `/fw/sha256/${'ab'.repeat(32)}`, 'rel/path'])('accepts %s', (uri) => {
    expect(() => checkImageUri(uri, 'uri')).not.toThrow();
  });
  test.each([
    ['/fw/sha256/<sha256 of app-v2.bin>', /is not a valid URI/],
    ['/files/a b.bin', /is not a valid URI/],
    ['/fw/sha256/abc', /is not a content address: \/fw\/sha256\/ needs the 64 hex digits/],
    ['coap://h/fw/sha256/', /is not a content address/],
    ['', /expected a non-empty URI string/],
  ])('refuses %j', (uri, message) => {
    expect(() => checkImageUri(uri, 'uri')).toThrow(message);
  });
});

describe('withImages and describeImage', () => {
  const img = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);
  const hex = bytesToHex(sha256(img));

  test('describeImage gives the SHA-256, the size and the content address', () => {
    expect(describeImage(img)).toEqual({ digest: { alg: -16, bytes: sha256(img) }, size: 1000, uri: `/fw/sha256/${hex}` });
  });

  test('"file" becomes digest, size and the content-address uri; a given uri is kept', () => {
    const json = base({ file: 'a.bin' }, { components: [{ 'install-id': ['00'], file: 'a.bin' }, { 'install-id': ['01'], file: 'a.bin', uri: 'coap://fw.example/a.bin' }] });
    expect(imageFiles(json)).toEqual(['a.bin']);
    const out = withImages(json, (f) => (f === 'a.bin' ? img : undefined));
    expect(out.components[0]).toEqual({ 'install-id': ['00'], 'install-digest': { 'algorithm-id': 'sha256', 'digest-bytes': hex }, 'install-size': 1000, uri: `/fw/sha256/${hex}` });
    expect(out.components[1]!.uri).toBe('coap://fw.example/a.bin');
    expect(json.components[0]!.file).toBe('a.bin'); // the input is not changed
    const { manifest } = compileManifest(out);
    expect(manifest.install).toBeDefined();
  });

  test('a digest, size or content address that is not the image is refused', () => {
    const read = (): Uint8Array => img;
    expect(() => withImages(base({ file: 'a', 'install-size': 999 }), read)).toThrow(/install-size 999 but 'a' has 1000 bytes/);
    expect(() => withImages(base({ file: 'a', 'install-digest': { 'algorithm-id': 'sha256', 'digest-bytes': '00'.repeat(32) } }), read)).toThrow(/install-digest is not the SHA-256 of 'a'/);
    expect(() => withImages(base({ file: 'a', uri: `/fw/sha256/${'00'.repeat(32)}` }), read)).toThrow(/content address of another image/);
    expect(() => withImages(base({ file: 'a' }), () => undefined)).toThrow(/no image bytes given for 'a'/);
  });
});

describe('parseUuid / formatUuid', () => {
  const bytes = Uint8Array.from([0xfa, 0x6b, 0x4a, 0x53, 0xd5, 0xad, 0x5f, 0xdf, 0xbe, 0x9d, 0xe6, 0x63, 0xe4, 0xd4, 0x1f, 0xfe]);
  test('canonical and plain forms, either case', () => {
    expect(parseUuid('fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe')).toEqual(bytes);
    expect(parseUuid('FA6B4A53D5AD5FDFBE9DE663E4D41FFE')).toEqual(bytes);
    expect(formatUuid(bytes)).toBe('fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe');
    expect(formatUuid(bytes.subarray(0, 4))).toBe('fa6b4a53');
  });
  test.each(['fa6b-4a53d5ad5fdfbe9de663e4d41ffe', 'fa6b4a53-d5ad-5fdf-be9d-e663e4d41ff', 'zz6b4a53-d5ad-5fdf-be9d-e663e4d41ffe', ''])('refuses %j with the label', (s) => {
    expect(() => parseUuid(s, '--vendor-id')).toThrow(/^--vendor-id: expected a UUID/);
  });
});
