/**
 * The command interpreter (draft-ietf-suit-manifest-37 §6, §8.4.6-§8.4.10),
 * run at planning time: it evaluates what a device can decide before any
 * download (vendor, class, device and slot conditions, try-each choices) and
 * turns fetch, copy and invoke into a plan whose image-match conditions become
 * checks the device runs on the bytes it fetched (`checkImage`).
 *
 * An image-match in payload-fetch or install before anything was fetched or
 * copied into its component is a condition on the image the device already
 * has (the source check of a differential update, src/suit/delta-manifest.ts):
 * with `DeviceIdentity.installed` it is evaluated at planning time, and a
 * mismatch is a soft failure (§8.4.10.2), so try-each goes on with the next
 * alternative (the full image).
 *
 * The plan's types are in plan-types.ts, the conditions on the device's
 * identity and installed image in plan-conditions.ts.
 */
import { CoapfwError, type CoapfwErrorCode } from '../errors.js';
import { blockDigestsOf } from './block-digests-param.js';
import { CONDITION, DIRECTIVE, commandName } from './constants.js';
import { suitLimits, type SuitLimits } from './limits.js';
import { mergeParameters } from './parameters.js';
import { checkIdentity, checkSlot, deltaOf, installedMatch, type ConditionLedger } from './plan-conditions.js';
import type { DeviceIdentity, ImageCheck, PlannedImage, PlanSequence, UpdatePlan } from './plan-types.js';
import type { BlockDigestsInfo, ComponentId, SuitCommand, SuitManifest, SuitParameters } from './types.js';

export type { DeviceIdentity, ImageCheck, InstalledImage, PlannedImage, PlanSequence, UpdatePlan } from './plan-types.js';

/** Error codes under which a try-each alternative fails and the next one is tried. */
const SOFT: ReadonlySet<CoapfwErrorCode> = new Set(['VENDOR_MISMATCH', 'CLASS_MISMATCH', 'CONDITION_FAILED']);

class Planner implements ConditionLedger {
  private params = new Map<number, SuitParameters>();
  private current: number[] = [0];
  private executed = 0;
  /** Indices of images a check was pushed to, in order: the undo log of try-each. */
  private checkLog: number[] = [];
  readonly images: PlannedImage[] = [];
  readonly validate: UpdatePlan['validate'][number][] = [];
  readonly invoke: UpdatePlan['invoke'][number][] = [];
  checked = new Set<string>();
  unchecked = new Set<string>();
  private seqName: PlanSequence = 'install';
  private seqStart = 0;

  constructor(
    private readonly m: SuitManifest,
    private readonly device: DeviceIdentity,
    private readonly limits: SuitLimits,
  ) {}

  /** Run the shared sequence then `seq`, with fresh parameters (§6.4). */
  runSequence(name: PlanSequence, seq: readonly SuitCommand[]): void {
    this.params = new Map();
    this.current = [0];
    this.seqName = name;
    this.seqStart = this.images.length;
    this.run(this.m.sharedSequence);
    this.run(seq);
  }

  private run(seq: readonly SuitCommand[]): void {
    for (const c of seq) this.step(c);
  }

  private component(i: number): ComponentId {
    const c = this.m.components[i];
    if (c === undefined) throw new CoapfwError('SUIT_MALFORMED', `component index ${i}: the manifest declares ${this.m.components.length} components`);
    return c;
  }

  private fail(code: CoapfwErrorCode, msg: string): never {
    throw new CoapfwError(code, msg);
  }

  /** Count `n` command executions against maxCommands (§6: each per component). */
  private charge(n: number): void {
    this.executed += n;
    if (this.executed > this.limits.maxCommands) {
      throw new CoapfwError('SUIT_LIMIT', `interpreter: more than ${this.limits.maxCommands} commands run`);
    }
  }

  /** Bound the plan's size: every image step, validate check and invoke. */
  private grow(): void {
    if (this.images.length + this.validate.length + this.invoke.length >= this.limits.maxImages) {
      throw new CoapfwError('SUIT_LIMIT', `plan: more than ${this.limits.maxImages} image steps, checks and invokes`);
    }
  }

