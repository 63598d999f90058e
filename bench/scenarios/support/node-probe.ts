/** What the timers scenario reads from a running node: its Prometheus metrics, and its heap after forced GCs (through its inspector). */
import type { NodeProcess } from '../../../tools/process/node-process.ts';
import { ADMIN_TOKEN, httpBase } from '../../harness/node-api.ts';
import { runWorker } from '../../harness/worker-process.ts';
import type { HeapProbeInput, HeapProbeOutput } from './heap-probe-worker.ts';

/** Node flags that let the heap probe reach a node: its inspector on a free loopback port. */
export const INSPECTABLE_NODE_ARGS: readonly string[] = ['--inspect=127.0.0.1:0'];

/** The `Debugger listening on ws://…` address a node started with `--inspect` printed, if any. */
export const inspectorUrl = (output: string): string | undefined => /Debugger listening on (ws:\/\/\S+)/.exec(output)?.[1];

/** The node's metrics in the Prometheus text format. */
export async function scrapeMetrics(node: NodeProcess): Promise<string> {
  const res = await fetch(`${httpBase(node)}/metrics`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET /metrics: ${res.status} ${text.slice(0, 300)}`);
  return text;
}

/** The sum of every sample of metric `name` (all label sets); 0 when it has none. */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const value = Number(rest.slice(rest.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum += value;
  }
  return sum;
}

/** Polls the node's metrics every `everyMs` until `done(text)`; resolves the last text, or throws after `timeoutMs`. */
export async function waitForMetrics(
  node: NodeProcess,
  done: (text: string) => boolean,
  what: string,
  timeoutMs: number,
  everyMs = 100,
): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const text = await scrapeMetrics(node);
    if (done(text)) return text;
    if (performance.now() > deadline) throw new Error(`node ${node.nodeId}: ${what} not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The node's memory after `gcRounds` full GCs, read through its inspector (the node must run with `INSPECTABLE_NODE_ARGS`). */
export async function sampleNodeHeap(node: NodeProcess, gcRounds = 4): Promise<HeapProbeOutput> {
  const url = inspectorUrl(node.output());
  if (!url) throw new Error(`node ${node.nodeId} printed no inspector address: start it with ${INSPECTABLE_NODE_ARGS.join(' ')}`);
  const input: HeapProbeInput = { url, gcRounds };
  // Node 20 has a WebSocket client only behind a flag.
  const nodeArgs = typeof (globalThis as { WebSocket?: unknown }).WebSocket === 'function' ? [] : ['--experimental-websocket'];
  return runWorker<HeapProbeOutput>('bench/scenarios/support/heap-probe-worker.ts', input, { timeoutMs: 120_000, nodeArgs });
}
