/**
 * Summarise a V8 `.cpuprofile` (written by `node --cpu-prof`): self time per
 * function and per source file, as shares of the sampled time, so a
 * benchmark can say where a server's time goes.
 */
import { readFile } from 'node:fs/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** One row of the summary. */
export interface ProfileRow {
  readonly name: string;
  /** Share of all sampled time, in percent (one decimal). */
  readonly percent: number;
  /** Share of the time the process was not idle, in percent. */
  readonly percentOfBusy: number;
}

/** Self-time summary of one profile. */
export interface ProfileSummary {
  readonly sampledMs: number;
  /** Share of samples where the process was idle (waiting for datagrams). */
  readonly idlePercent: number;
  readonly topFunctions: ProfileRow[];
  readonly byFile: ProfileRow[];
}

/**
 * Read and summarise `path`; `top` rows per table. Samples in the first
 * `fromMs` of the profile (a server's start-up: module loading, hashing the
 * files it serves) are left out, so that what remains is the steady state.
 */
export async function summariseProfile(path: string, top = 15, fromMs = 0): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let total = 0;
  let elapsed = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    elapsed += dt;
    if (elapsed < fromMs * 1000) continue;
    total += dt;
    selfUs.set(profile.samples[i]!, (selfUs.get(profile.samples[i]!) ?? 0) + dt);
  }
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  let idle = 0;
  for (const [id, us] of selfUs) {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === '(idle)') idle += us;
    const where = shortUrl(f.url);
    const key = `${f.functionName || '(anonymous)'} ${where}${where ? `:${f.lineNumber + 1}` : ''}`.trim();
    fn.set(key, (fn.get(key) ?? 0) + us);
    const fileKey = where || f.functionName;
    file.set(fileKey, (file.get(fileKey) ?? 0) + us);
  }
  const busy = Math.max(total - idle, 1);
  const rows = (m: Map<string, number>): ProfileRow[] =>
    [...m]
      .filter(([name]) => !name.startsWith('(idle)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, percent: Math.round((1000 * us) / Math.max(total, 1)) / 10, percentOfBusy: Math.round((1000 * us) / busy) / 10 }));
  return { sampledMs: Math.round(total / 1000), idlePercent: Math.round((1000 * idle) / Math.max(total, 1)) / 10, topFunctions: rows(fn), byFile: rows(file) };
}

/** `file:///work/main/dist/src/x.js` → `dist/src/x.js`; `node:internal/...` kept. */
function shortUrl(url: string): string {
  const i = url.indexOf('/dist/');
  if (i >= 0) return url.slice(i + 1);
  const n = url.indexOf('/node_modules/');
  if (n >= 0) return url.slice(n + 1);
  return url;
}
