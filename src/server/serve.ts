/**
 * Starting a server: bind, wire the endpoint to a resolver, refresh the
 * repository periodically, close everything on stop.
 */
import { szxForSize } from '../codec/block.js';
import { CoapEndpoint, type EndpointOptions } from '../messaging/endpoint.js';
import type { TransmissionParams } from '../messaging/params.js';
import { systemRuntime } from '../transport/runtime.js';
import type { Peer, Transport } from '../transport/types.js';
import { UdpTransport } from '../transport/udp.js';
import { fileResources } from './file-server.js';
import { FileRepository, type FileRepositoryOptions } from './files.js';
import { routeRequests } from './router.js';

/** Options of {@link startFileServer}. */
export interface FileServerOptions extends FileRepositoryOptions {
  readonly dir: string;
  /** Bind address; default `::` (IPv6 and IPv4), falling back to `0.0.0.0`. */
  readonly host?: string;
  /** Default 5683. */
  readonly port?: number;
  /** Largest block size served, 16..1024. Default 1024. */
  readonly maxBlockSize?: number;
  /** Use this transport instead of binding UDP (DTLS, impaired, tests). */
  readonly transport?: Transport;
  /** Rescan the directory this often; 0 disables. Default 2000 ms. */
  readonly refreshMs?: number;
  readonly params?: Partial<TransmissionParams>;
  readonly endpoint?: Omit<EndpointOptions, 'runtime' | 'params'>;
}

/** A running file server. */
export interface FileServer {
  readonly endpoint: CoapEndpoint;
  readonly repo: FileRepository;
  address(): Peer;
  close(): Promise<void>;
}

/** Index `dir` and serve it over CoAP. */
export async function startFileServer(options: FileServerOptions): Promise<FileServer> {
  const maxSzx = szxForSize(options.maxBlockSize ?? 1024);
  const repo = await FileRepository.open(options.dir, options);
  const transport = options.transport ?? (await bindDefault(options.host, options.port ?? 5683));
  const endpoint = new CoapEndpoint(transport, { ...options.endpoint, runtime: systemRuntime, params: options.params });
  endpoint.handle(routeRequests(fileResources(repo, { maxSzx })));
  let refreshing = false;
  const refreshMs = options.refreshMs ?? 2000;
  const timer =
    refreshMs > 0
      ? setInterval(() => {
          if (refreshing) return;
          refreshing = true;
          repo.refresh().finally(() => (refreshing = false));
        }, refreshMs).unref()
      : undefined;
  return {
    endpoint,
    repo,
    address: () => endpoint.address(),
    async close() {
      if (timer) clearInterval(timer);
      await endpoint.close();
      await repo.close();
    },
  };
}

/** Bind UDP: the given host, or dual-stack `::`, or `0.0.0.0` where IPv6 is missing. */
export async function bindDefault(host: string | undefined, port: number): Promise<UdpTransport> {
  if (host !== undefined) return UdpTransport.bind({ host, port, recvBufferSize: 4 * 1024 * 1024 });
  try {
    return await UdpTransport.bind({ host: '::', port, recvBufferSize: 4 * 1024 * 1024 });
  } catch {
    return UdpTransport.bind({ host: '0.0.0.0', port, recvBufferSize: 4 * 1024 * 1024 });
  }
}
