/**
 * deploy/Dockerfile and deploy/docker-compose.yml (with its Prometheus and Grafana files) held
 * against the node's configuration and each other. No Docker daemon is needed: the files are read
 * as Docker and Compose read them; the compiled build the image runs is tested by
 * production-install.test.ts.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLE_NAMES } from '../../node/config-variables.ts';
import { loadConfig } from '../../node/config.ts';
import { PACKAGE_ROOT } from '../../tools/process/script-entry.ts';
import {
  DEPLOY_DIR,
  dockerignoreExcludes,
  interpolateCompose,
  parseDockerfile,
  readDeployFile,
  stageEnv,
  type DockerStage,
} from './deploy-files.ts';

const stages = parseDockerfile(readDeployFile('Dockerfile'));
const runtime = stages.at(-1)!;
const imageEnv = stageEnv(runtime);
const instructions = (stage: DockerStage, keyword: string): string[] =>
  stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);

/** What a user exports before `docker compose up` (the required variables). */
const USER_VARS = {
  ADMIN_TOKEN: 'admin-token-of-the-compose-test',
  PEER_SECRET: 'peer-secret-of-the-compose-test-0123456789',
  GRAFANA_ADMIN_PASSWORD: 'grafana-password',
};
const compose = parse(readDeployFile('docker-compose.yml'), { merge: true });
const services: Record<string, any> = compose.services;
const nodes = Object.keys(services).filter((name) => services[name].build !== undefined);
/** The environment of a node's container: the image's ENV, then the service's, interpolated. */
const nodeEnv = (service: string, vars: Record<string, string | undefined> = USER_VARS): Record<string, string> => ({
  ...imageEnv,
  ...Object.fromEntries(
    Object.entries(services[service].environment as Record<string, string>).map(([k, v]) => [k, interpolateCompose(String(v), vars)]),
  ),
});
/** `host:container[:ro]` bind mounts of a service whose host side is a path (`./…`), resolved against deploy/. */
const bindMounts = (service: string): { host: string; container: string }[] =>
  (services[service].volumes as string[])
    .filter((v) => v.startsWith('.'))
    .map((v) => {
      const [host, container] = v.split(':');
      return { host: resolve(DEPLOY_DIR, host!), container: container! };
    });
const mountedAt = (service: string, hostRelative: string): string => {
  const mount = bindMounts(service).find((m) => m.host === resolve(DEPLOY_DIR, hostRelative));
  if (!mount) throw new Error(`${service} does not mount ${hostRelative}`);
  return mount.container;
};
/** Whether docker leaves a context-relative path out of the build context, by /.dockerignore. */
const excluded = dockerignoreExcludes(readFileSync(join(PACKAGE_ROOT, '.dockerignore'), 'utf8'));
const seconds = (duration: string): number => {
  const m = /^(\d+)s$/.exec(duration);
  if (!m) throw new Error(`not a duration in seconds: ${duration}`);
  return Number(m[1]);
};

