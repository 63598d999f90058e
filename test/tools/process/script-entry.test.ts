/** Where a child process's code comes from: the compiled tree under dist/ or the TypeScript sources under tsx. */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCompiled } from '../../../tools/process/compiled-build.ts';
import { DIST_DIR, MissingBuildError, OWN_FLAVOUR, PACKAGE_ROOT, scriptEntry } from '../../../tools/process/script-entry.ts';

describe('scriptEntry', () => {
  it('finds the repository root and runs sources under tsx when the caller is a source (as under vitest)', () => {
    expect(existsSync(join(PACKAGE_ROOT, 'package.json'))).toBe(true);
    expect(DIST_DIR).toBe(join(PACKAGE_ROOT, 'dist'));
    expect(OWN_FLAVOUR).toBe('source');
    expect(scriptEntry('node/main.ts')).toEqual({ file: join(PACKAGE_ROOT, 'node', 'main.ts'), execArgv: ['--import', 'tsx'] });
  });

  it('maps a source path to its compiled .js under dist/, and says to build when it is missing', () => {
    expect(() => scriptEntry('bench/no-such-script.ts', 'compiled')).toThrow(MissingBuildError);
    expect(() => scriptEntry('bench/no-such-script.ts', 'compiled')).toThrow(
      /dist\/bench\/no-such-script\.js does not exist: run `npm run build` first/,
    );
    try {
      scriptEntry('bench/no-such-script.ts', 'compiled');
    } catch (err) {
      expect((err as MissingBuildError).code).toBe('MISSING_BUILD');
    }
  });

  it('rejects a path that is not a .ts source', () => {
    expect(() => scriptEntry('node/main.js', 'source')).toThrow(/not a \.ts source path/);
  });

  describe('from the compiled tree', () => {
    beforeAll(() => buildCompiled(), 240_000);

    it('knows it is compiled, finds the same root, and starts children from dist/ without tsx', () => {
      // A plain node process (no tsx anywhere) importing the compiled module, as dist/bench/run.js does.
      const script = `
        const m = await import(${JSON.stringify(join(DIST_DIR, 'tools', 'process', 'script-entry.js'))});
        console.log(JSON.stringify({ own: m.OWN_FLAVOUR, root: m.PACKAGE_ROOT, entry: m.scriptEntry('bench/harness/load-worker.ts') }));`;
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
        encoding: 'utf8',
        env: { ...process.env, NODE_OPTIONS: '' },
      });
      expect(JSON.parse(out)).toEqual({
        own: 'compiled',
        root: PACKAGE_ROOT,
        entry: { file: join(DIST_DIR, 'bench', 'harness', 'load-worker.js'), execArgv: [] },
      });
    });
  });
});
