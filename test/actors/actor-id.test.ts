/** Unit tests of actor ids: build/parse round trips, odd characters, and agreement with the cluster's shard key. */
import { describe, expect, it } from 'vitest';
import { deviceActorId, HOME_ID, homeActorId, hubActorId, parseActorId } from '../../actors/actor-id.ts';
import { homeOfActor } from '../../cluster/shard-of.ts';
import { mulberry32, pick, randomInt } from '../support/prng.ts';

const HOME_CHARS = 'ABCXYZabcxyz0189_.-';
/** Characters a device or hub id may hold: separators, URL and key specials, non-ASCII. */
const LOCAL_CHARS = 'ab09:~/%?#{}[] \t\\"\'é漢😀-_.';

const randomHome = (rand: () => number): string =>
  Array.from({ length: 1 + randomInt(rand, 64) }, () => pick(rand, [...HOME_CHARS])).join('');
const randomLocal = (rand: () => number): string =>
  Array.from({ length: 1 + randomInt(rand, 40) }, () => pick(rand, [...LOCAL_CHARS])).join('');

describe('actor ids', () => {
  it('parse what they build, odd characters included', () => {
    expect(parseActorId(homeActorId('h1'))).toEqual({ kind: 'home', homeId: 'h1' });
    expect(parseActorId(deviceActorId('h1', 'lamp'))).toEqual({ kind: 'device', homeId: 'h1', deviceId: 'lamp' });
    expect(parseActorId(hubActorId('h1', 'hub-1'))).toEqual({ kind: 'hub', homeId: 'h1', hubId: 'hub-1' });
    expect(parseActorId(deviceActorId('h.2', 'a:b:c'))).toEqual({ kind: 'device', homeId: 'h.2', deviceId: 'a:b:c' });
    expect(parseActorId(deviceActorId('h_3', 'motion{1} ~x/é'))).toEqual({ kind: 'device', homeId: 'h_3', deviceId: 'motion{1} ~x/é' });
    expect(parseActorId(hubActorId('H-9', ':'))).toEqual({ kind: 'hub', homeId: 'H-9', hubId: ':' });
  });

  it('round-trip for random home ids and device or hub ids (seeded)', () => {
    const rand = mulberry32(9);
    for (let i = 0; i < 2_000; i++) {
      const homeId = randomHome(rand);
      const local = randomLocal(rand);
      expect(HOME_ID.test(homeId)).toBe(true);
      expect(parseActorId(homeActorId(homeId))).toEqual({ kind: 'home', homeId });
      expect(parseActorId(deviceActorId(homeId, local))).toEqual({ kind: 'device', homeId, deviceId: local });
      expect(parseActorId(hubActorId(homeId, local))).toEqual({ kind: 'hub', homeId, hubId: local });
    }
  });

  it('put the homeId where the cluster reads the shard key, for every kind', () => {
    const rand = mulberry32(17);
    for (let i = 0; i < 2_000; i++) {
      const homeId = randomHome(rand);
      const local = randomLocal(rand);
      expect(homeOfActor(homeActorId(homeId))).toBe(homeId);
      expect(homeOfActor(deviceActorId(homeId, local))).toBe(homeId);
      expect(homeOfActor(hubActorId(homeId, local))).toBe(homeId);
    }
  });

  it('parse nothing else', () => {
    for (const id of [
      '',
      'home',
      'home:',
      'home:h1:x',
      'device:h1',
      'device:h1:',
      'device::d1',
      'hub:h1',
      'hub::x',
      'rule:h1:r1',
      'counter:m1',
      ':h1:d1',
    ]) {
      expect(parseActorId(id), id).toBeUndefined();
    }
  });
});
