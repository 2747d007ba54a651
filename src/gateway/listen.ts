/**
 * The gateway's sockets towards devices: plain CoAP on UDP, coaps on a DTLS
 * server (the devices' PSKs, with the identity of each session kept so that
 * a request over coaps speaks for its device), and the multicast group
 * sockets of discovery sharing the plain CoAP port.
 */
import { peerKey, type Transport } from '../core/transport.js';
import { CoapfwError } from '../errors.js';
import { listenDtls } from '../server/serve.js';
import type { DtlsServer, DtlsServerEvent } from '../transport/dtls/server.js';
import { ipv6Available, UdpTransport } from '../transport/udp.js';
import { MulticastListener } from './multicast.js';
import type { GatewayEvent, GatewayOptions } from './options.js';

/** What {@link listen} opened. */
export interface Listening {
  /** Plain CoAP (wrapped against multicast copies when discovery is on), then coaps. */
  readonly transports: Transport[];
  readonly dtls: DtlsServer | undefined;
  readonly multicast: MulticastListener | undefined;
}

/** Open the device-side sockets; `identities` is kept current from the DTLS server's events. */
export async function listen(options: GatewayOptions, identities: Map<string, string>, emit: (e: GatewayEvent) => void): Promise<Listening> {
  const transports: Transport[] = [];
  let dtls: DtlsServer | undefined;
  let multicast: MulticastListener | undefined;
  const discovery = options.discovery !== undefined && options.discovery !== false;
  try {
    if (options.transport !== undefined) {
      if (discovery) throw new CoapfwError('INVALID_ARGUMENT', 'gateway: discovery needs the gateway to bind its own UDP port (no `transport`)');
      transports.push(options.transport);
    } else if (options.coap !== false) {
      const host = options.host ?? ((await ipv6Available()) ? '::' : '0.0.0.0');
      const port = options.port ?? 5683;
      if (discovery) await probeFree(host, port);
      const udp = await UdpTransport.bind({ host, port, recvBufferSize: 4 * 1024 * 1024, reuseAddr: discovery });
      if (discovery) {
        const settings = typeof options.discovery === 'object' ? options.discovery : {};
        multicast = await MulticastListener.open(udp, { port: udp.address().port, groups: settings.groups, interfaces: settings.interfaces, onError: (error) => emit({ type: 'multicast-error', error }) });
        transports.push(multicast.unicast);
      } else transports.push(udp);
    } else if (discovery) {
      throw new CoapfwError('INVALID_ARGUMENT', 'gateway: discovery answers on the plain CoAP port, which is off');
    }
    if (options.secure !== undefined) {
      const user = options.secure.onEvent;
      dtls = await listenDtls({
        ...options.secure,
        onEvent: (e: DtlsServerEvent) => {
          track(identities, e);
          emit({ type: 'dtls', event: e.type, peer: peerKey(e.peer), ...(e.type === 'established' ? { identity: e.identity } : e.type === 'internal-error' ? { reason: String(e.error) } : { reason: e.reason }) });
          user?.(e);
        },
      });
      transports.push(dtls);
    }
    if (transports.length === 0) throw new CoapfwError('INVALID_ARGUMENT', 'gateway: nothing to listen on (plain CoAP is off and no coaps given)');
  } catch (e) {
    await multicast?.close();
    await Promise.all(transports.map((t) => t.close()));
    throw e;
  }
  return { transports, dtls, multicast };
}

/** The PSK identity of each established session, by peer. */
function track(identities: Map<string, string>, e: DtlsServerEvent): void {
  const key = peerKey(e.peer);
  if (e.type === 'established') {
    identities.delete(key);
    identities.set(key, e.identity);
    // Bounded by the DTLS server's session cap in practice; a hard bound as well.
    if (identities.size > 100_000) identities.delete(identities.keys().next().value!);
  } else if (e.type === 'closed') identities.delete(key);
}

/**
 * SO_REUSEADDR lets a second server bind the same port without an error, so
 * before binding with it, check that nobody holds the port: a clash stays
 * ADDRESS_IN_USE, never two gateways sharing a port by accident.
 */
async function probeFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const probe = await UdpTransport.bind({ host, port });
  await probe.close();
}
