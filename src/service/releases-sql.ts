/**
 * Releases, their content-addressed bytes, and trust documents. The store
 * computes every content address itself (SHA-256 of the bytes it writes), so
 * a row can never name bytes it does not hold.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { CoapfwError } from '../errors.js';
import { TRUST_KINDS, URGENCIES, type NewRelease, type NewReleaseImage, type NewTrustDocument, type Release, type TrustDocument, type TrustKind } from './model.js';
import { int, RELEASE_COLUMNS, toRelease, toTrust, type Row } from './rows.js';
import type { Sql, SqlValue, Tx } from './sql.js';
import { checkInt, checkLimit, checkName, checkOneOf, checkSha256, checkSuitId } from './validate.js';

/** Most images (SUIT components) one release may carry. */
export const MAX_RELEASE_IMAGES = 16;

function checkBytes(v: unknown, what: string, maxBytes: number): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new CoapfwError('INVALID_ARGUMENT', `${what}: expected bytes`);
  if (v.length === 0) throw new CoapfwError('INVALID_ARGUMENT', `${what}: empty`);
  if (v.length > maxBytes) throw new CoapfwError('TOO_LARGE', `${what}: ${v.length} bytes exceed the limit of ${maxBytes}`);
  return v;
}

/**
 * Chunk size of stored blobs. A multiple of 1024, so that no Block2 block
 * (16..1024 bytes at a multiple of its size) straddles two chunks; 3 KiB so
 * that a chunk row fits one 4 KiB SQLite page without overflow pages.
 */
export const BLOB_CHUNK = 3072;

/** Store bytes under their SHA-256 (a blob already there is the same bytes). Returns the address. */
async function putBlob(tx: Tx, bytes: Uint8Array, now: number): Promise<string> {
  const address = bytesToHex(sha256(bytes));
  const added = await tx.run('INSERT INTO blobs (sha256, size, created_at) VALUES (?, ?, ?) ON CONFLICT (sha256) DO NOTHING', [address, bytes.length, now]);
  if (added === 0) return address;
  for (let idx = 0, at = 0; at < bytes.length; idx++, at += BLOB_CHUNK) {
    await tx.run('INSERT INTO blob_chunks (sha256, idx, data) VALUES (?, ?, ?)', [address, idx, bytes.subarray(at, at + BLOB_CHUNK)]);
  }
  return address;
}

/** The images of a new release, each with its component (distinct, in order). */
function checkImages(input: NewRelease['images'], maxBlobBytes: number): NewReleaseImage[] {
  const out = input.map((v, i): NewReleaseImage => {
    if (v instanceof Uint8Array) return { component: i, bytes: checkBytes(v, `image ${i}`, maxBlobBytes) };
    const component = checkInt(v?.component, `image ${i} component`, 0, MAX_RELEASE_IMAGES * 16);
    if ('bytes' in v) return { component, bytes: checkBytes(v.bytes, `image ${i}`, maxBlobBytes) };
    return { component, sha256: checkSha256(v?.sha256, `image ${i} sha256`), size: checkInt(v?.size, `image ${i} size`, 1, maxBlobBytes) };
  });
  out.sort((a, b) => a.component - b.component);
  for (let i = 1; i < out.length; i++) {
    if (out[i]!.component === out[i - 1]!.component) throw new CoapfwError('INVALID_ARGUMENT', `release: two images for component ${out[i]!.component}`);
  }
  return out;
}

/** A blob named by a new release: it must be stored, with the size the release says. */
async function storedBlob(tx: Tx, sha256: string, size: number): Promise<{ address: string; size: number }> {
  const row = await tx.get<Row>('SELECT size FROM blobs WHERE sha256 = ?', [sha256]);
  if (row === undefined) throw new CoapfwError('BLOB_MISSING', `release: no stored blob ${sha256}`);
  if (int(row.size) !== size) throw new CoapfwError('INVALID_ARGUMENT', `release: blob ${sha256} has ${int(row.size)} bytes, the release says ${size}`);
  return { address: sha256, size };
}