describe('deploy/Dockerfile', () => {
  it('builds in one stage and runs in a slim one, from the Node line the package requires', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const build = stages.find((s) => instructions(s, 'RUN').some((r) => r.includes('npm run build')));
    expect(build, 'a stage that runs npm run build').toBeDefined();
    expect(build).not.toBe(runtime);
    const base = /^ARG NODE_IMAGE=(\S+)$/m.exec(readDeployFile('Dockerfile'))?.[1];
    expect(base).toMatch(/^node:20-bookworm-slim/);
    for (const s of stages) expect(s.from).toBe('${NODE_IMAGE}');
  });

  it('copies everything the build compiles into the build stage', () => {
    const build = stages.find((s) => instructions(s, 'RUN').some((r) => r.includes('npm run build')))!;
    const copied = instructions(build, 'COPY').flatMap((args) => args.split(/\s+/).slice(0, -1));
    const { config, error } = ts.readConfigFile(join(PACKAGE_ROOT, 'tsconfig.build.json'), (path) => ts.sys.readFile(path));
    expect(error).toBeUndefined();
    for (const dir of config.include as string[]) expect(copied, `COPY ${dir}`).toContain(dir);
    for (const file of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) expect(copied).toContain(file);
    expect(instructions(build, 'RUN').join('\n')).toMatch(/npm ci\b/);
  });

  it('runs the compiled node as PID 1 under an unprivileged user, with production dependencies only', () => {
    const user = instructions(runtime, 'USER');
    expect(user).toHaveLength(1);
    expect(user[0]).not.toMatch(/^(root|0)(:|$)/);
    expect(JSON.parse(instructions(runtime, 'CMD')[0]!)).toEqual(['node', 'dist/node/main.js']);
    expect(instructions(runtime, 'ENTRYPOINT')).toEqual([]);
    expect(instructions(runtime, 'STOPSIGNAL')).toEqual(['SIGTERM']);
    const copies = instructions(runtime, 'COPY');
    expect(copies).toContain('--from=build /app/dist ./dist');
    const modules = copies.find((c) => c.includes('node_modules'));
    const from = /--from=(\S+)/.exec(modules ?? '')?.[1];
    const deps = stages.find((s) => s.name === from);
    expect(instructions(deps!, 'RUN').join('\n')).toMatch(/npm ci --omit=dev/);
  });

  it('sets only configuration variables (and NODE_ENV), exposes the ports they open and checks /healthz', () => {
    expect(imageEnv.NODE_ENV).toBe('production');
    expect(Object.keys(imageEnv).filter((n) => n !== 'NODE_ENV' && !CONFIG_VARIABLE_NAMES.has(n))).toEqual([]);
    const config = loadConfig(imageEnv);
    expect(config).toMatchObject({ host: '0.0.0.0', peerHost: '0.0.0.0', metricsHost: '0.0.0.0' });
    const exposed = instructions(runtime, 'EXPOSE').flatMap((e) => e.split(/\s+/).map(Number));
    expect(exposed.sort()).toEqual([config.httpPort, config.grpcPort, config.peerPort, config.metricsPort].sort());
    const [healthcheck] = instructions(runtime, 'HEALTHCHECK');
    expect(healthcheck).toContain('/healthz');
    expect(healthcheck).toContain('CMD ["node", "-e"'); // the slim image has no curl: Node's fetch
    expect(healthcheck).toContain(String(config.httpPort));
  });

  it('is built from a context without installed, generated or secret files (/.dockerignore at the context root)', () => {
    for (const path of ['node_modules/ioredis/package.json', 'dist/node/main.js', '.git/config', 'test-results/x.xml', 'deploy/.env'])
      expect(excluded(path), path).toBe(true);
    // Env files anywhere in the tree, not only at the top: `*.env` in a .dockerignore matches the context root only.
    for (const path of ['.env', '.env.production', 'node/local.env', 'edge-api/http/.env', 'tools/doctor/.env.local'])
      expect(excluded(path), path).toBe(true);
  });

  it('sends every COPY source of the build, and every file the build compiles or copies under them', () => {
    const sources = stages
      .flatMap((s) => instructions(s, 'COPY'))
      .filter((args) => !args.startsWith('--from='))
      .flatMap((args) => args.split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      expect(existsSync(join(PACKAGE_ROOT, source)), source).toBe(true);
      expect(excluded(source), `.dockerignore excludes COPY ${source}`).toBe(false);
    }
    // The inputs of `npm run build`: TypeScript, the .proto files and the admin console's static files.
    const inputs = sources
      .filter((source) => statSync(join(PACKAGE_ROOT, source)).isDirectory())
      .flatMap((dir) => readdirSync(join(PACKAGE_ROOT, dir), { recursive: true, encoding: 'utf8' }).map((f) => `${dir}/${f}`))
      .filter((path) => /\.(ts|proto)$/.test(path) || path.startsWith('edge-api/admin-console/static/'));
    expect(inputs).toContain('node/main.ts');
    expect(inputs.filter((path) => excluded(path))).toEqual([]);
  });
});

describe('the .dockerignore reader these tests use', () => {
  it('matches as docker does: anchored at the context root, `*` within a segment, `**` across, parents, the last match deciding', () => {
    const ignores = dockerignoreExcludes('# comment\n/docs\n*.md\n**/*.key\nbench/**/tmp?\n!README.md\n  cache/  \n');
    expect(['docs/a.html', 'x.md', 'a/b/c.key', 'k.key', 'bench/tmp1', 'bench/x/y/tmpA/f', 'cache/x'].filter((p) => !ignores(p))).toEqual(
      [],
    );
    expect(['README.md', 'node/x.md', 'node/docs', 'bench/tmp', '# comment', 'keys/x'].filter((p) => ignores(p))).toEqual([]);
  });
});

