/** deploy/k8s as `kubectl kustomize` renders it, held against the node's own configuration: env names, ports, probes, Services, PDB, Secret keys. */
import { beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_VARIABLE_NAMES } from '../../node/config-variables.ts';
import { ConfigError, loadConfig, type NodeConfig } from '../../node/config.ts';
import { containerEnv, DEPLOY_DIR, parseEnvFile, readDeployFile, renderKustomize, type EnvVar, type K8sObject } from './deploy-files.ts';

const POD = 'iot-0';
/** Values a user would put into the Secret: what the manifests are checked with. */
const SECRET_VALUES = {
  REDIS_URL: 'redis-sentinel://sentinel-0.redis:26379,sentinel-1.redis:26379/mymaster',
  ADMIN_TOKEN: 'admin-token-of-the-k8s-test',
  PEER_SECRET: 'peer-secret-of-the-k8s-test-0123456789',
};

let objects: K8sObject[];
let statefulSet: K8sObject;
let container: any;
let env: Record<string, string>;
let config: NodeConfig;

const byKind = (kind: string): K8sObject[] => objects.filter((o) => o.kind === kind);
const named = (kind: string, name: string): K8sObject => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`kubectl kustomize rendered no ${kind} ${name}`);
  return found;
};
/** Whether `selector` (matchLabels or a Service's selector map) selects pods labelled `labels`. */
const selects = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

beforeAll(async () => {
  objects = await renderKustomize(`${DEPLOY_DIR}/k8s`);
  statefulSet = named('StatefulSet', 'iot');
  const containers = statefulSet.spec.template.spec.containers as any[];
  expect(containers).toHaveLength(1);
  container = containers[0];
  env = containerEnv(container.env as EnvVar[], { name: POD, secrets: { 'iot-secrets': SECRET_VALUES } });
  config = loadConfig(env);
}, 60_000);