  step(c: SuitCommand): void {
    const perComponent = c.kind === 'override-parameters' || c.kind === 'condition' || c.kind === 'directive';
    this.charge(perComponent ? Math.max(1, this.current.length) : 1);
    switch (c.kind) {
      case 'set-component-index': {
        const list = c.index === true ? this.m.components.map((_, i) => i) : typeof c.index === 'number' ? [c.index] : [...c.index];
        // §8.4.10.1: distinct, declared components (the decoder checks too, for hand-built manifests here).
        if (list.length > this.m.components.length || new Set(list).size !== list.length) {
          this.fail('SUIT_MALFORMED', `set-component-index: ${list.length} indices for ${this.m.components.length} components, or a repeated index`);
        }
        for (const i of list) this.component(i);
        this.current = list;
        return;
      }
      case 'override-parameters':
        for (const i of this.current) this.params.set(i, mergeParameters(this.params.get(i), c.params));
        return;
      case 'condition':
        for (const i of this.current) this.condition(c.code, i);
        return;
      case 'directive':
        for (const i of this.current) this.directive(c.code, i);
        return;
      case 'try-each':
        this.tryEach(c.branches, c.allowNone);
        return;
      case 'run-sequence':
        this.run(c.sequence);
        return;
      case 'unknown':
        this.fail('SUIT_UNSUPPORTED', `${commandName(c.code)}: not supported by this updater`);
    }
  }

  /**
   * §8.4.10.2: run alternatives in order until one completes; a failed one
   * leaves no trace. Rollback is O(what the branch did), not O(plan): lists
   * only grow (truncate back), image checks are undone from a log, the
   * parameter map has at most one entry per component.
   */
  private tryEach(branches: readonly (readonly SuitCommand[])[], allowNone: boolean): void {
    let last: unknown;
    for (const b of branches) {
      const saved = {
        params: new Map(this.params),
        current: this.current,
        lengths: [this.images.length, this.validate.length, this.invoke.length] as const,
        checkLog: this.checkLog.length,
        checked: new Set(this.checked),
        unchecked: new Set(this.unchecked),
      };
      try {
        this.run(b);
        return;
      } catch (e) {
        if (!(e instanceof CoapfwError) || !SOFT.has(e.code)) throw e;
        last = e;
        this.params = saved.params;
        this.current = saved.current;
        while (this.checkLog.length > saved.checkLog) this.images[this.checkLog.pop()!]!.checks.pop();
        [this.images.length, this.validate.length, this.invoke.length] = saved.lengths;
        this.checked = saved.checked;
        this.unchecked = saved.unchecked;
      }
    }
    if (!allowNone) throw new CoapfwError('CONDITION_FAILED', `try-each: no alternative applies (${(last as Error).message})`, { cause: last });
  }

  private condition(code: number, i: number): void {
    const p = this.params.get(i) ?? {};
    const id = this.component(i);
    switch (code) {
      case CONDITION.vendorId:
        return checkIdentity(this, 'vendor-identifier', p.vendorId, this.device.vendorId, 'VENDOR_MISMATCH');
      case CONDITION.classId:
        return checkIdentity(this, 'class-identifier', p.classId, this.device.classId, 'CLASS_MISMATCH');
      case CONDITION.deviceId:
        return checkIdentity(this, 'device-identifier', p.deviceId, this.device.deviceId, 'CONDITION_FAILED');
      case CONDITION.componentSlot:
        return checkSlot(this, this.device, p.componentSlot, id, i);
      case CONDITION.imageMatch: {
        const check: ImageCheck = { kind: 'image-match', digest: p.imageDigest, size: p.imageSize };
        if (!p.imageDigest) this.fail('CONDITION_FAILED', 'condition-image-match: no image digest parameter set');
        // After a fetch or copy of this component in this sequence, the check applies to those bytes.
        for (let k = this.images.length - 1; k >= this.seqStart; k--) {
          if (this.images[k]!.componentIndex === i) {
            if (this.images[k]!.checks.length >= this.limits.maxImages) this.fail('SUIT_LIMIT', `plan: more than ${this.limits.maxImages} checks on one image`);
            this.images[k]!.checks.push(check);
            this.checkLog.push(k);
            return;
          }
        }
        if (this.seqName === 'payload-fetch' || this.seqName === 'install') {
          if (installedMatch(this, this.device, id, i, check)) return;
        }
        this.grow();
        this.validate.push({ componentIndex: i, componentId: id, check });
        return;
      }
      case CONDITION.abort:
        this.fail('CONDITION_FAILED', 'condition-abort');
      // falls through never: fail() throws
      default:
        this.fail('SUIT_UNSUPPORTED', `${commandName(code)}: not supported by this updater`);
    }
  }

