/**
 * The gateway's links (RFC 6690): its update service (manifests, images,
 * devices) and the images it holds. Discovery answers with the service links
 * only, so that a multicast answer stays one small datagram however many
 * images are cached; the full list is at the unicast `/.well-known/core`.
 */
import type { Link } from '../codec/link-format.js';
import { ContentFormat } from '../codec/numbers.js';

/** The resource type of a coapfw gateway: filter discovery with `rt=coapfw.gateway` (or `rt=firmware`). */
export const GATEWAY_RT = 'coapfw.gateway';

/** The service links: where manifests, images and the device protocol are. */
export function serviceLinks(): Link[] {
  return [
    { target: '/m', attributes: { rt: `firmware ${GATEWAY_RT}`, title: 'coapfw gateway: manifests /m/<class>' } },
    { target: '/fw/sha256', attributes: { rt: 'firmware coapfw.images', ct: String(ContentFormat.OCTET_STREAM) } },
    { target: '/d', attributes: { rt: 'coapfw.devices' } },
  ];
}

/** Every link of the gateway's `/.well-known/core`: the service, then each cached image. */
export function gatewayLinks(images: readonly Link[]): Link[] {
  return [...serviceLinks(), ...images];
}
