/**
 * coapfw's native UDP socket (native/udp.c, built at install by node-gyp on
 * Linux): recvmmsg into one buffer for up to 16 datagrams per wake-up, one
 * call into JavaScript for them all, each sender named by a small number so
 * that its address string is made once rather than per datagram, and a plain
 * sendto per send. Where the addon is not built, `loadNative()` answers
 * undefined and the transport runs on node:dgram.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Peer } from '../core/transport.js';
import { type SocketEvents, type SocketSpec, type UdpSocket } from './udp-socket.js';

type Handle = object & { readonly __nativeUdp: unique symbol };

/** The addon's functions (native/udp.c). */
interface NativeUdp {
  readonly BATCH: number;
  readonly SLOT: number;
  open(spec: object, data: ArrayBuffer, meta: Int32Array, onRecv: () => void, onError: (code: string) => void): Handle;
  send(h: Handle, data: Uint8Array, address: string | undefined, port: number): string | undefined;
  peer(h: Handle, id: number): [string, number] | undefined;
  address(h: Handle): [string, number];
  close(h: Handle): void;
}

const ADDON = 'build/Release/coapfw_udp.node';
let loaded: NativeUdp | null | undefined;

/**
 * The native socket, or undefined where it is not built or COAPFW_NATIVE_UDP=0.
 * Looked up from this module towards the package root (src/transport in the
 * sources, dist/src/<dir> when built and bundled).
 */
export function loadNative(): NativeUdp | undefined {
  if (loaded !== undefined) return loaded ?? undefined;
  loaded = null;
  if (process.env.COAPFW_NATIVE_UDP === '0' || process.platform !== 'linux') return undefined;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 4; up++, dir = dirname(dir)) {
    const file = join(dir, ADDON);
    if (!existsSync(file)) continue;
    try {
      loaded = createRequire(import.meta.url)(file) as NativeUdp;
    } catch {
      // Built for another Node (its ABI) or broken: the dgram socket serves instead.
    }
    break;
  }
  return loaded ?? undefined;
}

/** Open a native socket; throws the bind's errno error (with `code`). */
export function openNativeSocket(native: NativeUdp, spec: SocketSpec, events: SocketEvents): UdpSocket {
  return new NativeSocket(native, spec, events);
}

class NativeSocket implements UdpSocket {
  readonly backend = 'native';
  private readonly handle: Handle;
  private readonly data: ArrayBuffer;
  private readonly meta: Int32Array;
  /** Peer objects by the addon's number for them, for the current generation of its table. */
  private peers: (Peer | undefined)[] = [];
  private generation = -1;
  private closed = false;

  constructor(
    private readonly native: NativeUdp,
    spec: SocketSpec,
    private readonly events: SocketEvents,
  ) {
    this.data = new ArrayBuffer(native.BATCH * native.SLOT);
    this.meta = new Int32Array(3 + 2 * native.BATCH);
    const open = { v6: spec.v6, host: spec.host, port: spec.port, ipv6Only: spec.ipv6Only, reuseAddr: spec.reuseAddr, recvBufferSize: spec.recvBufferSize ?? 0, connectHost: spec.connect?.address, connectPort: spec.connect?.port ?? 0 };
    this.handle = native.open(open, this.data, this.meta, () => this.onRecv(), (code) => this.onError(code));
  }

  /** The addon filled `meta` with [count, generation, dropped, (length, peer number) per datagram]. */
  private onRecv(): void {
    const meta = this.meta;
    const count = meta[0]!;
    if (meta[1] !== this.generation) {
      // The addon's table started over: its numbers now name other peers.
      this.peers = [];
      this.generation = meta[1]!;
    }
    const slot = this.native.SLOT;
    for (let i = 0; i < count && !this.closed; i++) {
      const length = meta[3 + 2 * i]!;
      const id = meta[4 + 2 * i]!;
      const peer = this.peers[id] ?? this.learn(id);
      if (peer === undefined) continue;
      // A copy of its own: the slot is refilled at the next wake-up, and layers above may keep what they get.
      this.events.datagram(new Uint8Array(this.data, i * slot, length).slice(), peer);
    }
  }

  private learn(id: number): Peer | undefined {
    const pair = this.native.peer(this.handle, id);
    if (pair === undefined) return undefined;
    const peer: Peer = { address: pair[0], port: pair[1] };
    this.peers[id] = peer;
    return peer;
  }

  private onError(code: string): void {
    const err = new Error(`udp: ${code}`) as NodeJS.ErrnoException;
    err.code = code;
    this.events.error(err);
  }

  send(data: Uint8Array, peer: Peer | undefined, done?: (err: Error | null) => void): void {
    const code = this.native.send(this.handle, data, peer?.address, peer?.port ?? 0);
    if (code === undefined) return done?.(null);
    const err = new Error(code === 'EINVAL' ? `invalid address or port ${peer ? `${peer.address}:${peer.port}` : ''}`.trimEnd() : code) as NodeJS.ErrnoException;
    err.code = code;
    if (done === undefined) throw err;
    done(err);
  }

  address(): Peer {
    const [address, port] = this.native.address(this.handle);
    return { address, port };
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.native.close(this.handle);
    }
    return Promise.resolve();
  }
}
