/**
 * Power-safe exchange of the primary and secondary slots through a one
 * erase-block scratch area (MCUboot's "swap using scratch", with the swap
 * status kept in the boot log instead of slot trailers), for every component
 * of the update set in turn, as one swap.
 *
 * For each erase block i, three steps, each followed by one boot-log record
 * naming the next step:
 * ```
 * step 0: scratch      <- primary[i]     (primary[i] is still the original)
 * step 1: primary[i]   <- secondary[i]   (original primary[i] is safe in scratch)
 * step 2: secondary[i] <- scratch        (scratch is not reused before (i+1, 0) is recorded)
 * ```
 * A step is "erase destination, program it from the source", and the source
 * of the recorded step is never modified before that step's successor is
 * recorded, so after a power cut the bootloader simply redoes the recorded
 * step: every step is idempotent. The last step's successor record is the
 * one that ends the swap (descriptors exchanged), so a swap of n blocks
 * costs 3n erases, up to 3n programs and 3n boot records (plus a page erase
 * of the boot log every `eraseBlockSize / 96` records). The scratch block is
 * erased once per swapped block: that is where wear concentrates.
 *
 * A set of several components is swapped one component after the other
 * (`part` counts through the set), all under one swap record sequence, and
 * only the record that ends the whole swap exchanges the image descriptors
 * of all of them. Until then a cut resumes the swap where it stopped, and the
 * bootloader runs nothing before the swap is complete, so the device runs
 * either the whole old set or the whole new set, never a mix.
 */
import { ERASED, alignUp, type FlashBackend } from '../flash/backend.js';
import type { ComponentSlots, FlashArea, FlashLayout } from '../flash/layout.js';
import type { BootLog, BootState, ComponentImages, SwapProgress } from './boot-state.js';

/** Erase `dst` (one erase block) and program it with the contents of `src`. */
async function copyBlock(flash: FlashBackend, src: number, dst: number): Promise<void> {
  const ebs = flash.eraseBlockSize;
  const data = await flash.read(src, ebs);
  await flash.erase(dst, ebs);
  // Trailing erased bytes need no programming (and cost none on NOR).
  let end = data.length;
  while (end > 0 && data[end - 1] === ERASED) end--;
  end = alignUp(end, flash.writeAlignment);
  if (end > 0) await flash.write(dst, data.subarray(0, end));
}

function blockAt(area: FlashArea, index: number, ebs: number): number {
  return area.offset + index * ebs;
}

async function runStep(flash: FlashBackend, layout: FlashLayout, slots: ComponentSlots, index: number, step: 0 | 1 | 2): Promise<void> {
  const ebs = flash.eraseBlockSize;
  const primary = blockAt(slots.primary, index, ebs);
  const secondary = blockAt(slots.secondary, index, ebs);
  switch (step) {
    case 0:
      return copyBlock(flash, primary, layout.scratch.offset);
    case 1:
      return copyBlock(flash, secondary, primary);
    case 2:
      return copyBlock(flash, layout.scratch.offset, secondary);
  }
}

/** Erase blocks a swap of one component must exchange so that both its images move completely. */
export function swapBlocks(images: ComponentImages, eraseBlockSize: number): number {
  const longest = Math.max(images.primary?.size ?? 0, images.secondary?.size ?? 0);
  return Math.max(1, Math.ceil(longest / eraseBlockSize));
}

/** The swap record that starts swapping part `part` of the set. */
export function startPart(state: BootState, kind: SwapProgress['kind'], part: number, eraseBlockSize: number): SwapProgress {
  const c = state.set[part]!;
  return { kind, part, blocks: swapBlocks(state.components[c]!, eraseBlockSize), index: 0, step: 0 };
}

/** The step after `swap`, or null after the last step of the last component of the set. */
function nextStep(state: BootState, swap: SwapProgress, eraseBlockSize: number): SwapProgress | null {
  if (swap.step < 2) return { ...swap, step: (swap.step + 1) as 1 | 2 };
  if (swap.index + 1 < swap.blocks) return { ...swap, index: swap.index + 1, step: 0 };
  return swap.part + 1 < state.set.length ? startPart(state, swap.kind, swap.part + 1, eraseBlockSize) : null;
}

/**
 * Run (or resume) the swap recorded in `state.swap` to its end and commit
 * the state that follows: images of every component of the set exchanged,
 * and the set in `test-pending` mode after an install or `confirmed` after a
 * revert.
 */
export async function runSwap(flash: FlashBackend, layout: FlashLayout, log: BootLog, state: BootState): Promise<BootState> {
  let swap = state.swap;
  if (swap === null) return state;
  for (;;) {
    const slots = layout.components[state.set[swap.part]!]!;
    await runStep(flash, layout, slots, swap.index, swap.step);
    const next = nextStep(state, swap, flash.eraseBlockSize);
    if (next === null) break;
    swap = next;
    state = await log.commit({ ...state, swap });
  }
  const inSet = new Set(state.set);
  return log.commit({
    ...state,
    components: state.components.map((c, i) => (inSet.has(i) ? { primary: c.secondary, secondary: c.primary } : c)),
    primaryMode: swap.kind === 'install' ? 'test-pending' : 'confirmed',
    pending: false,
    swap: null,
  });
}
