/** The hub ingress over TLS (certificates made with openssl): a TLS hub is served, a plaintext one is not; with a CA, client certificates are required. */
import { credentials, status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readTlsMaterial } from '../../../node/tls-material.ts';
import { HubClient } from '../../../tools/hub-client/hub-client.ts';
import { ResilientHub } from '../../../tools/hub-client/resilient-hub.ts';
import { HUB1, startHubFixture, type HubFixture } from '../../support/hub-fixture.ts';
import { makeTestPki, type TestPki } from '../../support/test-certificates.ts';

let pki: TestPki;
let ca: Buffer;
let fx: HubFixture | undefined;
const clients: HubClient[] = [];

beforeAll(() => {
  pki = makeTestPki();
  ca = pki.read(pki.ca);
});
afterAll(() => pki?.remove());
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await fx?.close();
  fx = undefined;
});

function client(address: string, creds: ReturnType<typeof credentials.createSsl> | undefined): HubClient {
  const c = new HubClient(address, HUB1.secret, creds ? { credentials: creds } : {});
  clients.push(c);
  c.hello(HUB1.hubId, 'h1', HUB1.devices);
  return c;
}

describe('hub ingress over TLS', () => {
  it('serves a TLS hub (welcome, acks) and refuses a plaintext one', async () => {
    const tls = readTlsMaterial({ ...pki.server, ca: undefined }, 'HUB_TLS')!;
    // A first-call deadline the test outlives: a TLS connection that opened its stream must be
    // recognised as speaking gRPC. (It also bounds the handshake and the hello: not too short for a loaded machine.)
    fx = await startHubFixture({ tls, helloTimeoutMs: 2_000 });
    const hub = client(fx.address, credentials.createSsl(ca));
    await hub.welcome();
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    hub.reports([{ seq: 1, device: 'light1', attributes: { on: true } }]);
    expect(await hub.ackAtLeast(1)).toBe(1);

    const plain = client(fx.address, undefined);
    expect(await plain.ended()).toMatchObject({ code: status.UNAVAILABLE });
    expect(plain.messages).toEqual([]);
  });

  it('with a CA, requires a client certificate that chains to it', async () => {
    const tls = readTlsMaterial({ ...pki.server, ca: pki.ca }, 'HUB_TLS')!;
    fx = await startHubFixture({ tls });
    for (const [what, creds] of [
      ['no client certificate', credentials.createSsl(ca)],
      ['a certificate of another CA', credentials.createSsl(ca, pki.read(pki.strangerClient.key), pki.read(pki.strangerClient.cert))],
    ] as const) {
      const refused = client(fx.address, creds);
      expect(await refused.ended(), what).toMatchObject({ code: status.UNAVAILABLE });
      expect(refused.messages, what).toEqual([]);
    }
    const hub = client(fx.address, credentials.createSsl(ca, pki.read(pki.client.key), pki.read(pki.client.cert)));
    await hub.welcome();
  });

  it('streams a resilient hub over TLS when given credentials', async () => {
    const tls = readTlsMaterial({ ...pki.server, ca: undefined }, 'HUB_TLS')!;
    const f = await startHubFixture({ tls });
    fx = f;
    const hub = new ResilientHub({
      address: () => f.address,
      secret: HUB1.secret,
      hubId: HUB1.hubId,
      homeId: 'h1',
      devices: HUB1.devices,
      report: (seq) => ({ seq, device: 'light1', attributes: { on: seq % 2 === 0 } }),
      total: 50,
      credentials: credentials.createSsl(ca),
    });
    try {
      await hub.run(15_000);
    } finally {
      hub.stop();
    }
    expect(hub.done).toBe(true);
  });
});
