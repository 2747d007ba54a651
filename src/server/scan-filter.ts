/**
 * Which names under a served directory are published. Hidden names (a
 * leading dot: `.env`, `.git/`, `.ssh/`) hold secrets and tool state, not
 * images; and a publisher that writes a file and renames it into place
 * leaves a half-written file under a temporary name meanwhile (`*.tmp`,
 * `*.part`, editors' `*~`, `.#*`, `#*#` and `*.swp`). A hidden temporary name
 * (`.#lock`) is skipped unless both kinds are asked for. Serving either would hand out
 * secrets or images that are still being written.
 */

/** What to index besides ordinary names. */
export interface ScanFilterOptions {
  /** Index names starting with a dot (files and directories). Default false. */
  readonly includeHidden?: boolean;
  /** Index names of files being written: `*.tmp`, `*.part`, `*~`, `.#*`, `#*#`, `*.swp`. Default false. */
  readonly includeTemporary?: boolean;
}

/** A name starting with a dot (which covers `.#lock` and `.name.swp`). */
export function isHiddenName(name: string): boolean {
  return name.startsWith('.');
}

/** A name a publisher or an editor writes while a file is in progress (Emacs `.#x` and `#x#`, Vim `.x.swp`). */
export function isTemporaryName(name: string): boolean {
  return (
    /\.(tmp|part|swp|swx)$/i.test(name) ||
    name.endsWith('~') ||
    name.startsWith('.#') ||
    (name.length > 1 && name.startsWith('#') && name.endsWith('#'))
  );
}

/** Whether a directory entry named `name` is skipped under `options`. */
export function skipName(name: string, options: ScanFilterOptions): boolean {
  if (!options.includeHidden && isHiddenName(name)) return true;
  return !options.includeTemporary && isTemporaryName(name);
}
