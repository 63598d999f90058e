/** startNodeProcess: a real node from the compiled tree (what `npm start` runs) or from the sources under tsx. */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildCompiled } from '../../../tools/process/compiled-build.ts';
import { startNodeProcess, type NodeProcess } from '../../../tools/process/node-process.ts';
import { DIST_DIR } from '../../../tools/process/script-entry.ts';

let node: NodeProcess | undefined;
afterEach(async () => {
  await node?.stop('SIGKILL');
  node = undefined;
});

describe('startNodeProcess', () => {
  beforeAll(() => buildCompiled(), 240_000);

  it('runs dist/node/main.js with plain node when asked for the compiled entry, and it serves /healthz', async () => {
    node = await startNodeProcess({ NODE_ID: 'compiled-node' }, 30_000, { entry: 'compiled' });
    expect(node.entry).toBe('compiled');
    expect(node.nodeId).toBe('compiled-node');
    expect(node.child.spawnargs).toContain(`${DIST_DIR}/node/main.js`);
    expect(node.child.spawnargs.join(' ')).not.toContain('tsx');
    const res = await fetch(`http://127.0.0.1:${node.httpPort}/healthz`);
    expect(res.status).toBe(200);
  });

  it('runs the caller flavour by default: node/main.ts under tsx from the sources', async () => {
    node = await startNodeProcess({ NODE_ID: 'source-node' }, 30_000);
    expect(node.entry).toBe('source');
    expect(node.child.spawnargs.slice(-3)).toEqual(['--import', 'tsx', expect.stringMatching(/\/node\/main\.ts$/)]);
  });
});
