/** Provisions simulated homes through the HTTP edge, as an app backend would: home, hub secret, rule. */
import { simRule } from './sim-home.ts';

export interface ProvisionedHub {
  readonly homeId: string;
  readonly hubId: string;
  readonly secret: string;
}

async function call(base: string, adminToken: string, method: string, path: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/** Creates `homes` homes named `<prefix>-<i>`, each with one hub and the simulator's rule. */
export async function provisionHomes(base: string, adminToken: string, prefix: string, homes: number): Promise<ProvisionedHub[]> {
  const out: ProvisionedHub[] = [];
  for (let i = 0; i < homes; i++) {
    const homeId = `${prefix}-${i}`;
    await call(base, adminToken, 'PUT', `/v1/homes/${homeId}`, { name: `Simulated home ${i}`, timezone: 'Europe/Berlin' });
    const hub = (await call(base, adminToken, 'POST', `/v1/homes/${homeId}/hubs`, { hubId: 'hub1' })) as { secret: string };
    await call(base, adminToken, 'PUT', `/v1/homes/${homeId}/rules/${simRule.id}`, simRule);
    out.push({ homeId, hubId: 'hub1', secret: hub.secret });
  }
  return out;
}