/** Store a release with its envelope and images in the caller's transaction; ALREADY_EXISTS if (class, sequence) is taken. */
export async function publishRelease(tx: Tx, input: NewRelease, now: number, maxBlobBytes: number): Promise<Release> {
  const classId = checkSuitId(input.classId, 'class id');
  const vendorId = checkSuitId(input.vendorId, 'vendor id');
  const sequence = checkInt(input.sequence, 'sequence');
  const urgency = checkOneOf(input.urgency, URGENCIES, 'urgency');
  const publisher = checkName(input.publisher, 'publisher');
  const downtime = input.downtimeS === undefined ? null : checkInt(input.downtimeS, 'downtime seconds');
  const envelope = checkBytes(input.envelope, 'envelope', maxBlobBytes);
  if (!Array.isArray(input.images) || input.images.length > MAX_RELEASE_IMAGES) {
    throw new CoapfwError('INVALID_ARGUMENT', `release: expected 0..${MAX_RELEASE_IMAGES} images`);
  }
  const images = checkImages(input.images, maxBlobBytes);
  const taken = (): CoapfwError => new CoapfwError('ALREADY_EXISTS', `release: sequence ${sequence} of class ${classId} is already published`);
  // Checked first only to skip writing the blobs in the common case; the INSERT below is what decides a race.
  if ((await tx.get<Row>('SELECT 1 AS x FROM releases WHERE class_id = ? AND sequence = ?', [classId, sequence])) !== undefined) throw taken();
  const envelopeSha = await putBlob(tx, envelope, now);
  const row = await tx.get<Row>(
    `INSERT INTO releases (class_id, sequence, vendor_id, urgency, envelope_sha256, envelope_size, downtime_s, published_at, publisher)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (class_id, sequence) DO NOTHING RETURNING ${RELEASE_COLUMNS}`,
    [classId, sequence, vendorId, urgency, envelopeSha, envelope.length, downtime, now, publisher],
  );
  if (row === undefined) throw taken(); // the other publisher won; our blobs roll back with this transaction
  const imageRows: Row[] = [];
  for (const image of images) {
    const { address, size } = 'bytes' in image ? { address: await putBlob(tx, image.bytes, now), size: image.bytes.length } : await storedBlob(tx, image.sha256, image.size);
    await tx.run('INSERT INTO release_images (class_id, sequence, component, sha256, size) VALUES (?, ?, ?, ?, ?)', [classId, sequence, image.component, address, size]);
    imageRows.push({ component: image.component, sha256: address, size });
  }
  tx.changed({ kind: 'release', classId, sequence });
  return toRelease(row, imageRows);
}

const PAGE_SQL = `SELECT r.class_id, r.sequence, r.vendor_id, r.urgency, r.envelope_sha256, r.envelope_size, r.downtime_s, r.published_at, r.publisher,
  i.component AS image_component, i.sha256 AS image_sha256, i.size AS image_size
  FROM (SELECT ${RELEASE_COLUMNS} FROM releases {WHERE} ORDER BY {ORDER} LIMIT ?) r
  LEFT JOIN release_images i ON i.class_id = r.class_id AND i.sequence = r.sequence
  ORDER BY {OUTER}, i.component`;

/** Releases by a filter and order, with their images, in one query. */
async function releasePage(sql: Sql, where: string, params: SqlValue[], order: string, outer: string): Promise<Release[]> {
  const rows = await sql.all<Row>(PAGE_SQL.replace('{WHERE}', where).replace('{ORDER}', order).replace('{OUTER}', outer), params);
  const out: Release[] = [];
  let current: { row: Row; images: Row[] } | undefined;
  const flush = (): void => {
    if (current !== undefined) out.push(toRelease(current.row, current.images));
  };
  for (const r of rows) {
    if (current === undefined || current.row.class_id !== r.class_id || int(current.row.sequence) !== int(r.sequence)) {
      flush();
      current = { row: r, images: [] };
    }
    if (r.image_sha256 !== null && r.image_sha256 !== undefined) current.images.push({ component: r.image_component, sha256: r.image_sha256, size: r.image_size });
  }
  flush();
  return out;
}

/** One release. */
export async function getRelease(sql: Sql, classId: string, sequence: number): Promise<Release | undefined> {
  const page = await releasePage(sql, 'WHERE class_id = ? AND sequence = ?', [checkSuitId(classId, 'class id'), checkInt(sequence, 'sequence'), 1], 'sequence', 'r.sequence');
  return page[0];
}

/** The highest sequence of a class. */
export async function latestRelease(sql: Sql, classId: string): Promise<Release | undefined> {
  const page = await releasePage(sql, 'WHERE class_id = ?', [checkSuitId(classId, 'class id'), 1], 'sequence DESC', 'r.sequence DESC');
  return page[0];
}

/** Releases newest first. */
export async function listReleases(sql: Sql, options: { classId?: string; limit?: number }, maxPage: number): Promise<Release[]> {
  const limit = checkLimit(options.limit, maxPage);
  const order = 'published_at DESC, class_id, sequence DESC';
  const outer = 'r.published_at DESC, r.class_id, r.sequence DESC';
  return options.classId === undefined
    ? releasePage(sql, '', [limit], order, outer)
    : releasePage(sql, 'WHERE class_id = ?', [checkSuitId(options.classId, 'class id'), limit], order, outer);
}

