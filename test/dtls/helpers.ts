/** Shared helpers for the DTLS tests: an echo server and a request/reply helper. */
import { createDtlsServer, type DtlsServer, type DtlsServerOptions } from '../../src/transport/dtls/server.js';
import { PskStore } from '../../src/transport/dtls/psk-store.js';
import type { Peer, Transport } from '../../src/transport/types.js';

export const IDENTITY = 'dev-0001';
export const KEY = Uint8Array.from(Buffer.from('00112233445566778899aabbccddeeff', 'hex'));
export const OTHER_IDENTITY = 'dev-0002';
export const OTHER_KEY = Uint8Array.from(Buffer.from('ffeeddccbbaa99887766554433221100', 'hex'));

/** A DTLS server on 127.0.0.1 that echoes every datagram prefixed with "echo:". */
export async function echoServer(extra: Partial<DtlsServerOptions> = {}): Promise<DtlsServer> {
  const server = await createDtlsServer({
    psk: PskStore.fromEntries([
      [IDENTITY, KEY],
      [OTHER_IDENTITY, OTHER_KEY],
    ]),
    ...extra,
  });
  server.onMessage((data, peer) => {
    void server.send(Buffer.concat([Buffer.from('echo:'), data]), peer).catch(() => {});
  });
  return server;
}

/** Sends `text` and waits for the next datagram; resends every `resendMs` (for lossy links). */
export function request(t: Transport, peer: Peer, text: string, resendMs = 0, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    let resend: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      clearInterval(resend);
      reject(new Error(`no reply to ${text}`));
    }, timeoutMs);
    t.onMessage((data) => {
      const s = Buffer.from(data).toString();
      if (s !== `echo:${text}`) return; // a late reply to an earlier request
      clearTimeout(timer);
      clearInterval(resend);
      resolve(s);
    });
    const send = (): void => void t.send(Buffer.from(text), peer).catch(() => {});
    send();
    if (resendMs > 0) resend = setInterval(send, resendMs);
  });
}
