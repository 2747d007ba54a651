/**
 * `coapfw trust ...`: trust sets, rotations, revocation lists and owner
 * transfers from the command line (issue 14): the sub-commands' options,
 * help and dispatch; what they do is in trust-commands.ts.
 */
import { parse, type OptionTable, type Values } from './args.js';
import { UsageError, type CliCommand, type CliIo } from './common.js';
import { apply, chain, init, inspect, revoke, sign, transfer, update } from './trust-commands.js';

interface Sub {
  readonly usage: string;
  readonly help: string;
  readonly options: OptionTable;
  run(values: Values, positionals: string[], io: CliIo): Promise<number>;
}

const KEY = { key: { type: 'string', short: 'k', multiple: true } } as const;
const OUT = { output: { type: 'string', short: 'o' } } as const;
const JSON_OPT = { json: { type: 'boolean' } } as const;

const SUBS: Record<string, Sub> = {
  init: {
    usage: 'coapfw trust init SET.json [--owner OWNER.pub] (-o STATE.cbor | --flash FILE [--force])',
    help: `Make the trust state a device is provisioned with: the trust set of
SET.json (anchors, roles, version, source) and the owner's public key.
-o writes it to a file (for 'coapfw device update --trust-state'); --flash
provisions a simulated device's flash file with it (created when missing).
  --owner FILE       the owner's public key: only its signature can transfer
                     the device to another source (without it, nobody can)
  -o, --output FILE  where to write the state (CBOR, as the trust store holds it)
  --flash FILE       provision this device file's trust store
  --force            provision a device whose trust store is already
                     written (or damaged), dropping what it took since`,
    options: { owner: { type: 'string' }, flash: { type: 'string' }, force: { type: 'boolean' }, ...OUT },
    run: init,
  },
  update: {
    usage: 'coapfw trust update SET.json [--key FILE]... -o UPDATE.cftr',
    help: `A trust update (rotation) to the set of SET.json, whose version must be
the devices' current one plus one. Signed by each --key; usually nobody here,
then each party adds its signature with 'coapfw trust sign': for every role
it changes the new keys (new threshold) and the current keys or the trust
role; for a structural change the current and the new trust role.
  -k, --key FILE     sign with this private key (repeat)
  -o, --output FILE  where to write the document`,
    options: { ...KEY, ...OUT },
    run: update,
  },
  sign: {
    usage: 'coapfw trust sign DOC --key FILE [--key FILE]... -o OUT',
    help: `Add a signature by each --key to a trust update, revocation list or owner
transfer (the signed body is never re-encoded; the kid is the signer's
RFC 9679 thumbprint).
  -k, --key FILE     private key (repeat)
  -o, --output FILE  where to write the document (may be DOC itself)`,
    options: { ...KEY, ...OUT },
    run: sign,
  },
  revoke: {
    usage: 'coapfw trust revoke --sequence N [--revoke KEY]... [--key FILE]... -o LIST.cftr',
    help: `A revocation list: the complete list of revoked keys (a newer list
replaces the older), under sequence number N, above any list devices hold.
Signed by the trust role's threshold (--key, or 'coapfw trust sign' later).
  --sequence N       the list's sequence number (1..2^53-1)
  --revoke KEY       a public key file, or its RFC 9679 thumbprint (64 hex
                     digits, as 'coapfw trust inspect KEYFILE' prints); repeat
  -k, --key FILE     sign with this private key (repeat)
  -o, --output FILE  where to write the document`,
    options: { sequence: { type: 'string' }, revoke: { type: 'string', multiple: true }, ...KEY, ...OUT },
    run: revoke,
  },
  transfer: {
    usage: 'coapfw trust transfer --owner-key OWNER.key [--set SET.json] [--source URI] [--new-owner PUB] [--version N] -o TRANSFER.cftr',
    help: `A transfer of authority, signed by the owner's key alone: installs a new
trust set (--set: anchors and roles, and its version and source), a new
update server (--source) and/or a new owner key (--new-owner). The version
must be above the devices' trust version (any gap). Deliver it in the new
server's trust chain, or directly with 'coapfw trust apply'. A device keeps
its installed sequence number (anti-rollback): the new source numbers its
manifests above it (README, "Owner transfer and anti-rollback").
  --owner-key FILE   the owner's private key (required)
  --set FILE         the new trust set, as for 'init' (its version, unless --version)
  --source URI       the new update server (coap:// or coaps://)
  --new-owner FILE   a new owner public key
  --version N        the new trust version, when --set has none
  -o, --output FILE  where to write the document`,
    options: { 'owner-key': { type: 'string' }, set: { type: 'string' }, source: { type: 'string' }, 'new-owner': { type: 'string' }, version: { type: 'string' }, ...OUT },
    run: transfer,
  },
  chain: {
    usage: 'coapfw trust chain DOC... -o CHAIN.cbor',
    help: `A trust chain (what a server serves at /trust/chain, the same for every
device) from trust updates and owner transfers, in any order: a device
applies those newer than its version, in version order. 'coapfw serve DIR'
builds it itself from the documents in DIR/.trust/.
  -o, --output FILE  where to write the chain`,
    options: { ...OUT },
    run: chain,
  },
  inspect: {
    usage: 'coapfw trust inspect (FILE | --flash FILE) [--json]',
    help: `Show a trust state, trust document, trust chain or public key file
(its RFC 9679 thumbprint), or with --flash the trust state of a simulated
device. Documents are NOT verified.
  --flash FILE       the device file whose trust store to show
  --json             one JSON line`,
    options: { flash: { type: 'string' }, ...JSON_OPT },
    run: inspect,
  },
  apply: {
    usage: 'coapfw trust apply DOC... --flash FILE [--json]',
    help: `Hand trust documents (updates, revocation lists, owner transfers, chains)
to a simulated device directly, as the owner's own channel would: each is
verified against the device's trust state as if fetched from its server,
and the store is written once, or not at all when one is refused.
  --flash FILE       the device file (required)
  --json             the result as one JSON line`,
    options: { flash: { type: 'string' }, ...JSON_OPT },
    run: apply,
  },
};

function usage(): string {
  return `usage: ${Object.values(SUBS).map((s) => s.usage).join('\n       ')}

The device's trust: anchors bound to components by roles (k of n signers),
rotated by signed trust updates, revocation lists, and transfers of authority
by the owner (README, "Trust that can change"). 'coapfw trust CMD --help'
for one command. Documents are CBOR files (.cftr by convention).
`;
}

/** `coapfw trust`. */
export const trustCommand: CliCommand = async (args, io) => {
  const [name, ...rest] = args;
  if (name === undefined || name === '--help' || name === '-h') {
    (name === undefined ? io.stderr : io.stdout).write(usage());
    return name === undefined ? 2 : 0;
  }
  const sub = Object.hasOwn(SUBS, name) ? SUBS[name]! : undefined;
  if (!sub) throw new UsageError(`unknown sub-command '${name}' (${Object.keys(SUBS).join(', ')})`);
  const { values, positionals } = parse(rest, { ...sub.options, help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    io.stdout.write(`usage: ${sub.usage}\n\n${sub.help}\n`);
    return 0;
  }
  return sub.run(values, positionals, io);
};
