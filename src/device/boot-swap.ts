/**
 * Power-safe exchange of the primary and secondary slots through a one
 * erase-block scratch area (MCUboot's "swap using scratch", with the swap
 * status kept in the boot log instead of slot trailers).
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
 */
import { ERASED, alignUp, type FlashBackend } from '../flash/backend.js';
import type { FlashArea, FlashLayout } from '../flash/layout.js';
import type { BootLog, BootState, SwapProgress } from './boot-state.js';

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

async function runStep(flash: FlashBackend, layout: FlashLayout, index: number, step: 0 | 1 | 2): Promise<void> {
  const ebs = flash.eraseBlockSize;
  const primary = blockAt(layout.primary, index, ebs);
  const secondary = blockAt(layout.secondary, index, ebs);
  switch (step) {
    case 0:
      return copyBlock(flash, primary, layout.scratch.offset);
    case 1:
      return copyBlock(flash, secondary, primary);
    case 2:
      return copyBlock(flash, layout.scratch.offset, secondary);
  }
}

/** Erase blocks a swap must exchange so that both images move completely. */
export function swapBlocks(state: BootState, eraseBlockSize: number): number {
  const longest = Math.max(state.primary?.size ?? 0, state.secondary?.size ?? 0);
  return Math.max(1, Math.ceil(longest / eraseBlockSize));
}

/**
 * Run (or resume) the swap recorded in `state.swap` to its end and commit
 * the state that follows: images exchanged, and the primary in
 * `test-pending` mode after an install or `confirmed` after a revert.
 */
export async function runSwap(flash: FlashBackend, layout: FlashLayout, log: BootLog, state: BootState): Promise<BootState> {
  let swap = state.swap;
  if (swap === null) return state;
  for (;;) {
    await runStep(flash, layout, swap.index, swap.step);
    const next: SwapProgress | null =
      swap.step < 2
        ? { ...swap, step: (swap.step + 1) as 1 | 2 }
        : swap.index + 1 < swap.blocks
          ? { ...swap, index: swap.index + 1, step: 0 }
          : null;
    if (next === null) break;
    swap = next;
    state = await log.commit({ ...state, swap });
  }
  return log.commit({
    primary: state.secondary,
    secondary: state.primary,
    primaryMode: swap.kind === 'install' ? 'test-pending' : 'confirmed',
    pending: false,
    swap: null,
  });
}