describe('deploy/docker-compose.yml', () => {
  it('runs three nodes built from deploy/Dockerfile, each advertising its service name', () => {
    expect(nodes).toEqual(['n1', 'n2', 'n3']);
    for (const n of nodes) {
      const build = services[n].build;
      expect(resolve(DEPLOY_DIR, build.context, build.dockerfile)).toBe(join(DEPLOY_DIR, 'Dockerfile'));
      const env = nodeEnv(n);
      expect(Object.keys(env).filter((k) => k !== 'NODE_ENV' && !CONFIG_VARIABLE_NAMES.has(k) && !k.startsWith('OTEL_'))).toEqual([]);
      expect(loadConfig(env)).toMatchObject({
        nodeId: n,
        advertiseHost: n,
        autoJoin: true,
        adminToken: USER_VARS.ADMIN_TOKEN,
        peerSecret: USER_VARS.PEER_SECRET,
      });
    }
  });

  it('refuses to start without the admin token and the peer secret (no default credentials)', () => {
    expect(() => nodeEnv('n1', { ...USER_VARS, ADMIN_TOKEN: undefined })).toThrow(/ADMIN_TOKEN/);
    expect(() => nodeEnv('n1', { ...USER_VARS, PEER_SECRET: '' })).toThrow(/PEER_SECRET/);
    expect(() => interpolateCompose(services.grafana.environment.GF_SECURITY_ADMIN_PASSWORD, {})).toThrow(/GRAFANA_ADMIN_PASSWORD/);
  });

  it('stores in a Redis with an append-only file synced on every write, which the nodes wait for', () => {
    const redis = services.redis;
    expect(redis.command.join(' ')).toContain('--appendonly yes --appendfsync always');
    expect(redis.healthcheck.test).toEqual(['CMD', 'redis-cli', 'ping']);
    expect(redis.volumes.some((v: string) => v.endsWith(':/data'))).toBe(true);
    for (const n of nodes) {
      expect(services[n].depends_on).toEqual({ redis: { condition: 'service_healthy' } });
      const url = new URL(loadConfig(nodeEnv(n)).redisUrl!);
      expect(url.hostname).toBe('redis');
    }
  });

  it("maps n1's HTTP and hub ports to the host and gives every node the grace of a drain (as Kubernetes does)", () => {
    const config = loadConfig(nodeEnv('n1'));
    const published = (services.n1.ports as string[]).map((p) => p.split(':').slice(-2).map(Number));
    expect(published).toEqual([
      [config.httpPort, config.httpPort],
      [config.grpcPort, config.grpcPort],
    ]);
    const statefulSet = parse(readDeployFile('k8s/statefulset.yaml'));
    for (const n of nodes)
      expect(seconds(services[n].stop_grace_period)).toBe(statefulSet.spec.template.spec.terminationGracePeriodSeconds);
  });

  it('mounts only files that exist', () => {
    for (const service of Object.keys(services)) {
      if (!services[service].volumes) continue;
      for (const { host } of bindMounts(service)) expect(existsSync(host), `${service}: ${host}`).toBe(true);
    }
  });

  it("scrapes every node's metrics port as job iot and loads the alert rules", () => {
    const prometheus = parse(readDeployFile('prometheus/prometheus.yml'));
    expect(mountedAt('prometheus', 'prometheus/prometheus.yml')).toBe('/etc/prometheus/prometheus.yml');
    expect(prometheus.rule_files).toEqual([mountedAt('prometheus', 'prometheus/alerts.yml')]);
    const [job] = prometheus.scrape_configs;
    expect(prometheus.scrape_configs).toHaveLength(1);
    expect(job.job_name).toBe('iot'); // the job the alert rules select
    const targets = job.static_configs.flatMap((c: any) => c.targets);
    expect(targets).toEqual(nodes.map((n) => `${n}:${loadConfig(nodeEnv(n)).metricsPort}`));
  });

  it('provisions Grafana with the Prometheus datasource and the dashboards directory', () => {
    const datasources = parse(readFileSync(join(DEPLOY_DIR, 'grafana/provisioning/datasources/prometheus.yml'), 'utf8'));
    expect(mountedAt('grafana', 'grafana/provisioning')).toBe('/etc/grafana/provisioning');
    const [ds] = datasources.datasources;
    expect(ds).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090', isDefault: true });
    expect(services.prometheus.ports).toContain('127.0.0.1:9090:9090');
    const providers = parse(readFileSync(join(DEPLOY_DIR, 'grafana/provisioning/dashboards/iot-runtime.yml'), 'utf8')).providers;
    expect(providers.map((p: any) => p.options.path)).toEqual([mountedAt('grafana', 'grafana/dashboards')]);
    expect(readdirSync(join(DEPLOY_DIR, 'grafana/dashboards'))).toContain('iot-runtime.json');
  });

  it("points every panel of the dashboard at the provisioned datasource or the dashboard's datasource variable", () => {
    const dashboard = JSON.parse(readFileSync(join(DEPLOY_DIR, 'grafana/dashboards/iot-runtime.json'), 'utf8'));
    const [ds] = parse(readFileSync(join(DEPLOY_DIR, 'grafana/provisioning/datasources/prometheus.yml'), 'utf8')).datasources;
    const variables = new Map<string, any>((dashboard.templating?.list ?? []).map((v: any) => [v.name, v]));
    const uids = new Set<string>();
    const collect = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(collect);
      else if (node && typeof node === 'object') {
        const { datasource } = node as { datasource?: { uid?: string } };
        if (datasource?.uid !== undefined) uids.add(datasource.uid);
        Object.values(node).forEach(collect);
      }
    };
    collect(dashboard.panels);
    expect(uids.size).toBeGreaterThan(0);
    for (const uid of uids) {
      const variable = /^\$\{(\w+)\}$|^\$(\w+)$/.exec(uid);
      if (variable) expect(variables.get(variable[1] ?? variable[2]!)).toMatchObject({ type: 'datasource', query: ds.type });
      else expect(uid).toBe(ds.uid);
    }
  });
});
