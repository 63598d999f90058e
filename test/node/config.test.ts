import { describe, expect, it } from 'vitest';
import { checkRedisUrl, ConfigError, DEFAULT_DRAIN_TIMEOUT_MS, loadConfig, MAX_DURATION_MS, redactRedisUrl } from '../../node/config.ts';
import { ACCEPTED_REDIS_URLS, REFUSED_REDIS_URLS } from '../runtime/redis/redis-urls.ts';

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
    [{ ROLES: 'edge,ingress' }, 'ROLES must include actors'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL=loud'],
    [{ AUTO_JOIN: 'yes' }, 'AUTO_JOIN=yes'],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL'],
    [{ NODE_ID: 'a/b' }, 'NODE_ID=a/b'],
    [{ ADMIN_TOKEN: 'short' }, 'ADMIN_TOKEN'],
    [{ HUB_WINDOW: '0' }, 'HUB_WINDOW=0'],
    [{ RATE_LIMIT_PER_TOKEN: 'lots' }, 'RATE_LIMIT_PER_TOKEN=lots'],
    // Below 500 ms Membership would refuse it only at the ring join, after the ports opened.
    [{ HEARTBEAT_TTL_MS: '4' }, 'HEARTBEAT_TTL_MS=4 is outside 500..300000 ms'],
    [{ HEARTBEAT_TTL_MS: '400000' }, 'HEARTBEAT_TTL_MS=400000'],
    [{ REDIS_WAIT_REPLICAS: '-1' }, 'REDIS_WAIT_REPLICAS=-1'],
  ])('rejects %o naming the variable', (env, named) => {
    expect(() => loadConfig({ NODE_ID: 'n1', ...env })).toThrow(ConfigError);
    expect(() => loadConfig({ NODE_ID: 'n1', ...env })).toThrow(named);
  });

  it('reads the HTTP edge settings: TLS files, METRICS_PORT and METRICS_HOST (loopback by default, not HOST), and the SSE caps', () => {
    const dflt = loadConfig({ NODE_ID: 'n1', HOST: '0.0.0.0' });
    expect(dflt).toMatchObject({
      httpTls: undefined,
      metricsPort: undefined,
      metricsHost: '127.0.0.1',
      sseLimit: { perToken: 16, perHome: 64 },
    });
    expect(loadConfig({ NODE_ID: 'n1', METRICS_PORT: '9464', METRICS_HOST: '10.0.0.5' })).toMatchObject({ metricsHost: '10.0.0.5' });
    const set = loadConfig({
      NODE_ID: 'n1',
      HTTP_TLS_CERT: '/tls/edge.crt',
      HTTP_TLS_KEY: '/tls/edge.key',
      METRICS_PORT: '9464',
      SSE_MAX_PER_TOKEN: '4',
      SSE_MAX_PER_HOME: '8',
    });
    expect(set).toMatchObject({
      httpTls: { cert: '/tls/edge.crt', key: '/tls/edge.key', ca: undefined },
      metricsPort: 9464,
      sseLimit: { perToken: 4, perHome: 8 },
    });
    expect(() => loadConfig({ NODE_ID: 'n1', HTTP_TLS_CERT: '/tls/edge.crt' })).toThrow(
      'HTTP_TLS_CERT and HTTP_TLS_KEY must be set together',
    );
    expect(() => loadConfig({ NODE_ID: 'n1', METRICS_PORT: 'x' })).toThrow('METRICS_PORT=x');
    expect(() => loadConfig({ NODE_ID: 'n1', SSE_MAX_PER_HOME: '0' })).toThrow('SSE_MAX_PER_HOME=0');
    // HTTP_TLS_CA: apps must then present a client certificate signed by it.
    expect(loadConfig({ NODE_ID: 'n1', HTTP_TLS_CERT: '/c', HTTP_TLS_KEY: '/k', HTTP_TLS_CA: '/ca' }).httpTls).toEqual({
      cert: '/c',
      key: '/k',
      ca: '/ca',
    });
    expect(() => loadConfig({ NODE_ID: 'n1', HTTP_TLS_CA: '/ca' })).toThrow('HTTP_TLS_CERT and HTTP_TLS_KEY must be set together');
    expect(() => loadConfig({ NODE_ID: 'n1', METRICS_PORT: '9464', METRICS_HOST: 'scrape here' })).toThrow('METRICS_HOST=scrape here');
  });

  it('refuses METRICS_HOST without METRICS_PORT (it would serve nothing)', () => {
    expect(() => loadConfig({ NODE_ID: 'n1', METRICS_HOST: '10.0.0.5' })).toThrow(ConfigError);
    expect(() => loadConfig({ NODE_ID: 'n1', METRICS_HOST: '10.0.0.5' })).toThrow('METRICS_HOST is set without METRICS_PORT');
  });

  it('refuses a METRICS_PORT shared with a port the node serves, and allows it where that port is unused or 0', () => {
    expect(() => loadConfig({ NODE_ID: 'n1', METRICS_PORT: '8080' })).toThrow('METRICS_PORT=8080 is also HTTP_PORT');
    expect(() => loadConfig({ NODE_ID: 'n1', METRICS_PORT: '9000', GRPC_PORT: '9000' })).toThrow('METRICS_PORT=9000 is also GRPC_PORT');
    expect(() => loadConfig({ NODE_ID: 'n1', REDIS_URL: 'redis://r:6379', METRICS_PORT: '50052' })).toThrow(
      'METRICS_PORT=50052 is also PEER_PORT',
    );
    // No REDIS_URL: no peer port. No ingress role: no gRPC port. Port 0: a free port each.
    expect(loadConfig({ NODE_ID: 'n1', METRICS_PORT: '50052' }).metricsPort).toBe(50052);
    expect(loadConfig({ NODE_ID: 'n1', ROLES: 'edge,actors', METRICS_PORT: '50051' }).metricsPort).toBe(50051);
    expect(loadConfig({ NODE_ID: 'n1', HTTP_PORT: '0', METRICS_PORT: '0' }).metricsPort).toBe(0);
  });

  it('bounds every millisecond setting by the longest timer Node.js honours (2^31-1 ms), which is accepted', () => {
    expect(MAX_DURATION_MS).toBe(2 ** 31 - 1);
    for (const [name, key] of [
      ['PASSIVATE_AFTER_MS', 'passivateAfterMs'],
      ['HUB_HELLO_TIMEOUT_MS', 'hubHelloTimeoutMs'],
      ['HUB_IDLE_MS', 'hubIdleMs'],
    ] as const) {
      expect(loadConfig({ NODE_ID: 'n1', [name]: String(MAX_DURATION_MS) })[key]).toBe(MAX_DURATION_MS);
      // Past it, setTimeout would fire after 1 ms: a hub idle limit of "forever" would close every hub at once.
      expect(() => loadConfig({ NODE_ID: 'n1', [name]: String(MAX_DURATION_MS + 1) })).toThrow(`${name}=${MAX_DURATION_MS + 1} is over`);
    }
  });

  it('reads the peer port settings: PEER_HOST (loopback by default), PEER_SECRET and the PEER_TLS files with their CA', () => {
    expect(loadConfig({ NODE_ID: 'n1', HOST: '0.0.0.0' })).toMatchObject({
      host: '0.0.0.0',
      peerHost: '127.0.0.1',
      peerSecret: undefined,
      peerTls: undefined,
    });
    const secret = 'a-peer-secret-of-at-least-32-characters';
    expect(
      loadConfig({
        NODE_ID: 'n1',
        PEER_HOST: '10.0.0.7',
        PEER_SECRET: secret,
        PEER_TLS_CERT: '/tls/n1.crt',
        PEER_TLS_KEY: '/tls/n1.key',
        PEER_TLS_CA: '/tls/ca.crt',
      }),
    ).toMatchObject({ peerHost: '10.0.0.7', peerSecret: secret, peerTls: { cert: '/tls/n1.crt', key: '/tls/n1.key', ca: '/tls/ca.crt' } });
    expect(() => loadConfig({ NODE_ID: 'n1', PEER_SECRET: 'too-short' })).toThrow('PEER_SECRET must be at least 32 characters');
    expect(() => loadConfig({ NODE_ID: 'n1', PEER_TLS_CERT: '/tls/n1.crt', PEER_TLS_KEY: '/tls/n1.key' })).toThrow('PEER_TLS_CA');
    expect(() => loadConfig({ NODE_ID: 'n1', PEER_HOST: 'a b' })).toThrow('PEER_HOST=a b');
  });

  it('reads the hub port settings: HUB_TLS files (CA optional), hello deadline, idle limit, connection cap and outbound queue', () => {
    expect(loadConfig({ NODE_ID: 'n1' })).toMatchObject({
      hubTls: undefined,
      hubHelloTimeoutMs: 10_000,
      hubIdleMs: 300_000,
      hubMaxConnections: 20_000,
      hubOutboundQueue: 1_000,
    });
    expect(
      loadConfig({
        NODE_ID: 'n1',
        HUB_TLS_CERT: '/tls/hub.crt',
        HUB_TLS_KEY: '/tls/hub.key',
        HUB_HELLO_TIMEOUT_MS: '2500',
        HUB_IDLE_MS: '60000',
        HUB_MAX_CONNECTIONS: '100',
        HUB_OUTBOUND_QUEUE: '50',
      }),
    ).toMatchObject({
      hubTls: { cert: '/tls/hub.crt', key: '/tls/hub.key', ca: undefined },
      hubHelloTimeoutMs: 2_500,
      hubIdleMs: 60_000,
      hubMaxConnections: 100,
      hubOutboundQueue: 50,
    });
    expect(loadConfig({ NODE_ID: 'n1', HUB_TLS_CERT: '/c', HUB_TLS_KEY: '/k', HUB_TLS_CA: '/ca' }).hubTls).toEqual({
      cert: '/c',
      key: '/k',
      ca: '/ca',
    });
    expect(() => loadConfig({ NODE_ID: 'n1', HUB_TLS_KEY: '/k' })).toThrow('HUB_TLS_CERT and HUB_TLS_KEY must be set together');
    for (const name of ['HUB_HELLO_TIMEOUT_MS', 'HUB_IDLE_MS', 'HUB_MAX_CONNECTIONS', 'HUB_OUTBOUND_QUEUE'])
      expect(() => loadConfig({ NODE_ID: 'n1', [name]: '0' })).toThrow(`${name}=0`);
  });

  it('reads ADVERTISE_HOST (unset by default) and ACCESS_LOG (on by default)', () => {
    expect(loadConfig({ NODE_ID: 'n1' })).toMatchObject({ advertiseHost: undefined, accessLog: true });
    expect(loadConfig({ NODE_ID: 'n1', ADVERTISE_HOST: 'n1.iot-peers', ACCESS_LOG: 'false' })).toMatchObject({
      advertiseHost: 'n1.iot-peers',
      accessLog: false,
    });
    expect(loadConfig({ NODE_ID: 'n1', ADVERTISE_HOST: 'fd00::7' }).advertiseHost).toBe('fd00::7');
    expect(() => loadConfig({ NODE_ID: 'n1', ADVERTISE_HOST: 'a b' })).toThrow('ADVERTISE_HOST=a b');
    // A wildcard binds every interface: nobody can dial it.
    for (const wildcard of ['0.0.0.0', '::'])
      expect(() => loadConfig({ NODE_ID: 'n1', ADVERTISE_HOST: wildcard })).toThrow(`ADVERTISE_HOST=${wildcard} binds every interface`);
    expect(() => loadConfig({ NODE_ID: 'n1', ACCESS_LOG: 'maybe' })).toThrow('ACCESS_LOG=maybe must be true or false');
  });

  it('refuses an ADVERTISE_HOST with a port (the node appends each port: `[n1.svc:80]:50052`), accepts an IPv6 address', () => {
    for (const bad of ['n1.svc:80', '10.0.0.7:8080', 'n1:'])
      expect(() => loadConfig({ NODE_ID: 'n1', ADVERTISE_HOST: bad })).toThrow(`ADVERTISE_HOST=${bad} is not a host name or address`);
    expect(loadConfig({ NODE_ID: 'n1', ADVERTISE_HOST: '::ffff:10.0.0.7' }).advertiseHost).toBe('::ffff:10.0.0.7');
  });

  it('reads DRAIN_TIMEOUT_MS: 40 s by default, a positive number of milliseconds', () => {
    expect(loadConfig({ NODE_ID: 'n1' }).drainTimeoutMs).toBe(DEFAULT_DRAIN_TIMEOUT_MS);
    expect(DEFAULT_DRAIN_TIMEOUT_MS).toBe(40_000);
    expect(loadConfig({ NODE_ID: 'n1', DRAIN_TIMEOUT_MS: '5000' }).drainTimeoutMs).toBe(5_000);
    expect(() => loadConfig({ NODE_ID: 'n1', DRAIN_TIMEOUT_MS: '0' })).toThrow('DRAIN_TIMEOUT_MS=0 is not a positive integer');
  });
});

