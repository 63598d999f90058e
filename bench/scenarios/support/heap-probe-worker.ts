/**
 * Reads a node's memory from outside through its inspector (the node runs with
 * `--inspect=127.0.0.1:0`): full GCs (`HeapProfiler.collectGarbage`) with pauses between them, then
 * `process.memoryUsage()` evaluated in the node. Needs a WebSocket client: Node 20 has it behind
 * `--experimental-websocket` (node-probe.ts passes it). Disconnects before it exits.
 */
import { runAsWorker, workerInput } from '../../harness/worker-process.ts';

export interface HeapProbeInput {
  /** The inspector's `ws://…` address, as the node printed it. */
  readonly url: string;
  readonly gcRounds: number;
}

export interface HeapProbeOutput {
  readonly heapUsed: number;
  readonly rss: number;
  readonly external: number;
  readonly arrayBuffers: number;
}

interface CdpReply {
  readonly id?: number;
  readonly result?: { readonly result?: { readonly value?: unknown } };
  readonly error?: { readonly message: string };
}

async function probe(input: HeapProbeInput): Promise<HeapProbeOutput> {
  const ws = new WebSocket(input.url);
  const pending = new Map<number, { resolve: (r: CdpReply) => void; reject: (e: Error) => void }>();
  let seq = 0;
  ws.addEventListener('message', (ev) => {
    const reply = JSON.parse(String(ev.data)) as CdpReply;
    const p = reply.id === undefined ? undefined : pending.get(reply.id);
    if (!p) return;
    pending.delete(reply.id!);
    if (reply.error) p.reject(new Error(reply.error.message));
    else p.resolve(reply);
  });
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('error', () => reject(new Error(`cannot reach the inspector at ${input.url}`)), { once: true });
  });
  const send = (method: string, params: Record<string, unknown> = {}): Promise<CdpReply> =>
    new Promise((resolve, reject) => {
      const id = ++seq;
      pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  try {
    for (let i = 0; i < input.gcRounds; i++) {
      await send('HeapProfiler.collectGarbage');
      // A pause between rounds lets finalisers and weak callbacks in the node run.
      await new Promise((r) => setTimeout(r, 50));
    }
    const reply = await send('Runtime.evaluate', { expression: 'process.memoryUsage()', returnByValue: true });
    const m = reply.result?.result?.value as HeapProbeOutput | undefined;
    if (!m || typeof m.heapUsed !== 'number') throw new Error(`no memory usage from the inspector: ${JSON.stringify(reply)}`);
    return { heapUsed: m.heapUsed, rss: m.rss, external: m.external, arrayBuffers: m.arrayBuffers };
  } finally {
    ws.close();
  }
}

runAsWorker(() => probe(workerInput<HeapProbeInput>()));
