/**
 * Reading deploy/ the way its consumers do, for the tests that hold it against the node's
 * configuration: `kubectl kustomize`, Kubernetes' environment expansion, Compose's variable
 * interpolation, env files and the Dockerfile's instructions.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { PACKAGE_ROOT } from '../../tools/process/script-entry.ts';

export const DEPLOY_DIR = join(PACKAGE_ROOT, 'deploy');

export const readDeployFile = (relative: string): string => readFileSync(join(DEPLOY_DIR, relative), 'utf8');

/** One rendered Kubernetes object (only the fields the tests read are typed loosely). */
export interface K8sObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly labels?: Record<string, string>; readonly annotations?: Record<string, string> };
  readonly spec: any;
}

/** `kubectl kustomize <dir>` parsed into objects; fails with a clear message when kubectl is missing. */
export function renderKustomize(dir: string): Promise<K8sObject[]> {
  return new Promise((resolve, reject) => {
    execFile('kubectl', ['kustomize', dir], { maxBuffer: 16 << 20, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new Error('kubectl is not installed: this test renders deploy/k8s with `kubectl kustomize` (kubectl 1.27 or newer)'));
        return;
      }
      if (err) {
        reject(new Error(`kubectl kustomize ${dir} failed: ${err.message}\n${stderr}`));
        return;
      }
      const docs = parseAllDocuments(stdout);
      const broken = docs.find((d) => d.errors.length > 0);
      if (broken) reject(new Error(`kubectl kustomize printed invalid YAML: ${broken.errors[0]!.message}`));
      else resolve(docs.map((d) => d.toJS() as K8sObject).filter((o) => o !== null));
    });
  });
}

/**
 * Renders a throwaway overlay: `kustomization` (YAML text) is written to a temporary directory,
 * with every `@k8s` in it replaced by the relative path from there to deploy/k8s (kustomize
 * refuses absolute paths), and removed again after rendering.
 */
export async function renderOverlay(kustomization: string): Promise<K8sObject[]> {
  const dir = mkdtempSync(join(tmpdir(), 'iot-overlay-'));
  try {
    writeFileSync(join(dir, 'kustomization.yaml'), kustomization.replaceAll('@k8s', relative(dir, join(DEPLOY_DIR, 'k8s'))));
    return await renderKustomize(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const QUANTITY_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

/** A Kubernetes memory quantity (`512Mi`, `1Gi`, `1500M`, `1073741824`) in bytes. */
export function quantityBytes(quantity: string | number): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(quantity));
  const unit = QUANTITY_UNITS[m?.[2] ?? ''];
  if (!m || unit === undefined) throw new Error(`not a memory quantity this test reads: ${quantity}`);
  return Number(m[1]) * unit;
}

/**
 * Docker's reading of a `.dockerignore` (moby/patternmatcher): `#` comment lines, trimmed
 * patterns, `!` exceptions, paths cleaned and relative to the context; `*` and `?` stay within a
 * path segment, `**` spans any number of them. Returns whether a context-relative path is left
 * out: the last pattern that matches it or one of its parent directories decides.
 */
export function dockerignoreExcludes(text: string): (path: string) => boolean {
  const patterns = text
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => {
      const exception = line.startsWith('!');
      const cleaned = posix.normalize(exception ? line.slice(1).trim() : line).replace(/^\/+|\/+$/g, '');
      return { exception, regex: dockerPatternRegex(cleaned) };
    });
  return (path) => {
    const segments = posix.normalize(path).split('/');
    const candidates = segments.map((_, i) => segments.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const { exception, regex } of patterns) if (candidates.some((c) => regex.test(c))) excluded = !exception;
    return excluded;
  };
}

function dockerPatternRegex(pattern: string): RegExp {
  let out = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*' && pattern[i + 1] === '*') {
      i++;
      if (pattern[i + 1] === '/') i++;
      out += i + 1 >= pattern.length ? '.*' : '(.*/)?';
    } else if (ch === '*') out += '[^/]*';
    else if (ch === '?') out += '[^/]';
    else if (ch === '\\' && i + 1 < pattern.length) out += `\\${pattern[++i]}`;
    else if (ch === '[' && pattern.includes(']', i + 1)) {
      // A character class, as filepath.Match reads it (`[!…]` negates).
      const end = pattern.indexOf(']', i + 1);
      out += `[${pattern.slice(i + 1, end).replace(/^!/, '^')}]`;
      i = end;
    } else out += ch.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
  }
  return new RegExp(`${out}$`);
}