describe('deploy/k8s rendered by kubectl kustomize', () => {
  it('is a StatefulSet, the three Services and a PodDisruptionBudget, and no Secret (the user creates iot-secrets)', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'PodDisruptionBudget/iot',
      'Service/iot-http',
      'Service/iot-hub',
      'Service/iot-peers',
      'StatefulSet/iot',
    ]);
    expect(byKind('Secret')).toEqual([]);
  });

  it('sets only variables the node reads (or OTEL_* for the tracing SDK), and the node accepts them', () => {
    const names = (container.env as EnvVar[]).map((v) => v.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names.filter((n) => !CONFIG_VARIABLE_NAMES.has(n) && !n.startsWith('OTEL_'))).toEqual([]);
    expect(container.envFrom).toBeUndefined(); // every variable is named here, where this test sees it
    expect(config).toMatchObject({ nodeId: POD, autoJoin: true, host: '0.0.0.0', peerHost: '0.0.0.0', metricsHost: '0.0.0.0' });
    expect(config.redisUrl).toBe(SECRET_VALUES.REDIS_URL);
    expect(config.metricsPort).toBeDefined();
  });

  it('names each node after its pod and advertises it under the headless Service that resolves it', () => {
    expect(statefulSet.spec.serviceName).toBe('iot-peers');
    expect(config.advertiseHost).toBe(`${POD}.${statefulSet.spec.serviceName}`);
  });

  it("declares the node's ports by name, as its configuration opens them", () => {
    const ports = Object.fromEntries((container.ports as any[]).map((p) => [p.name, p.containerPort]));
    expect(ports).toEqual({ http: config.httpPort, grpc: config.grpcPort, peer: config.peerPort, metrics: config.metricsPort });
    const annotations = statefulSet.spec.template.metadata.annotations;
    expect(annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/path': '/metrics' });
    expect(Number(annotations['prometheus.io/port'])).toBe(config.metricsPort);
  });

  it('probes readiness on /readyz and liveness on /healthz over the HTTP port', () => {
    expect(container.readinessProbe.httpGet).toMatchObject({ path: '/readyz', port: 'http' });
    expect(container.livenessProbe.httpGet).toMatchObject({ path: '/healthz', port: 'http' });
    expect(container.startupProbe.httpGet).toMatchObject({ path: '/healthz', port: 'http' });
    // Liveness must not kill a node that is still starting: the startup probe allows at least 30 s.
    expect(container.startupProbe.periodSeconds * container.startupProbe.failureThreshold).toBeGreaterThanOrEqual(30);
  });

  it('gives SIGTERM the time of a drain, runs unprivileged and spreads pods over machines', () => {
    const pod = statefulSet.spec.template.spec;
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(30);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true });
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(container.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    const term = pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm;
    expect(term.topologyKey).toBe('kubernetes.io/hostname');
    expect(selects(term.labelSelector.matchLabels, statefulSet.spec.template.metadata.labels)).toBe(true);
    expect(container.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(container.resources.limits.memory).toEqual(expect.any(String));
  });

  it('selects its own pods, and every Service targets a named port of the container', () => {
    const podLabels = statefulSet.spec.template.metadata.labels;
    expect(selects(statefulSet.spec.selector.matchLabels, podLabels)).toBe(true);
    const containerPorts = new Set((container.ports as any[]).map((p) => p.name));
    const targets: Record<string, string[]> = {};
    for (const svc of byKind('Service')) {
      expect(selects(svc.spec.selector, podLabels), svc.metadata.name).toBe(true);
      targets[svc.metadata.name] = (svc.spec.ports as any[]).map((p) => p.targetPort);
      for (const t of targets[svc.metadata.name]!) expect(containerPorts.has(t), `${svc.metadata.name} → ${t}`).toBe(true);
    }
    expect(targets).toEqual({ 'iot-peers': ['peer'], 'iot-hub': ['grpc'], 'iot-http': ['http'] });
  });

  it('resolves every pod by name through a headless Service, Ready or not (joining and draining nodes are peers too)', () => {
    const peers = named('Service', statefulSet.spec.serviceName);
    expect(peers.spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true });
  });

  it('lets one pod go at a time', () => {
    const pdb = named('PodDisruptionBudget', 'iot');
    expect(pdb.spec.maxUnavailable).toBe(1);
    expect(selects(pdb.spec.selector.matchLabels, statefulSet.spec.template.metadata.labels)).toBe(true);
  });
});

describe('deploy/k8s/secret.example.env', () => {
  const example = parseEnvFile(readDeployFile('k8s/secret.example.env'));

  it('has exactly the keys the StatefulSet reads from iot-secrets', () => {
    const referenced = (container.env as EnvVar[])
      .filter((v) => v.valueFrom?.secretKeyRef)
      .map((v) => {
        expect(v.valueFrom!.secretKeyRef!.name).toBe('iot-secrets');
        return v.valueFrom!.secretKeyRef!.key;
      });
    expect(Object.keys(example).sort()).toEqual(referenced.sort());
  });

  it('holds placeholders the node refuses, so a copy left unchanged starts no pod', () => {
    const run = (values: Record<string, string>) => () =>
      loadConfig(containerEnv(container.env as EnvVar[], { name: POD, secrets: { 'iot-secrets': { ...SECRET_VALUES, ...values } } }));
    expect(run({ ADMIN_TOKEN: example.ADMIN_TOKEN! })).toThrow(ConfigError);
    expect(run({ ADMIN_TOKEN: example.ADMIN_TOKEN! })).toThrow(/ADMIN_TOKEN/);
    expect(run({ PEER_SECRET: example.PEER_SECRET! })).toThrow(/PEER_SECRET/);
    // The example's REDIS_URL shows a form the node accepts (Sentinel).
    expect(run({ REDIS_URL: example.REDIS_URL! })()).toMatchObject({ redisUrl: example.REDIS_URL });
  });
});