describe('REDIS_URL', () => {
  it.each(ACCEPTED_REDIS_URLS)('accepts %s', (url) => {
    expect(loadConfig({ NODE_ID: 'n1', REDIS_URL: url }).redisUrl).toBe(url);
  });

  it.each(REFUSED_REDIS_URLS)('refuses %s, naming REDIS_URL and what is wrong', (url, why) => {
    expect(() => loadConfig({ NODE_ID: 'n1', REDIS_URL: url })).toThrow(ConfigError);
    expect(() => loadConfig({ NODE_ID: 'n1', REDIS_URL: url })).toThrow(/^REDIS_URL[=:]/);
    expect(() => loadConfig({ NODE_ID: 'n1', REDIS_URL: url })).toThrow(why);
  });

  it('never shows the password in its messages', () => {
    for (const url of [
      'redis://:hunter2-secret@r:6379/cache',
      'redis-sentinel://:hunter2-secret@s1:26379',
      'redis-cluster://u:hunter2-secret@c1',
    ]) {
      const err = (() => {
        try {
          checkRedisUrl(url);
        } catch (e) {
          return e as Error;
        }
        throw new Error(`${url} was accepted`);
      })();
      expect(err.message).not.toContain('hunter2');
      expect(err.message).toContain(':***@');
    }
    expect(redactRedisUrl('redis://user:pw@r:6379')).toBe('redis://user:***@r:6379');
    expect(redactRedisUrl('redis://r:6379/0')).toBe('redis://r:6379/0');
  });

  it.each([
    // A raw `@` in the password: the reviewer's leaks, and where the credentials end is unknown.
    ['redis-sentinel://:p@ss@s1:26379,s2:26379/mymaster', 'p@ss'],
    ['redis-sentinel://:s3cr@t1@s1:26379,s2:26379/mymaster', 's3cr@t1'],
    // Once a reader that stopped at the first `/` took `u:1234` for host:port and quoted the rest.
    ['redis://u:1234/abc@h/cache', '1234/abc'],
    ['redis://:sec@ret@more@h:6379', 'sec@ret@more'],
    ['redis-cluster://:hidd@denn@c1:7000,c2', 'hidd@denn'],
    // Credentials that end at the last `@` but are otherwise wrong.
    ['redis://u:hid%zzden@h', 'hid%zzden'],
    ['redis-sentinel://u:hunter/2@s1:26379/m?x=1', 'hunter/2'],
  ])('never quotes anything before the last @ of %s', (url, secret) => {
    let message = '';
    try {
      loadConfig({ NODE_ID: 'n1', REDIS_URL: url });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^REDIS_URL/);
    expect(message).not.toContain(secret);
    for (const piece of secret.split(/[@/%]/)) if (piece.length > 3) expect(message).not.toContain(piece);
  });

  it.each([
    [':hunter2-secret@redis:6379', 'REDIS_URL=***@redis:6379: must start with redis://'],
    ['redis:/u:hunter2-secret@h', 'REDIS_URL=***@h: must start with redis://'],
  ])('hides everything before the last @ of %s, a URL without scheme:// (where its credentials start is unknown)', (url, message) => {
    // Before the fix the URL was quoted whole, password included.
    expect(() => loadConfig({ NODE_ID: 'n1', REDIS_URL: url })).toThrow(message);
    expect(redactRedisUrl(url)).not.toContain('hunter2');
  });

  it('shows a user name only when it surely is one', () => {
    expect(redactRedisUrl('redis://user:p@ss@h')).toBe('redis://user:***@h');
    // A raw `@` before the first `:` may be the password's: nothing before the last `@` shows.
    expect(redactRedisUrl('redis://hunt@er2:more@h:6379')).toBe('redis://***@h:6379');
    expect(redactRedisUrl('no-credentials:6379')).toBe('no-credentials:6379');
  });

  it('asks for %40 when a password holds a raw @, without showing the URL', () => {
    expect(() => loadConfig({ NODE_ID: 'n1', REDIS_URL: 'redis://:p@ss@h:6379' })).toThrow(
      'REDIS_URL: its credentials contain a raw "@": write @ in the password as %40',
    );
  });
});
