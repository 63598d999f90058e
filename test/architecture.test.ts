import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');

function sources(dir: string): string[] {
  const out: string[] = [];
  if (!existsSync(join(root, dir))) return out;
  for (const name of readdirSync(join(root, dir))) {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) out.push(...sources(path));
    else if (path.endsWith('.ts')) out.push(path);
  }
  return out;
}

const imports = (file: string): string[] =>
  [...readFileSync(join(root, file), 'utf8').matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!);

const all = ['runtime', 'actors', 'cluster', 'edge-api', 'bench', 'test'].flatMap((d) => sources(d));

describe('architecture', () => {
  it('imports nact nowhere outside runtime/', () => {
    const offenders = all.filter((f) => !f.startsWith('runtime/') && imports(f).includes('nact'));
    expect(offenders).toEqual([]);
  });

  it('keeps actors/ pure: it imports only runtime types and its own modules', () => {
    const offenders = sources('actors').flatMap((f) =>
      imports(f)
        .filter((spec) => {
          if (!spec.startsWith('.')) return true; // no packages, no node: modules
          const target = relative(root, join(root, f, '..', spec));
          return !target.startsWith('actors/') && !target.startsWith('runtime/');
        })
        .map((spec) => `${f} → ${spec}`),
    );
    expect(offenders).toEqual([]);
  });

  it('keeps runtime/ free of domain and outer layers', () => {
    const offenders = sources('runtime').flatMap((f) =>
      imports(f)
        .filter((spec) => /^\.\.\/(actors|cluster|edge-api)\//.test(spec))
        .map((spec) => `${f} → ${spec}`),
    );
    expect(offenders).toEqual([]);
  });
});
