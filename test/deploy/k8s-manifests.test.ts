/** deploy/k8s as `kubectl kustomize` renders it, held against the node's own configuration: env names, ports, probes, Services, PDB, Secret keys. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_VARIABLE_NAMES, CONFIG_VARIABLES } from '../../node/config-variables.ts';
import { ConfigError, loadConfig, type NodeConfig } from '../../node/config.ts';
import { SHUTDOWN_AFTER_DRAIN_MS } from '../../node/shutdown-budget.ts';
import { PACKAGE_ROOT } from '../../tools/process/script-entry.ts';
import { externalToolMissing, skipWithout } from '../support/external-tool.ts';
import {
  containerEnv,
  DEPLOY_DIR,
  parseEnvFile,
  quantityBytes,
  readDeployFile,
  renderKustomize,
  renderOverlay,
  type EnvVar,
  type K8sObject,
} from './deploy-files.ts';

/** Without kubectl (not an npm package) these tests skip on a developer machine and fail in CI. */
const NO_KUBECTL = skipWithout(
  externalToolMissing('kubectl', ['version', '--client'], 'these tests render deploy/k8s with `kubectl kustomize` (kubectl 1.27 or newer)'),
);
const POD = 'iot-0';
/** How the README's example overlay reaches deploy/k8s (from a directory beside a checkout). */
const README_K8S_PATH = '../iot-runtime/deploy/k8s';
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
  if (NO_KUBECTL) return;
  objects = await renderKustomize(`${DEPLOY_DIR}/k8s`);
  statefulSet = named('StatefulSet', 'iot');
  const containers = statefulSet.spec.template.spec.containers as any[];
  expect(containers).toHaveLength(1);
  container = containers[0];
  env = containerEnv(container.env as EnvVar[], { name: POD, secrets: { 'iot-secrets': SECRET_VALUES } });
  config = loadConfig(env);
}, 60_000);

