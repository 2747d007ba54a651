/**
 * `npm start`: the whole story of the update service on loopback, on the
 * embedded default database (SQLite in a temporary file), in a few seconds.
 *
 * 1. An operator starts an update server (coap and coaps) that trusts its
 *    signing key and knows a publisher identity.
 * 2. Four devices power on and register, each in its update mode: a sensor
 *    that decides itself (client), a door lock the server commands (server),
 *    an air handler that negotiates and asks for 2 s more (negotiated), and
 *    a camera (server) whose power will fail mid-download.
 * 3. The publisher signs a release and publishes it over coaps (the image
 *    with Block1, then the envelope); the server checks it and tells the
 *    devices, each the way its mode says, with the downtime to expect.
 * 4. The devices download, install, reboot into the new image, confirm it
 *    and report every step; the camera loses power half-way, powers on
 *    again and resumes from its journal.
 * 5. The status table comes from the server's database.
 * Exit code 0 only if every device runs the release, confirmed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { openClient, sendBlock1, type CoapClient } from 'coapfw/client';
import { Code, ContentFormat, OptionNumber, pathOptions, uintOption } from 'coapfw/codec';
import { agentLink, DeviceAgent, provisionDevice, type AgentEvent, type AgentMode } from 'coapfw/device';
import { createLayout } from 'coapfw/flash';
import { startUpdateServer, type Store, type UpdateServer } from 'coapfw/service';
import { createEnvelope, describeImage, privateKeyFromSecret } from 'coapfw/suit';
import { MemoryFlash } from 'coapfw/testing';
import { PskStore, systemRuntime } from 'coapfw/transport';

const VENDOR = Buffer.from('fa6b4a53d5ad5fdfbe9de663e4d41ffe', 'hex');
const CLASS = Buffer.from('1492af1425695e48bf429b2d51f2ab45', 'hex');
const IMAGE_SIZE = 96 * 1024;
const CUT_AT_BLOCK = 40;
const PUBLISHER = { identity: 'release-bot', key: new Uint8Array(randomBytes(16)) };
const say = (s: string): void => void process.stdout.write(`${s}\n`);

interface Device {
  readonly name: string;
  readonly mode: AgentMode;
  readonly defer: number;
  readonly flash: MemoryFlash;
  readonly layout: ReturnType<typeof createLayout>;
  agent?: DeviceAgent;
  client?: CoapClient;
  /** Blocks the last update did not fetch again thanks to the journal. */
  resumed: number;
}

/** What a device says, one line per step that matters. */
function narrate(d: Device, cutAt?: number): (e: AgentEvent) => void {
  const tell = (s: string): void => say(`  ${d.name.padEnd(12)} ${s}`);
  let last = '';
  return (e) => {
    if (e.type === 'report' && e.outcome.kind === 'accepted') {
      const r = e.outcome.report;
      // Progress is reported every 25 %; the story needs only where each download starts.
      if (r.state !== last) tell(r.state === 'downloading' ? `reported downloading (${r.done} of ${r.total} bytes)` : `reported ${r.state}`);
      last = r.state;
      return;
    }
    if (e.type === 'registered') tell(`registered (${d.mode} mode)`);
    else if (e.type === 'observe-lost' && d.mode === 'client' && e.reason === 'response 4.04') tell('no release of its class yet: looks again after the poll interval');
    else if (e.type === 'answered') tell(`offer ${e.commandId}: answers ${e.answer.answer === 'now' ? 'now' : `defer ${e.answer.defer} s`}`);
    else if (e.type === 'manifest') tell(`sees release ${e.seq} of its class: verified, newer, device idle: updating`);
    else if (e.type === 'downtime') tell(`will be unavailable for about ${e.seconds} s: told before it starts`);
    else if (e.type === 'update' && e.event.type === 'resume' && e.event.fromBlock > 0) tell(`journal: resuming at block ${e.event.fromBlock}`);
    else if (e.type === 'update' && e.event.type === 'transfer') tell(`image fetched by ${e.event.mode === 'qblock2' ? 'Q-Block2 (RFC 9177)' : 'Block2 (RFC 7959)'}`);
    else if (e.type === 'update-end' && e.status !== undefined) d.resumed = e.status.blocksResumed;
    else if (e.type === 'update' && e.event.type === 'block' && e.event.num === cutAt) {
      tell(`*** power cut after ${cutAt + 1} blocks ***`);
      d.flash.cutAfter(0); // the next flash write or erase dies half-way
    }
  };
}

async function startDevice(d: Device, server: string, cutAt?: number): Promise<void> {
  d.client = await openClient(`${server}/`, { params: { ackTimeoutMs: 500 } });
  d.agent = new DeviceAgent({
    flash: d.flash,
    layout: d.layout,
    server,
    link: agentLink(d.client),
    trust: { anchors: [{ name: 'oem', publicKey: KEY.publicKey }] },
    vendorId: VENDOR,
    classId: CLASS,
    mode: d.mode,
    deviceId: d.name,
    answerOffer: () => (d.defer > 0 ? { answer: 'defer', defer: d.defer } : { answer: 'now' }),
    progressStepPercent: 25,
    backoff: { baseMs: 200, maxMs: 1000 },
    onEvent: narrate(d, cutAt),
  });
  await d.agent.start();
}

const KEY = privateKeyFromSecret('ed25519', new Uint8Array(randomBytes(32)));

