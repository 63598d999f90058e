import { describe, expect, it } from 'vitest';
import { MESSAGE_TYPES, messageRefusal } from '../../actors/message-kinds.ts';

describe('messageRefusal', () => {
  it('accepts a message type of the actor kind the id names', () => {
    expect(messageRefusal('home:h1', { type: 'home.get' })).toBeUndefined();
    expect(messageRefusal('device:h1:lock:front', { type: 'report', seq: 1 })).toBeUndefined();
    expect(messageRefusal('hub:h1:hub-1', { type: 'hub.durable', upToSeq: 3 })).toBeUndefined();
  });

  it.each([
    ['vault:h1', { type: 'home.get' }, 'unknown_actor'],
    ['home:', { type: 'home.get' }, 'unknown_actor'],
    ['device:h1', { type: 'report' }, 'unknown_actor'],
    ['home:h1', [{ type: 'home.get' }], 'not_a_message'],
    ['home:h1', null, 'not_a_message'],
    ['home:h1', 'home.get', 'not_a_message'],
    ['home:h1', { type: 7 }, 'not_a_message'],
    ['home:h1', { kind: 'home.get' }, 'not_a_message'],
    ['home:h1', { type: 'report' }, 'unknown_type'],
    ['hub:h1:hub-1', { type: 'home.delete' }, 'unknown_type'],
    ['device:h1:d1', { type: '__proto__' }, 'unknown_type'],
    ['device:h1:d1', { type: 'constructor' }, 'unknown_type'],
  ])('refuses %s %o: %s', (actorId, msg, reason) => {
    expect(messageRefusal(actorId, msg)).toBe(reason);
  });

  it('knows every kind of actor id', () => {
    expect(Object.keys(MESSAGE_TYPES).sort()).toEqual(['device', 'home', 'hub']);
  });
});
