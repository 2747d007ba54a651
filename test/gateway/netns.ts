/**
 * Two network namespaces joined by a veth pair, made by the test itself
 * (iproute2's `ip netns`, `ip link`): a link of its own, so that multicast can
 * be tested without touching the host's network. Needs CAP_NET_ADMIN (root).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Run `ip ...` and return its stdout; throws with its stderr. */
async function ip(...args: string[]): Promise<string> {
  const { stdout } = await run('ip', args, { timeout: 10_000 });
  return stdout;
}

/** A pair of namespaces `a` and `b`, linked by veth with IPv4 `10.<n>.0.1/24` and `.2/24` and IPv6 link-local addresses. */
export interface NetnsPair {
  readonly a: string;
  readonly b: string;
  readonly ifA: string;
  readonly ifB: string;
  readonly addrA: string;
  readonly addrB: string;
  remove(): Promise<void>;
}

/** Why namespaces cannot be made here, or undefined when they can (checked by making and removing one). */
export async function netnsUnavailable(): Promise<string | undefined> {
  const probe = `cfwp${process.pid % 100000}`;
  try {
    await ip('netns', 'add', probe);
  } catch (e) {
    return `cannot create a network namespace (ip netns add: ${((e as { stderr?: string }).stderr ?? (e as Error).message).trim()}); needs iproute2 and root`;
  }
  await ip('netns', 'del', probe).catch(() => undefined);
  return undefined;
}

/** Make the pair. Link-local IPv6 skips duplicate address detection, so it is usable at once. */
export async function makeNetnsPair(tag: string): Promise<NetnsPair> {
  const n = 10 + (process.pid % 200);
  const id = `${tag}${process.pid % 10000}`;
  const a = `cfw${id}a`;
  const b = `cfw${id}b`;
  const ifA = `v${id}a`.slice(0, 15);
  const ifB = `v${id}b`.slice(0, 15);
  const pair: NetnsPair = {
    a, b, ifA, ifB, addrA: `10.${n}.0.1`, addrB: `10.${n}.0.2`,
    remove: async () => {
      await ip('netns', 'del', a).catch(() => undefined);
      await ip('netns', 'del', b).catch(() => undefined);
    },
  };
  try {
    await ip('netns', 'add', a);
    await ip('netns', 'add', b);
    await ip('link', 'add', ifA, 'netns', a, 'type', 'veth', 'peer', 'name', ifB, 'netns', b);
    for (const [ns, dev, addr] of [[a, ifA, pair.addrA], [b, ifB, pair.addrB]] as const) {
      await run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${dev}.accept_dad=0`]);
      await ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev);
      await ip('-n', ns, 'link', 'set', dev, 'up');
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    await waitForLinkLocal(a, ifA);
    await waitForLinkLocal(b, ifB);
  } catch (e) {
    await pair.remove();
    throw e;
  }
  return pair;
}

async function waitForLinkLocal(ns: string, dev: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const out = await ip('-n', ns, '-6', 'addr', 'show', 'dev', dev, 'scope', 'link');
    if (out.includes('fe80::') && !out.includes('tentative')) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${ns}/${dev}: no usable IPv6 link-local address`);
}
