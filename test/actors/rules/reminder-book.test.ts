import { describe, expect, it } from 'vitest';
import { ReminderBook } from '../../../actors/rules/reminder-book.ts';

describe('ReminderBook', () => {
  it('sees the pending reminders and its own sets and cancels, in order', () => {
    const pending = new Map([
      ['at.r1.0', { at: 10, payload: undefined }],
      ['~wake', { at: 5, payload: undefined }],
    ]);
    const book = new ReminderBook(pending);
    book.set('for.r1.0', 20, { value: 1, depth: 0 });
    book.cancel('at.r1.0');
    book.cancel('at.r9.0'); // not pending: no op
    expect(book.get('at.r1.0')).toBeUndefined();
    expect(book.get('for.r1.0')).toEqual({ at: 20, payload: { value: 1, depth: 0 } });
    expect(book.namesStartingWith('')).toEqual(['for.r1.0', '~wake']);
    expect(book.ops()).toEqual([
      { op: 'set', name: 'for.r1.0', at: 20, payload: { value: 1, depth: 0 } },
      { op: 'cancel', name: 'at.r1.0' },
    ]);
    // The runtime's map is never written.
    expect([...pending.keys()]).toEqual(['at.r1.0', '~wake']);
  });

  it('treats the reminder being fired as gone, so cancelling it issues nothing and setting it again does', () => {
    const book = new ReminderBook(new Map([['at.r1.0', { at: 10, payload: undefined }]]), 'at.r1.0');
    book.cancel('at.r1.0');
    expect(book.ops()).toEqual([]);
    book.set('at.r1.0', 20);
    expect(book.ops()).toEqual([{ op: 'set', name: 'at.r1.0', at: 20 }]);
  });

  it('works without pending reminders (a context that has none)', () => {
    const book = new ReminderBook(undefined);
    expect(book.namesStartingWith('run.')).toEqual([]);
    book.cancel('run.r.1');
    expect(book.ops()).toEqual([]);
  });
});
