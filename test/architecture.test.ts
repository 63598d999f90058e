/** The dependency rules of the tree, checked on the import graph: which folder may import which, and where nact and vitest may be imported. */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');

/** Repo-relative paths (with `/`) of the TypeScript files under `dir`. */
function sources(dir: string): string[] {
  const out: string[] = [];
  if (!existsSync(join(root, dir))) return out;
  for (const name of readdirSync(join(root, dir))) {
    const path = posix.join(dir, name);
    if (statSync(join(root, path)).isDirectory()) out.push(...sources(path));
    else if (path.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** One import of one file: `spec` as written, `target` the repo-relative path it resolves to (a package: the spec itself). */
interface Import {
  readonly file: string;
  readonly spec: string;
  readonly target: string;
}

const IMPORT_PATTERNS = [
  /^\s*(?:import|export)\b[^'"]*?\bfrom\s+['"]([^'"]+)['"]/gm, // import … from '…', export … from '…'
  /^\s*import\s+['"]([^'"]+)['"]/gm, // import '…' (side effects only)
  /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g, // import('…')
];

function importsOf(file: string): Import[] {
  const text = readFileSync(join(root, file), 'utf8');
  const specs = new Set(IMPORT_PATTERNS.flatMap((re) => [...text.matchAll(re)].map((m) => m[1]!)));
  return [...specs].map((spec) => ({
    file,
    spec,
    target: spec.startsWith('.') ? posix.normalize(posix.join(posix.dirname(file), spec)) : spec,
  }));
}

const isRelative = (i: Import): boolean => i.spec.startsWith('.');
/** The top-level folder a relative import lands in (`runtime`, `actors`, …). */
const folderOf = (i: Import): string => i.target.split('/')[0]!;
const isPackage = (i: Import, name: string): boolean => !isRelative(i) && (i.spec === name || i.spec.startsWith(`${name}/`));

const FOLDERS = ['runtime', 'actors', 'cluster', 'edge-api', 'node', 'protos', 'tools', 'bench', 'test'];
const files = (...dirs: string[]): string[] => dirs.flatMap((d) => sources(d));
const all = [...files(...FOLDERS), 'vitest.config.ts'];

/** `file → spec` for every import of `from` that `bad` rejects. */
const offenders = (from: string[], bad: (i: Import) => boolean): string[] =>
  from
    .flatMap(importsOf)
    .filter(bad)
    .map((i) => `${i.file} → ${i.spec}`);

describe('architecture', () => {
  it('scans every source folder', () => {
    for (const dir of [...FOLDERS, 'runtime/redis', 'actors/rules']) expect(sources(dir).length, dir).toBeGreaterThan(0);
  });

  it('imports nact nowhere outside runtime/', () => {
    expect(
      offenders(
        all.filter((f) => !f.startsWith('runtime/')),
        (i) => isPackage(i, 'nact'),
      ),
    ).toEqual([]);
  });

  it('keeps actors/ pure: it imports only runtime types, its own modules and pure calendar math', () => {
    // No I/O packages, no node: modules, nothing of the outer layers. croner and suncalc are pure
    // functions of their arguments (next cron time, sun times): the rules compute with them, and a
    // replayed step decides as it did (their timers are never started).
    const PURE_PACKAGES = new Set(['croner', 'suncalc']);
    expect(
      offenders(files('actors'), (i) => (isRelative(i) ? !['actors', 'runtime'].includes(folderOf(i)) : !PURE_PACKAGES.has(i.target))),
    ).toEqual([]);
  });

  it('keeps runtime/ (runtime/redis/ included) free of domain and outer layers: it imports only runtime/', () => {
    expect(offenders(files('runtime'), (i) => isRelative(i) && folderOf(i) !== 'runtime')).toEqual([]);
  });

  it('keeps cluster/ below the domain and the edge: it imports runtime/ and protos/, never actors/, edge-api/ or node/', () => {
    expect(offenders(files('cluster'), (i) => isRelative(i) && !['cluster', 'runtime', 'protos'].includes(folderOf(i)))).toEqual([]);
  });

  it('keeps protos/ to protos and their loader: it imports no other folder', () => {
    expect(offenders(files('protos'), (i) => isRelative(i) && folderOf(i) !== 'protos')).toEqual([]);
  });

  it('never imports test/ from outside it (bench/ and tools/ included)', () => {
    const outside = files(...FOLDERS.filter((d) => d !== 'test'));
    expect(offenders(outside, (i) => isRelative(i) && folderOf(i) === 'test')).toEqual([]);
  });

  it('keeps tools/ usable on its own: no vitest, nothing of bench/', () => {
    expect(offenders(files('tools'), (i) => isPackage(i, 'vitest') || (isRelative(i) && folderOf(i) === 'bench'))).toEqual([]);
  });

  it('imports vitest only in test/ and the vitest config', () => {
    expect(offenders(files(...FOLDERS.filter((d) => d !== 'test')), (i) => isPackage(i, 'vitest'))).toEqual([]);
  });
});