/** `KEY=VALUE` lines as `kubectl create secret --from-env-file` and Compose read them (`#` comments, blank lines). */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const eq = trimmed.indexOf('=');
    if (eq <= 0) throw new Error(`not a KEY=VALUE line: ${line}`);
    out[trimmed.slice(0, eq)] = trimmed.slice(eq + 1);
  }
  return out;
}

/** A container's `env` entry. */
export interface EnvVar {
  readonly name: string;
  readonly value?: string;
  readonly valueFrom?: {
    readonly fieldRef?: { readonly fieldPath: string };
    readonly secretKeyRef?: { readonly name: string; readonly key: string };
  };
}

/**
 * The environment a container sees, as the kubelet builds it: `fieldRef metadata.name` is the pod
 * name, `secretKeyRef` reads `secrets[name][key]`, and `$(VAR)` in a value expands a variable
 * defined earlier in the list (`$$` is a literal `$`; an unknown reference stays as written).
 */
export function containerEnv(
  env: readonly EnvVar[],
  pod: { readonly name: string; readonly secrets: Readonly<Record<string, Readonly<Record<string, string>>>> },
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of env) {
    if (v.value !== undefined) {
      out[v.name] = v.value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, ref: string | undefined) =>
        ref === undefined ? '$' : (out[ref] ?? whole),
      );
    } else if (v.valueFrom?.fieldRef) {
      if (v.valueFrom.fieldRef.fieldPath !== 'metadata.name')
        throw new Error(`${v.name}: unexpected fieldRef ${v.valueFrom.fieldRef.fieldPath}`);
      out[v.name] = pod.name;
    } else if (v.valueFrom?.secretKeyRef) {
      const { name, key } = v.valueFrom.secretKeyRef;
      const value = pod.secrets[name]?.[key];
      if (value === undefined) throw new Error(`${v.name}: secret ${name} has no key ${key}`);
      out[v.name] = value;
    } else {
      throw new Error(`${v.name}: neither value nor a supported valueFrom`);
    }
  }
  return out;
}

/**
 * Compose's interpolation of `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`,
 * `${VAR?message}` and `$$`; a required variable that is missing throws with its message, as
 * `docker compose` refuses to start.
 */
export function interpolateCompose(value: string, vars: Readonly<Record<string, string | undefined>>): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g,
    (_whole, name: string | undefined, op?: string, arg?: string) => {
      if (name === undefined) return '$';
      const v = vars[name];
      const unset = op?.startsWith(':') ? v === undefined || v === '' : v === undefined;
      if (op === undefined) return v ?? '';
      if (op.endsWith('-')) return unset ? (arg ?? '') : v!;
      if (unset) throw new Error(`required variable ${name} is missing: ${arg ?? ''}`);
      return v!;
    },
  );
}

/** One Dockerfile instruction: keyword upper-cased, arguments with line continuations joined. */
export interface DockerInstruction {
  readonly keyword: string;
  readonly args: string;
}

/** A build stage: from `FROM` up to the next `FROM`. */
export interface DockerStage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: readonly DockerInstruction[];
}

export function parseDockerfile(text: string): DockerStage[] {
  const logical = text
    .replace(/\\\r?\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const stages: { from: string; name: string | undefined; instructions: DockerInstruction[] }[] = [];
  for (const line of logical) {
    const m = /^(\S+)\s*(.*)$/.exec(line)!;
    const keyword = m[1]!.toUpperCase();
    const args = m[2]!;
    if (keyword === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!from) throw new Error(`unreadable FROM: ${args}`);
      stages.push({ from: from[1]!, name: from[2], instructions: [] });
    } else if (stages.length > 0) {
      stages.at(-1)!.instructions.push({ keyword, args });
    } else if (keyword !== 'ARG') {
      throw new Error(`${keyword} before the first FROM`);
    }
  }
  return stages;
}

/** `ENV A=1 B=2` (the `KEY=VALUE` form; quotes are not supported) of a stage, in order. */
export function stageEnv(stage: DockerStage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { keyword, args } of stage.instructions) {
    if (keyword !== 'ENV') continue;
    for (const pair of args.split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new Error(`ENV ${args}: use the KEY=VALUE form`);
      out[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return out;
}
