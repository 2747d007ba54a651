/**
 * coapfw/http with coapfw/service: a fleet in an in-memory database, a
 * rollout in waves driven by the RolloutEngine, and the operator's HTTP
 * server (fleet page, JSON API, metrics) on an ephemeral loopback port. An
 * operator action without the token is refused; with it, the rollout pauses.
 */
import { startHttpServer } from 'coapfw/http';
import { openStore, RolloutEngine, type Rollout, type RolloutProgress } from 'coapfw/service';

const CLASS = '1492af1425695e48bf429b2d51f2ab45';
const VENDOR = 'fa6b4a53d5ad5fdfbe9de663e4d41ffe';
const store = await openStore(':memory:');
await store.publishRelease({ classId: CLASS, vendorId: VENDOR, sequence: 2, urgency: 'normal', envelope: new Uint8Array(300).fill(1), images: [new Uint8Array(4096).fill(2)], publisher: 'oem' });
for (let i = 0; i < 20; i++) await store.registerDevice({ id: `dev-${i}`, vendorId: VENDOR, classId: CLASS, installedSeq: 1, mode: 'server' });
const engine = new RolloutEngine({ store });
const rollout = await engine.create({
  classId: CLASS,
  sequence: 2,
  createdBy: 'example',
  waves: [
    { size: { count: 2 }, successPermille: 1000, failurePermille: 0, timeLimitS: 3600 },
    { size: { percent: 100 }, successPermille: 950, failurePermille: 50, timeLimitS: 86_400 },
  ],
});
const token = 'example-operator-token-0123456789';
const http = await startHttpServer({ port: 0, store, engine, token });
const progress = (await (await fetch(`${http.url}/api/rollouts/${rollout.id}`)).json()) as RolloutProgress;
console.log(`rollout ${rollout.id}: wave 1 ${progress.rollout.waves[0].state}, ${progress.waves[0].byState.notified} devices told, ${progress.remaining} waiting`);
const refused = await fetch(`${http.url}/api/rollouts/${rollout.id}/pause`, { method: 'POST' });
console.log(`pause without the token: ${refused.status}`);
const paused = (await (await fetch(`${http.url}/api/rollouts/${rollout.id}/pause`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).json()) as Rollout;
console.log(`pause with the token: ${paused.state} (${paused.pauseReason})`);
const metrics = await (await fetch(`${http.url}/metrics`)).text();
console.log(metrics.split('\n').find((l) => l.startsWith('coapfw_rollouts{state="paused"}')));
await http.close();
await store.close();
