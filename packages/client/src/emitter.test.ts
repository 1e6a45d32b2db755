/**
 * Proves the typed emitter: listeners run in order, `once` runs once, removers work, and a
 * throwing listener neither stops the others nor escapes into the emitting code.
 */

import { expect, it } from 'vitest';
import { TypedEmitter } from './emitter.js';

interface Events {
  tick: number;
  done: string;
}

it('calls listeners in registration order with the payload', () => {
  const events = new TypedEmitter<Events>();
  const calls: string[] = [];
  events.on('tick', (n) => calls.push(`a${n}`));
  events.on('tick', (n) => calls.push(`b${n}`));
  events.emit('tick', 1);
  expect(calls).toEqual(['a1', 'b1']);
  expect(events.listenerCount('tick')).toBe(2);
});

it('runs a once listener a single time and removes listeners by their remover', () => {
  const events = new TypedEmitter<Events>();
  const calls: number[] = [];
  events.once('tick', (n) => calls.push(n));
  const off = events.on('tick', (n) => calls.push(n * 10));
  events.emit('tick', 1);
  off();
  events.emit('tick', 2);
  expect(calls).toEqual([1, 10]);
  expect(events.listenerCount('tick')).toBe(0);
});

it('isolates a throwing listener and reports its error', () => {
  const reported: unknown[] = [];
  const events = new TypedEmitter<Events>((error) => reported.push(error));
  const calls: string[] = [];
  events.on('done', () => {
    throw new Error('listener bug');
  });
  events.on('done', (text) => calls.push(text));
  expect(() => events.emit('done', 'ok')).not.toThrow();
  expect(calls).toEqual(['ok']);
  expect((reported[0] as Error).message).toBe('listener bug');
});

it('lets a listener remove itself while the event is being emitted', () => {
  const events = new TypedEmitter<Events>();
  const calls: string[] = [];
  const off = events.on('tick', () => {
    calls.push('first');
    off();
  });
  events.on('tick', () => calls.push('second'));
  events.emit('tick', 0);
  events.emit('tick', 0);
  expect(calls).toEqual(['first', 'second', 'second']);
});
