/** Test helpers for codec tests: hex <-> bytes. */
export const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
export const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