/** Size of a blob. */
export async function blobSize(sql: Sql, address: string): Promise<number | undefined> {
  const row = await sql.get<Row>('SELECT size FROM blobs WHERE sha256 = ?', [checkSha256(address, 'blob address')]);
  return row === undefined ? undefined : int(row.size);
}

/** `length` bytes from `offset` (fewer at the end), read from the chunks that hold them. */
export async function readBlob(sql: Sql, address: string, offset: number, length: number, maxBytes: number): Promise<Uint8Array | undefined> {
  const key = checkSha256(address, 'blob address');
  const start = checkInt(offset, 'offset', 0, maxBytes);
  const count = checkInt(length, 'length', 1, maxBytes);
  const first = Math.floor(start / BLOB_CHUNK);
  const last = Math.floor((start + count - 1) / BLOB_CHUNK);
  const rows = await sql.all<Row>('SELECT idx, data FROM blob_chunks WHERE sha256 = ? AND idx >= ? AND idx <= ? ORDER BY idx', [key, first, last]);
  if (rows.length === 0) return (await blobSize(sql, key)) === undefined ? undefined : new Uint8Array(0);
  if (rows.length === 1) {
    // The common case (one Block2 block): a view into the one chunk, no copy.
    const data = rows[0]!.data as Uint8Array;
    const from = start - int(rows[0]!.idx) * BLOB_CHUNK;
    return new Uint8Array(data.buffer, data.byteOffset + Math.min(from, data.length), Math.max(0, Math.min(count, data.length - from)));
  }
  const out = new Uint8Array(count);
  let filled = 0;
  for (const r of rows) {
    const data = r.data as Uint8Array;
    const chunkStart = int(r.idx) * BLOB_CHUNK;
    const from = Math.max(0, start - chunkStart);
    const piece = data.subarray(from, Math.min(data.length, start + count - chunkStart));
    out.set(piece, filled);
    filled += piece.length;
  }
  return filled === count ? out : out.slice(0, filled);
}

/** Store a trust document; its version must be above every stored one of its kind and scope (trust never goes back). */
export async function publishTrustDocument(tx: Tx, input: NewTrustDocument, now: number, maxBlobBytes: number): Promise<TrustDocument> {
  const kind = checkOneOf(input.kind, TRUST_KINDS, 'trust kind');
  const scope = input.scope === '' ? '' : checkSuitId(input.scope, 'trust scope');
  const version = checkInt(input.version, 'trust version');
  const publisher = checkName(input.publisher, 'publisher');
  const bytes = checkBytes(input.bytes, 'trust document', maxBlobBytes);
  const newest = await tx.get<Row>('SELECT MAX(version) AS v FROM trust_documents WHERE kind = ? AND scope = ?', [kind, scope]);
  const max = newest?.v === null || newest?.v === undefined ? -1 : int(newest.v);
  if (version === max) throw new CoapfwError('ALREADY_EXISTS', `trust: ${kind} version ${version} of scope '${scope}' is already published`);
  if (version < max) throw new CoapfwError('CONFLICT', `trust: ${kind} version ${version} is older than the stored version ${max}`);
  const address = await putBlob(tx, bytes, now);
  const row = await tx.get<Row>(
    `INSERT INTO trust_documents (kind, scope, version, sha256, size, published_at, publisher) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (kind, scope, version) DO NOTHING RETURNING kind, scope, version, sha256, size, published_at, publisher`,
    [kind, scope, version, address, bytes.length, now, publisher],
  );
  if (row === undefined) throw new CoapfwError('ALREADY_EXISTS', `trust: ${kind} version ${version} of scope '${scope}' is already published`);
  tx.changed({ kind: 'trust', trustKind: kind, scope, version });
  return toTrust(row);
}

/** Trust documents above a version, oldest first. */
export async function listTrustDocuments(sql: Sql, kind: TrustKind, scope: string, afterVersion: number | undefined, maxPage: number): Promise<TrustDocument[]> {
  const rows = await sql.all<Row>(
    'SELECT kind, scope, version, sha256, size, published_at, publisher FROM trust_documents WHERE kind = ? AND scope = ? AND version > ? ORDER BY version LIMIT ?',
    [checkOneOf(kind, TRUST_KINDS, 'trust kind'), scope === '' ? '' : checkSuitId(scope, 'trust scope'), afterVersion === undefined ? -1 : checkInt(afterVersion, 'after version'), maxPage],
  );
  return rows.map(toTrust);
}