/** The publisher's side of `coapfw publish`: the image over Block1, then the release. */
async function publish(server: UpdateServer, image: Uint8Array, envelope: Uint8Array): Promise<number> {
  const client = await openClient(`coaps://127.0.0.1:${server.dtls!.address().port}/`, { psk: PUBLISHER });
  try {
    const request = client.request.bind(client);
    await sendBlock1(request, { code: Code.PUT, options: pathOptions(`/pub/blob/${bytesToHex(sha256(image))}`), payload: image }, { runtime: systemRuntime, szx: 6 });
    // JSON for readability (CBOR works the same); JSON has no byte strings, so the envelope goes as hex.
    const body = new TextEncoder().encode(JSON.stringify({ envelope: bytesToHex(envelope), urgency: 'critical', downtime: 10 }));
    const res = await sendBlock1(request, { code: Code.POST, options: [...pathOptions('/pub/release'), uintOption(OptionNumber.CONTENT_FORMAT, ContentFormat.JSON)], payload: body }, { runtime: systemRuntime, szx: 6 });
    return res.code;
  } finally {
    await client.close();
  }
}

async function waitForAll(store: Store, names: readonly string[], seq: number, ms: number): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until; ) {
    const all = await Promise.all(names.map((n) => store.getDevice(n)));
    if (all.every((d) => d?.state === 'confirmed' && d.installedSeq === seq)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

async function table(store: Store, names: readonly string[]): Promise<void> {
  say(`  ${'device'.padEnd(12)} ${'mode'.padEnd(11)} ${'state'.padEnd(10)} installed  reports  history`);
  for (const name of names) {
    const d = (await store.getDevice(name))!;
    const history = await store.listHistory(name, { limit: 1000 });
    say(`  ${d.id.padEnd(12)} ${d.mode.padEnd(11)} ${d.state.padEnd(10)} ${String(d.installedSeq).padStart(9)}  ${String(d.reportSeq).padStart(7)}  ${history.length} entries`);
  }
}

async function main(): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'coapfw-demo-'));
  const devices: Device[] = [];
  let server: UpdateServer | undefined;
  try {
    say('1. operator: an update server on SQLite, trusting the signing key');
    server = await startUpdateServer({
      dir,
      db: `sqlite:${join(dir, 'fleet.db')}`,
      host: '127.0.0.1',
      port: 0,
      refreshMs: 0,
      secure: { psk: PskStore.fromEntries([[PUBLISHER.identity, PUBLISHER.key, ['publisher']]]), host: '127.0.0.1', port: 0 },
      openRegistration: true,
      releaseTrust: { anchors: [{ name: 'oem', publicKey: KEY.publicKey }] },
      pollS: 2,
      modes: { tickMs: 100 },
    });
    const uri = `coap://127.0.0.1:${server.address().port}`;
    say(`  serving devices on ${uri}, publishers on coaps; database ${server.store.backend}`);

    say('2. devices power on and register');
    for (const [name, mode, defer] of [['sensor', 'client', 0], ['door-lock', 'server', 0], ['air-handler', 'negotiated', 2], ['camera', 'server', 0]] as const) {
      const flash = new MemoryFlash({ size: 256 * 1024, eraseBlockSize: 4096 });
      const layout = createLayout(flash, { slotSize: 112 * 1024 });
      await provisionDevice(flash, layout, new TextEncoder().encode(`${name} factory image v0`.padEnd(64, '.')), 0);
      const d: Device = { name, mode, defer, flash, layout, resumed: 0 };
      devices.push(d);
      await startDevice(d, uri, name === 'camera' ? CUT_AT_BLOCK : undefined);
    }
    const names = devices.map((d) => d.name);
    for (let i = 0; i < 250 && devices.some((x) => x.agent?.deviceId === undefined || x.agent.state === 'registering'); i++) await new Promise((r) => setTimeout(r, 20));

    say('3. publisher: sign release 1 and publish it over coaps (critical, 10 s downtime)');
    const image = new Uint8Array(randomBytes(IMAGE_SIZE));
    const d = describeImage(image);
    const envelope = createEnvelope({ sequence: 1, vendorId: VENDOR, classId: CLASS, uri: d.uri, digest: d.digest, size: d.size }, [KEY]);
    const code = await publish(server, image, envelope);
    say(`  image ${image.length} bytes at ${d.uri.slice(0, 24)}…, envelope ${envelope.length} bytes: ${code === Code.CREATED ? 'published (2.01)' : `refused (${code >> 5}.${String(code & 31).padStart(2, '0')})`}`);
    if (code !== Code.CREATED) return 1;

    say('4. devices update (the camera loses power half-way)');
    const camera = devices.find((x) => x.name === 'camera')!;
    const died = await camera.agent!.done.then(() => undefined, (e: unknown) => e);
    await camera.client!.close();
    say(`  camera       powered off (${died instanceof Error ? died.message : 'stopped'}); powering on again`);
    camera.flash.powerOn();
    await startDevice(camera, uri);
    const ok = await waitForAll(server.store, names, 1, 30_000);
    await Promise.all(devices.map((x) => x.agent!.reportsDelivered()));

    say('5. status table (from the database)');
    await table(server.store, names);
    const resumed = camera.resumed > 0;
    say(ok && resumed ? `OK: every device runs release 1, confirmed; the camera resumed ${camera.resumed} blocks after the power cut` : 'FAILED');
    return ok && resumed ? 0 : 1;
  } finally {
    for (const dev of devices) {
      await dev.agent?.stop();
      await dev.client?.close();
    }
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`demo failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