  private digestsOf(p: SuitParameters): { blockDigests?: BlockDigestsInfo } {
    const info = blockDigestsOf(p, this.limits);
    return info ? { blockDigests: info } : {};
  }

  private directive(code: number, i: number): void {
    const p = this.params.get(i) ?? {};
    const componentId = this.component(i);
    switch (code) {
      case DIRECTIVE.fetch:
        if (p.uri === undefined) this.fail('SUIT_MALFORMED', `directive-fetch: component ${i} has no URI parameter`);
        this.grow();
        this.images.push({ sequence: this.seqName, action: 'fetch', componentIndex: i, componentId, slot: p.componentSlot, uri: p.uri, digest: p.imageDigest, size: p.imageSize, checks: [], ...this.digestsOf(p) });
        return;
      case DIRECTIVE.copy:
        if (p.sourceComponent === undefined) this.fail('SUIT_MALFORMED', `directive-copy: component ${i} has no source-component parameter`);
        this.component(p.sourceComponent);
        {
          const delta = deltaOf(this.device, p, i);
          this.grow();
          this.images.push({
            sequence: this.seqName, action: 'copy', componentIndex: i, componentId, slot: p.componentSlot, uri: undefined, digest: p.imageDigest, size: p.imageSize,
            sourceComponent: p.sourceComponent, checks: [], ...this.digestsOf(p), ...(delta ? { delta } : {}),
          });
        }
        return;
      case DIRECTIVE.invoke:
        this.grow();
        this.invoke.push(p.invokeArgs ? { componentIndex: i, componentId, args: p.invokeArgs } : { componentIndex: i, componentId });
        return;
      default:
        this.fail('SUIT_UNSUPPORTED', `${commandName(code)}: not supported by this updater`);
    }
  }
}

/**
 * Plan an update: run payload-fetch, install, validate, load and invoke (each
 * after the shared sequence) against the device identity. Throws
 * VENDOR_MISMATCH, CLASS_MISMATCH, CONDITION_FAILED (device, slot, abort, or
 * no try-each alternative), SUIT_UNSUPPORTED (swap, write, custom commands),
 * SUIT_LIMIT (more than `maxCommands` commands run).
 *
 * @example
 * const v = verifyEnvelope(bytes, { trust, installedSequence: 6n });
 * const plan = planUpdate(v.manifest, { vendorId, classId, componentSlot: 1 });
 * for (const img of plan.images) { const b = await fetch(img.uri); for (const c of img.checks) checkImage(b, c); }
 */
export function planUpdate(manifest: SuitManifest, device: DeviceIdentity = {}, limits?: Partial<SuitLimits>): UpdatePlan {
  for (const name of ['payloadFetch', 'install'] as const) {
    if (manifest.severed[name] && !manifest[name]) {
      throw new CoapfwError('SUIT_MALFORMED', `plan: the ${name === 'install' ? 'install' : 'payload-fetch'} sequence is severed and the envelope does not carry it`);
    }
  }
  const p = new Planner(manifest, device, suitLimits(limits));
  const order: [PlanSequence, readonly SuitCommand[] | undefined][] = [
    ['payload-fetch', manifest.payloadFetch],
    ['install', manifest.install],
    ['validate', manifest.validate],
    ['load', manifest.load],
    ['invoke', manifest.invoke],
  ];
  let ran = false;
  for (const [name, seq] of order) {
    if (seq) {
      p.runSequence(name, seq);
      ran = true;
    }
  }
  if (!ran) p.runSequence('validate', []);
  return {
    sequenceNumber: manifest.sequenceNumber,
    images: p.images,
    validate: p.validate,
    invoke: p.invoke,
    conditionsChecked: [...p.checked],
    unchecked: [...p.unchecked].filter((n) => !p.checked.has(n)),
  };
}
