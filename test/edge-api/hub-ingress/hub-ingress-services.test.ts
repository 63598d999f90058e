import { credentials, loadPackageDefinition, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HUB_SERVICE } from '../../../edge-api/hub-ingress/hub-ingress.ts';
import { PROTO_LOADER_OPTIONS } from '../../../protos/load-proto.ts';
import { startHubFixture, type HubFixture } from '../../support/hub-fixture.ts';

type Walk = Record<string, unknown>;
const at = (root: unknown, path: string): ServiceClientConstructor =>
  path.split('.').reduce((o, k) => (o as Walk)[k], root) as ServiceClientConstructor;

const Health = at(loadPackageDefinition(loadSync(healthProtoPath, PROTO_LOADER_OPTIONS)), 'grpc.health.v1.Health');
// The reflection proto ships with @grpc/reflection (build/src/index.js → build/proto/...).
const reflectionProto = join(
  dirname(createRequire(import.meta.url).resolve('@grpc/reflection')),
  '../proto/grpc/reflection/v1/reflection.proto',
);
const Reflection = at(loadPackageDefinition(loadSync(reflectionProto, PROTO_LOADER_OPTIONS)), 'grpc.reflection.v1.ServerReflection');

let fx: HubFixture;

afterEach(async () => {
  await fx?.close();
});

function check(address: string, service: string): Promise<string> {
  const client = new Health(address, credentials.createInsecure()) as unknown as {
    Check(req: { service: string }, cb: (err: ServiceError | null, res?: { status: string }) => void): void;
    close(): void;
  };
  return new Promise((resolve, reject) =>
    client.Check({ service }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res!.status);
    }),
  );
}

interface ReflectionReply {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
}

function reflect(address: string, request: Record<string, string>): Promise<ReflectionReply> {
  const client = new Reflection(address, credentials.createInsecure()) as unknown as {
    ServerReflectionInfo(): NodeJS.ReadWriteStream & { write(m: unknown): boolean; end(): void };
    close(): void;
  };
  const call = client.ServerReflectionInfo();
  return new Promise((resolve, reject) => {
    call.on('data', (reply: ReflectionReply) => {
      resolve(reply);
      call.end();
      client.close();
    });
    call.on('error', reject);
    call.write({ host: '', ...request });
  });
}

describe('HubIngress server services', () => {
  it('answers the standard health check with SERVING, and NOT_SERVING once told', async () => {
    fx = await startHubFixture();
    expect(await check(fx.address, '')).toBe('SERVING');
    expect(await check(fx.address, HUB_SERVICE)).toBe('SERVING');
    fx.ingress.setServing(false);
    expect(await check(fx.address, '')).toBe('NOT_SERVING');
    expect(await check(fx.address, HUB_SERVICE)).toBe('NOT_SERVING');
  });

  it('lists iot.hub.v1.HubIngress and describes hub.proto through server reflection', async () => {
    fx = await startHubFixture();
    const listed = await reflect(fx.address, { list_services: '' });
    const names = listed.list_services_response!.service.map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining([HUB_SERVICE, 'grpc.health.v1.Health']));
    const described = await reflect(fx.address, { file_containing_symbol: HUB_SERVICE });
    const file = described.file_descriptor_response!.file_descriptor_proto[0]!;
    expect(file.toString('latin1')).toContain('HubIngress');
    expect(file.toString('latin1')).toContain('iot.hub.v1');
  });
});
