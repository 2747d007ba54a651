/**
 * coapfw/suit: the operator signs a SUIT envelope for an image, the device
 * verifies it against its trust anchor and its installed sequence number,
 * and checks the image it fetched against the manifest's digest.
 */
import { createHash, randomBytes } from 'node:crypto';
import { isCoapfwError } from 'coapfw';
import { checkImage, createEnvelope, parsePublicKey, planUpdate, privateKeyFromSecret, publicKeyToPem, verifyEnvelope, type TrustPolicy } from 'coapfw/suit';

const vendorId = Buffer.from('fa6b4a53d5ad5fdfbe9de663e4d41ffe', 'hex');
const classId = Buffer.from('1492af1425695e48bf429b2d51f2ab45', 'hex');

// Operator: a key (normally from `coapfw keygen`), an image, a signed envelope.
const key = privateKeyFromSecret('ed25519', randomBytes(32));
const image = randomBytes(5000);
const digest = createHash('sha256').update(image).digest();
const envelope = createEnvelope({ sequence: 5, vendorId, classId, uri: `/fw/sha256/${digest.toString('hex')}`, digest, size: image.length }, [key]);
console.log(`envelope: ${envelope.length} bytes, signed with Ed25519`);

// Device: the public key it was provisioned with, as PEM text.
const trust: TrustPolicy = { anchors: [{ name: 'oem', publicKey: parsePublicKey(publicKeyToPem(key.publicKey)) }] };
const verified = verifyEnvelope(envelope, { trust, installedSequence: 4, vendorId, classId });
const plan = planUpdate(verified.manifest, { vendorId, classId });
const target = plan.images[0]!;
console.log(`verified: sequence ${verified.sequenceNumber}, ${verified.signedBy.length} trusted signature, fetch ${target.uri} (${target.size} bytes)`);
for (const c of target.checks) checkImage(image, c);
console.log('image: digest and size match');

for (const [what, attempt] of [
  ['replayed to a device at sequence 5', () => verifyEnvelope(envelope, { trust, installedSequence: 5 })],
  ['with one byte flipped', () => verifyEnvelope(Uint8Array.from(envelope, (b, i) => (i === envelope.length - 70 ? b ^ 1 : b)), { trust })],
  ['image with one byte flipped', () => target.checks.forEach((c) => checkImage(Uint8Array.from(image, (b, i) => (i === 0 ? b ^ 1 : b)), c))],
] as const) {
  try {
    attempt();
    console.log(`${what}: accepted?`);
    process.exitCode = 1;
  } catch (e) {
    if (!isCoapfwError(e)) throw e;
    console.log(`${what}: refused, ${e.code}`);
  }
}
