/**
 * Who may do what on the update service.
 *
 * - Over coaps a device is its PSK identity (RFC 7925 §4.2): `/d` names the
 *   caller's own device; `/d/<id>` is allowed only for the device bound to
 *   that identity, and a device's first registration over coaps binds it.
 *   A device can never register, report or answer for another (4.03).
 * - Over plain CoAP nothing authenticates the sender, so device traffic is
 *   taken only when the operator allows unauthenticated devices
 *   (`openRegistration`: a lab), and never for a device bound to a coaps
 *   identity.
 * - A gateway (a coaps identity with the gateway role, src/gateway/) speaks
 *   for the devices behind it, which authenticate at the gateway: it names
 *   each at `/d/<id>` and may act for every device that is not bound to a
 *   coaps identity of its own, never for one that is (4.03).
 * - Publishing needs a coaps identity with the publisher role; plain CoAP
 *   never publishes.
 */
import { CoapfwError } from '../errors.js';
import type { PeerIdentity } from '../server/serve.js';
import type { Device } from './model.js';
import type { Store } from './store.js';
import { checkDeviceId } from './validate.js';

/** The operator's rules. */
export interface AccessPolicy {
  /** Take device traffic over plain CoAP (unauthenticated: labs only). */
  readonly openRegistration: boolean;
  /** Whether a coaps identity may publish. */
  isPublisher(identity: string): boolean;
  /** Whether a coaps identity is a gateway speaking for the devices behind it (default: none is). */
  isGateway?(identity: string): boolean;
}

const isGateway = (caller: PeerIdentity, policy: AccessPolicy): boolean => caller.secure && policy.isGateway?.(caller.identity) === true;

const forbidden = (msg: string): CoapfwError => new CoapfwError('FORBIDDEN', msg);

/**
 * The device a registration is for, and the identity to bind: `/d` over
 * coaps is the caller's device (the one bound to its identity, else the
 * identity itself as the device id); `/d/<id>` must not belong to another
 * identity, nor the identity to another device.
 */
export async function registrant(store: Store, caller: PeerIdentity, policy: AccessPolicy, pathId: string | undefined): Promise<{ id: string; identity?: string }> {
  if (!caller.secure) {
    if (!policy.openRegistration) throw forbidden('register: this server takes devices over coaps only');
    if (pathId === undefined) throw new CoapfwError('INVALID_ARGUMENT', 'register: over plain CoAP name the device: POST /d/<id>');
    const id = checkDeviceId(pathId);
    const known = await store.getDevice(id);
    if (known?.identity !== undefined) throw forbidden(`register: device ${id} is bound to a coaps identity: register over coaps`);
    return { id };
  }
  if (isGateway(caller, policy)) {
    if (pathId === undefined) throw new CoapfwError('INVALID_ARGUMENT', `register: gateway '${caller.identity}' names the device it speaks for: POST /d/<id>`);
    const id = checkDeviceId(pathId);
    const known = await store.getDevice(id);
    if (known?.identity !== undefined) throw forbidden(`register: device ${id} is bound to coaps identity '${known.identity}': a gateway cannot speak for it`);
    // Not bound to the gateway's identity (one identity binds one device): the gateway role is what lets it act.
    return { id };
  }
  const bound = await store.getDeviceByIdentity(caller.identity);
  if (pathId === undefined) {
    if (bound !== undefined) return { id: bound.id, identity: caller.identity };
    const id = checkDeviceId(caller.identity, `register: identity '${caller.identity}' is not a device id; POST /d/<id> to name one`);
    await checkUnbound(store, id, caller.identity);
    return { id, identity: caller.identity };
  }
  const id = checkDeviceId(pathId);
  if (bound !== undefined && bound.id !== id) throw forbidden(`register: identity '${caller.identity}' is device ${bound.id}, not ${id}`);
  await checkUnbound(store, id, caller.identity);
  return { id, identity: caller.identity };
}

async function checkUnbound(store: Store, id: string, identity: string): Promise<void> {
  const known = await store.getDevice(id);
  if (known?.identity !== undefined && known.identity !== identity) throw forbidden(`register: device ${id} belongs to another identity`);
}

/**
 * The device a report or command request is for, when the caller may act
 * for it: NOT_FOUND for an unknown device, FORBIDDEN for anyone else's.
 */
export async function deviceOf(store: Store, caller: PeerIdentity, policy: AccessPolicy, pathId: string, what: string): Promise<Device> {
  const id = checkDeviceId(pathId);
  if (!caller.secure && !policy.openRegistration) throw forbidden(`${what}: this server takes devices over coaps only`);
  const device = await store.getDevice(id);
  if (device === undefined) throw new CoapfwError('NOT_FOUND', `${what}: unknown device ${id} (register first: POST /d/${id})`);
  if (isGateway(caller, policy)) {
    if (device.identity !== undefined) throw forbidden(`${what}: device ${id} is bound to its own coaps identity: a gateway cannot speak for it`);
  } else if (caller.secure) {
    if (device.identity !== caller.identity) {
      throw forbidden(device.identity === undefined ? `${what}: device ${id} is not bound to identity '${caller.identity}': register over coaps first` : `${what}: device ${id} is not yours`);
    }
  } else if (device.identity !== undefined) {
    throw forbidden(`${what}: device ${id} is bound to a coaps identity: use coaps`);
  }
  return device;
}

/** The publisher's name (its coaps identity), or FORBIDDEN. */
export function publisherOf(caller: PeerIdentity, policy: AccessPolicy): string {
  if (!caller.secure) throw forbidden('publish: only over coaps, as an identity with the publisher role');
  if (!policy.isPublisher(caller.identity)) throw forbidden(`publish: identity '${caller.identity}' has no publisher role`);
  return caller.identity;
}
