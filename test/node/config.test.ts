import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../node/config.ts';

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({ NODE_ID: 'n1' });
    expect(c).toMatchObject({
      nodeId: 'n1',
      httpPort: 8080,
      grpcPort: 50051,
      peerPort: 50052,
      host: '127.0.0.1',
      redisUrl: undefined,
      cluster: 'iot',
      adminToken: undefined,
      roles: ['ingress', 'edge', 'actors'],
      logLevel: 'info',
      autoJoin: true,
      rateLimit: { perTokenPerSec: 50, perHomePerSec: 100, burst: 100 },
    });
  });

  it.each([
    [{ HTTP_PORT: '70000' }, 'HTTP_PORT=70000'],
    [{ GRPC_PORT: '-1' }, 'GRPC_PORT=-1'],
    [{ ROLES: 'edge,brain' }, 'brain'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL=loud'],
    [{ AUTO_JOIN: 'yes' }, 'AUTO_JOIN=yes'],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL'],
    [{ NODE_ID: 'a/b' }, 'NODE_ID=a/b'],
    [{ ADMIN_TOKEN: 'short' }, 'ADMIN_TOKEN'],
    [{ HUB_WINDOW: '0' }, 'HUB_WINDOW=0'],
    [{ RATE_LIMIT_PER_TOKEN: 'lots' }, 'RATE_LIMIT_PER_TOKEN=lots'],
  ])('rejects %o naming the variable', (env, named) => {
    expect(() => loadConfig({ NODE_ID: 'n1', ...env })).toThrow(ConfigError);
    expect(() => loadConfig({ NODE_ID: 'n1', ...env })).toThrow(named);
  });
});