describe.skipIf(NO_KUBECTL)('deploy/k8s rendered by kubectl kustomize', () => {
  it('is a StatefulSet, the three Services, a PodDisruptionBudget and a NetworkPolicy, and no Secret (the user creates iot-secrets)', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'NetworkPolicy/iot',
      'PodDisruptionBudget/iot',
      'Service/iot-http',
      'Service/iot-hub',
      'Service/iot-peers',
      'StatefulSet/iot',
    ]);
    expect(byKind('Secret')).toEqual([]);
  });

  it('sets only variables the node reads (or OTEL_* for the tracing SDK, NODE_OPTIONS for Node), and the node accepts them', () => {
    const names = (container.env as EnvVar[]).map((v) => v.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names.filter((n) => !CONFIG_VARIABLE_NAMES.has(n) && !n.startsWith('OTEL_') && n !== 'NODE_OPTIONS')).toEqual([]);
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

  it('gives SIGTERM the time of a drain, runs unprivileged and spreads pods over machines and zones', () => {
    const pod = statefulSet.spec.template.spec;
    // SIGTERM's shutdown: the drain (bounded by DRAIN_TIMEOUT_MS), the steps after it (at most
    // SHUTDOWN_AFTER_DRAIN_MS: the node's own deadline is the sum of the two), and a margin so that
    // deadline, with its fatal line, comes before the kubelet kills the pod.
    // The pod's own DRAIN_TIMEOUT_MS when the manifest sets one, else the default the README documents.
    const drainMs = loadConfig(env).drainTimeoutMs;
    if (env.DRAIN_TIMEOUT_MS === undefined)
      expect(drainMs).toBe(Number(CONFIG_VARIABLES.find((v) => (v.names as readonly string[]).includes('DRAIN_TIMEOUT_MS'))?.default));
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThanOrEqual(drainMs + SHUTDOWN_AFTER_DRAIN_MS + 5_000);
    // The image's USER is the name `node`: the kubelet can verify runAsNonRoot only against a numeric
    // uid, so the pod names node's uid and gid (1000 in the node images).
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000 });
    expect(container.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    const term = pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm;
    expect(term.topologyKey).toBe('kubernetes.io/hostname');
    expect(selects(term.labelSelector.matchLabels, statefulSet.spec.template.metadata.labels)).toBe(true);
    // Zones: a soft spread, so a cluster with one zone (or unlabelled nodes) still schedules.
    expect(pod.topologySpreadConstraints).toHaveLength(1);
    const [spread] = pod.topologySpreadConstraints;
    expect(spread).toMatchObject({ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway' });
    expect(selects(spread.labelSelector.matchLabels, statefulSet.spec.template.metadata.labels)).toBe(true);
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

  it('caps the V8 heap at about 75 % of the memory limit (NODE_OPTIONS), leaving the rest for off-heap memory', () => {
    const mib = quantityBytes(container.resources.limits.memory) / 2 ** 20;
    const options = env.NODE_OPTIONS ?? '';
    const caps = [...options.matchAll(/--max-old-space-size=(\d+)\b/g)].map((m) => Number(m[1]));
    expect(caps, `NODE_OPTIONS ${options}: one --max-old-space-size=<MiB>`).toHaveLength(1);
    const heap = caps[0]!;
    const hint = `--max-old-space-size=${heap} against a ${container.resources.limits.memory} limit: set it to about ${Math.round(mib * 0.75)}`;
    expect(heap, hint).toBeLessThanOrEqual(mib * 0.8);
    expect(heap, hint).toBeGreaterThanOrEqual(mib * 0.6);
  });

  it('admits the public edges from anywhere, peers only from its own pods and /metrics from them and the monitoring namespace', () => {
    const policy = named('NetworkPolicy', 'iot');
    const podLabels = statefulSet.spec.template.metadata.labels;
    expect(selects(policy.spec.podSelector.matchLabels, podLabels)).toBe(true);
    expect(policy.spec.policyTypes).toEqual(['Ingress']);
    // A rule's ports as numbers: a named port is the container port of that name.
    const containerPorts = new Map<string, number>((container.ports as any[]).map((p) => [p.name, p.containerPort]));
    const portsOf = (rule: any): number[] =>
      (rule.ports as any[]).map((p) => {
        expect(p.protocol ?? 'TCP').toBe('TCP');
        return typeof p.port === 'number' ? p.port : containerPorts.get(p.port)!;
      });
    /** Every port a peer described by `from` (a pod of the StatefulSet, or a namespace) may open. */
    const admitted = (peer: 'own pods' | 'monitoring' | 'anywhere'): number[] =>
      (policy.spec.ingress as any[])
        .filter((rule) => {
          if (rule.from === undefined) return true;
          return (rule.from as any[]).some((f) =>
            peer === 'own pods'
              ? f.podSelector && !f.namespaceSelector && selects(f.podSelector.matchLabels, podLabels)
              : peer === 'monitoring' && f.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'monitoring',
          );
        })
        .flatMap(portsOf)
        .sort((a, b) => a - b);
    const sorted = (...ports: (number | undefined)[]): number[] => (ports as number[]).sort((a, b) => a - b);
    expect(admitted('anywhere')).toEqual(sorted(config.httpPort, config.grpcPort));
    expect(admitted('own pods')).toEqual(sorted(config.httpPort, config.grpcPort, config.peerPort, config.metricsPort));
    expect(admitted('monitoring')).toEqual(sorted(config.httpPort, config.grpcPort, config.metricsPort));
  });

  it('lets one pod go at a time', () => {
    const pdb = named('PodDisruptionBudget', 'iot');
    expect(pdb.spec.maxUnavailable).toBe(1);
    expect(selects(pdb.spec.selector.matchLabels, statefulSet.spec.template.metadata.labels)).toBe(true);
  });
});

describe.skipIf(NO_KUBECTL)('deploy/k8s/monitoring (Prometheus Operator) rendered by kubectl kustomize', () => {
  let monitoring: K8sObject[];
  beforeAll(async () => {
    monitoring = await renderKustomize(`${DEPLOY_DIR}/k8s/monitoring`);
  }, 60_000);
  const find = (kind: string): K8sObject => {
    const found = monitoring.find((o) => o.kind === kind && o.metadata.name === 'iot');
    if (!found) throw new Error(`deploy/k8s/monitoring rendered no ${kind} iot`);
    return found;
  };

  it('is a PodMonitor and a PrometheusRule', () => {
    expect(monitoring.map((o) => `${o.apiVersion} ${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'monitoring.coreos.com/v1 PodMonitor/iot',
      'monitoring.coreos.com/v1 PrometheusRule/iot',
    ]);
  });

  it("scrapes the StatefulSet's metrics port as job iot (the job the alert rules select), one instance per pod name", () => {
    const podMonitor = find('PodMonitor');
    expect(selects(podMonitor.spec.selector.matchLabels, statefulSet.spec.template.metadata.labels)).toBe(true);
    const endpoints = podMonitor.spec.podMetricsEndpoints as any[];
    expect(endpoints).toHaveLength(1);
    const [endpoint] = endpoints;
    expect(endpoint).toMatchObject({ port: 'metrics', path: '/metrics' });
    expect((container.ports as any[]).find((p) => p.name === endpoint.port)?.containerPort).toBe(config.metricsPort);
    const relabelled = (target: string): any[] => (endpoint.relabelings as any[]).filter((r) => r.targetLabel === target);
    expect(relabelled('job')).toEqual([{ action: 'replace', targetLabel: 'job', replacement: 'iot' }]);
    expect(relabelled('instance')).toEqual([{ action: 'replace', sourceLabels: ['__meta_kubernetes_pod_name'], targetLabel: 'instance' }]);
    // The job every rule selects is the one this PodMonitor (and the compose Prometheus) produces.
    const alerts = readDeployFile('prometheus/alerts.yml');
    const jobs = new Set([...alerts.matchAll(/\bjob\s*=~?\s*"([^"]*)"/g)].map((m) => m[1]));
    expect([...jobs]).toEqual(['iot']);
    expect(parse(readDeployFile('prometheus/prometheus.yml')).scrape_configs[0].job_name).toBe('iot');
  });

  it('carries the alert rules of deploy/prometheus/alerts.yml (regenerate: npx tsx tools/prometheus-rule.ts --write)', () => {
    // Whitespace runs compared as one space: kubectl's Go YAML reads a `>-` scalar's more-indented
    // line with an extra line break that the YAML library here does not (test/tools/prometheus-rule.test.ts
    // compares the committed file exactly, with one parser).
    const squeeze = (value: unknown): unknown =>
      typeof value === 'string'
        ? value.replace(/\s+/g, ' ')
        : Array.isArray(value)
          ? value.map(squeeze)
          : value && typeof value === 'object'
            ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, squeeze(v)]))
            : value;
    expect(squeeze(find('PrometheusRule').spec.groups)).toEqual(squeeze(parse(readDeployFile('prometheus/alerts.yml')).groups));
  });
});

describe.skipIf(NO_KUBECTL)('overlays over deploy/k8s', () => {
  /** The README's example overlay ("Overlays"), with its path to deploy/k8s made to point at this checkout. */
  const readmeOverlay = (): string => {
    const readme = readFileSync(join(PACKAGE_ROOT, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((b) => b.includes('kind: Kustomization'));
    expect(blocks, 'README.md: one ```yaml block holding the example overlay').toHaveLength(1);
    expect(blocks[0]).toContain(README_K8S_PATH);
    return blocks[0]!.replaceAll(README_K8S_PATH, '@k8s');
  };

  it("keeps ADVERTISE_HOST on the unprefixed Service under namePrefix unless the overlay has the README's replacement (kustomize runs a base's replacements before the overlay renames)", async () => {
    const rendered = await renderOverlay('resources: [@k8s]\nnamePrefix: blue-\n');
    const sts = rendered.find((o) => o.kind === 'StatefulSet')!;
    expect(sts.spec.serviceName).toBe('blue-iot-peers');
    const advertise = (sts.spec.template.spec.containers[0].env as EnvVar[]).find((v) => v.name === 'ADVERTISE_HOST');
    expect(advertise?.value).toBe('$(NODE_ID).iot-peers');
  });

  it("renders the README's example overlay: ADVERTISE_HOST names the prefixed peers Service, KubeSphere's Prometheus may scrape, the PodMonitor comes along", async () => {
    const rendered = await renderOverlay(readmeOverlay());
    const find = (kind: string): K8sObject => rendered.find((o) => o.kind === kind)!;
    const sts = find('StatefulSet');
    const prefix = sts.metadata.name.slice(0, -'iot'.length);
    expect(prefix).not.toBe('');
    const peers = rendered.find((o) => o.kind === 'Service' && o.spec.clusterIP === 'None')!;
    expect(peers.metadata.name).toBe(`${prefix}iot-peers`);
    expect(sts.spec.serviceName).toBe(peers.metadata.name);
    const pod = `${sts.metadata.name}-0`;
    const podEnv = containerEnv(sts.spec.template.spec.containers[0].env as EnvVar[], {
      name: pod,
      secrets: { 'iot-secrets': SECRET_VALUES },
    });
    expect(loadConfig(podEnv).advertiseHost).toBe(`${pod}.${peers.metadata.name}`);
    const metricsFrom = (find('NetworkPolicy').spec.ingress as any[]).filter((rule) => rule.from?.some((f: any) => f.namespaceSelector));
    expect(metricsFrom.map((rule) => rule.from[0].namespaceSelector.matchLabels['kubernetes.io/metadata.name'])).toEqual([
      'kubesphere-monitoring-system',
    ]);
    expect(rendered.map((o) => o.kind)).toEqual(expect.arrayContaining(['PodMonitor', 'PrometheusRule']));
  });

  it('speaks HTTPS in every probe with the https-probes component (for HTTP_TLS_*), and changes nothing else', async () => {
    const rendered = await renderOverlay('resources: [@k8s]\ncomponents: [@k8s/https-probes]\n');
    const sts = rendered.find((o) => o.kind === 'StatefulSet')!;
    const [node] = sts.spec.template.spec.containers;
    const probes = ['startupProbe', 'readinessProbe', 'livenessProbe'];
    for (const probe of probes) {
      expect(node[probe].httpGet, probe).toEqual({ ...container[probe].httpGet, scheme: 'HTTPS' });
      delete node[probe].httpGet.scheme;
    }
    expect(sts).toEqual(statefulSet);
    expect(rendered.length).toBe(objects.length);
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
