/** Majority arithmetic: commit index is the quorum-th largest match; elections decide as early as possible. */
import { describe, expect, it } from 'vitest';
import { isQuorum, quorumMatchIndex, quorumSize, voteOutcome } from './quorum.js';

describe('quorum', () => {
  it('needs a strict majority', () => {
    expect([1, 2, 3, 4, 5].map(quorumSize)).toEqual([1, 2, 2, 3, 3]);
  });

  it('commit index is what a majority has reached', () => {
    const match: Record<string, number> = { a: 10, b: 8, c: 5, d: 3 };
    expect(quorumMatchIndex(['a', 'b', 'c'], (id) => match[id]!)).toBe(8);
    expect(quorumMatchIndex(['a', 'b', 'c', 'd'], (id) => match[id]!)).toBe(5);
    expect(quorumMatchIndex(['a'], (id) => match[id]!)).toBe(10);
    expect(quorumMatchIndex([], () => 99)).toBe(0);
  });

  it('decides an election once the outcome cannot change, ignoring non-voters', () => {
    const voters = ['a', 'b', 'c', 'd', 'e'];
    const votes = new Map<string, boolean>([
      ['a', true],
      ['b', true],
      ['x', true],
    ]);
    expect(voteOutcome(voters, votes)).toBe('pending');
    votes.set('c', true);
    expect(voteOutcome(voters, votes)).toBe('won');
    const losing = new Map<string, boolean>([
      ['a', true],
      ['b', false],
      ['c', false],
    ]);
    expect(voteOutcome(voters, losing)).toBe('pending');
    losing.set('d', false);
    expect(voteOutcome(voters, losing)).toBe('lost');
  });

  it('isQuorum counts only voters and is false for no voters', () => {
    expect(isQuorum(['a', 'b', 'c'], (id) => id !== 'c')).toBe(true);
    expect(isQuorum(['a', 'b', 'c'], (id) => id === 'a')).toBe(false);
    expect(isQuorum([], () => true)).toBe(false);
  });
});
