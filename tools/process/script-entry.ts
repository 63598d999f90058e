/**
 * How to start one of our scripts as a child process: its compiled JavaScript under `dist/` (what
 * `npm start` and `npm run bench` run, so no tsx keepNames wrappers are measured or shipped) or its
 * TypeScript source under tsx (what the tests run without a build). A process starts children of
 * its own flavour unless told otherwise: the compiled bench spawns compiled nodes and workers.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** `compiled`: `dist/<script>.js` with plain node; `source`: `<script>.ts` with `--import tsx`. */
export type EntryFlavour = 'compiled' | 'source';

/** The flavour of the running code: compiled when this very module is the JavaScript under dist/. */
export const OWN_FLAVOUR: EntryFlavour = import.meta.filename.endsWith('.js') ? 'compiled' : 'source';

/** The repository root (where package.json is), seen from tools/process/ or dist/tools/process/ alike. */
export const PACKAGE_ROOT: string = join(import.meta.dirname, ...(OWN_FLAVOUR === 'compiled' ? ['..', '..', '..'] : ['..', '..']));

/** Where `npm run build` writes the compiled tree (tsconfig.build.json's outDir). */
export const DIST_DIR: string = join(PACKAGE_ROOT, 'dist');

/** A compiled entry was asked for before `npm run build` produced it. */
export class MissingBuildError extends Error {
  readonly code = 'MISSING_BUILD';
  constructor(readonly file: string) {
    super(`${file} does not exist: run \`npm run build\` first`);
    this.name = 'MissingBuildError';
  }
}

/** What to hand to spawn/fork: the file to run and the node flags it needs. */
export interface ScriptEntry {
  readonly file: string;
  readonly execArgv: readonly string[];
}

/**
 * The entry of `script`, a repository-relative source path such as `node/main.ts`. Throws
 * {@link MissingBuildError} for a compiled entry that was never built (a clear message instead of
 * a child that dies with MODULE_NOT_FOUND).
 */
export function scriptEntry(script: string, flavour: EntryFlavour = OWN_FLAVOUR): ScriptEntry {
  if (!script.endsWith('.ts')) throw new Error(`scriptEntry: ${script} is not a .ts source path`);
  if (flavour === 'source') return { file: join(PACKAGE_ROOT, script), execArgv: ['--import', 'tsx'] };
  const file = join(DIST_DIR, `${script.slice(0, -'.ts'.length)}.js`);
  if (!existsSync(file)) throw new MissingBuildError(file);
  return { file, execArgv: [] };
}
