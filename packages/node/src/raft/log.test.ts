/**
 * RaftLog: conflict truncation never touches committed entries, pipelined persistence reports are
 * ignored once the entries they name were overwritten, only durable committed entries are handed
 * out, and fast backtracking finds the right position.
 */
import { describe, expect, it } from 'vitest';
import { RaftInvariantError } from './errors.js';
import { RaftLog } from './log.js';
import { type Entry, EntryType } from './types.js';

const entry = (index: number, term: number, text = ''): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: new TextEncoder().encode(text),
});
/** Entries with the given terms, starting at index `from`. */
const run = (from: number, ...terms: number[]): Entry[] => terms.map((term, i) => entry(from + i, term));

describe('RaftLog', () => {
  it('appends, truncates a conflicting suffix and keeps positions ordered', () => {
    const log = new RaftLog({ index: 0, term: 0 }, [], 0, 0);
    log.append(run(1, 1, 1, 1, 2, 2));
    expect(log.takeUnpersisted().map((e) => e.index)).toEqual([1, 2, 3, 4, 5]);
    log.persistedTo({ index: 5, term: 2 });
    expect(log.persisted).toBe(5);
    const truncated = log.append(run(4, 3));
    expect(truncated).toBe(true);
    expect(log.lastIndex()).toBe(4);
    expect(log.lastTerm()).toBe(3);
    // Index 4 must be written again, and only 1..3 remain durable.
    expect(log.persisted).toBe(3);
    expect(log.nextToPersist).toBe(4);
    expect(log.takeUnpersisted().map((e) => `${e.index}/${e.term}`)).toEqual(['4/3']);
  });

  it('refuses to overwrite committed entries', () => {
    const log = new RaftLog({ index: 0, term: 0 }, run(1, 1, 1, 1), 3, 0);
    expect(() => log.append(run(3, 2))).toThrow(RaftInvariantError);
    expect(log.lastIndex()).toBe(3);
  });

  it('ignores a persistence report for entries that were since overwritten', () => {
    const log = new RaftLog({ index: 0, term: 0 }, [], 0, 0);
    log.append(run(1, 1, 1, 1));
    log.takeUnpersisted(); // write A: 1..3 at term 1, in flight
    log.append(run(2, 2)); // conflict: 2..3 replaced by 2/2
    log.takeUnpersisted(); // write B: 2/2, in flight
    expect(log.persistedTo({ index: 3, term: 1 })).toBe(false); // A completes: 3/1 is gone
    expect(log.persisted).toBe(0);
    expect(log.persistedTo({ index: 2, term: 2 })).toBe(true); // B completes
    expect(log.persisted).toBe(2);
  });

  it('hands out only entries that are both committed and durable, within the byte budget', () => {
    const log = new RaftLog({ index: 0, term: 0 }, [], 0, 0);
    log.append([entry(1, 1, 'aaaa'), entry(2, 1, 'bbbb'), entry(3, 1, 'cccc')]);
    log.takeUnpersisted();
    log.commitTo(3);
    expect(log.takeApplicable(100)).toEqual([]); // nothing durable yet
    log.persistedTo({ index: 2, term: 1 });
    expect(log.takeApplicable(5).map((e) => e.index)).toEqual([1]); // 4 bytes fit, 8 do not
    expect(log.takeApplicable(5).map((e) => e.index)).toEqual([2]);
    expect(log.takeApplicable(100)).toEqual([]);
    expect(log.applied).toBe(2);
  });

  it('always hands out at least one entry, however small the budget', () => {
    const log = new RaftLog({ index: 0, term: 0 }, [entry(1, 1, 'a long entry')], 1, 0);
    expect(log.takeApplicable(1).map((e) => e.index)).toEqual([1]);
  });

  it('finds the conflict position by term (fast backtracking)', () => {
    // terms: 1 1 1 4 4 5 5 6 6 6
    const log = new RaftLog({ index: 0, term: 0 }, run(1, 1, 1, 1, 4, 4, 5, 5, 6, 6, 6), 0, 0);
    expect(log.findConflictByTerm(10, 5)).toEqual({ index: 7, term: 5 });
    expect(log.findConflictByTerm(10, 3)).toEqual({ index: 3, term: 1 });
    expect(log.findConflictByTerm(10, 6)).toEqual({ index: 10, term: 6 });
    expect(log.findConflictByTerm(2, 0)).toEqual({ index: 0, term: 0 });
  });

  it('compacts below a snapshot and reports unknown terms there', () => {
    const log = new RaftLog({ index: 0, term: 0 }, run(1, 1, 1, 2, 2, 2), 5, 5);
    log.compactTo(3);
    expect(log.firstIndex()).toBe(4);
    expect(log.term(3)).toBe(2);
    expect(log.term(2)).toBeUndefined();
    expect(log.findConflictByTerm(5, 1)).toEqual({ index: 2, term: 0 });
    expect(() => log.slice(2, 4, 100)).toThrow(RaftInvariantError);
  });

  it('installing a snapshot keeps a matching suffix and replaces a diverging log', () => {
    const matching = new RaftLog({ index: 0, term: 0 }, run(1, 1, 1, 2, 2, 2), 1, 1);
    expect(matching.restore({ index: 3, term: 2 })).toBe(false);
    expect(matching.firstIndex()).toBe(4);
    expect(matching.lastIndex()).toBe(5);
    expect(matching.committed).toBe(3);

    const diverging = new RaftLog({ index: 0, term: 0 }, run(1, 1, 1, 1, 1, 1), 1, 1);
    expect(diverging.restore({ index: 3, term: 2 })).toBe(true);
    expect(diverging.lastIndex()).toBe(3);
    expect(diverging.lastTerm()).toBe(2);
    expect(diverging.persisted).toBe(3);
    expect(diverging.nextToPersist).toBe(4);
  });

  it('rejects a recovered log with a gap or decreasing terms', () => {
    expect(() => new RaftLog({ index: 5, term: 1 }, run(7, 1), 0, 0)).toThrow(RaftInvariantError);
    expect(() => new RaftLog({ index: 0, term: 0 }, run(1, 2, 1), 0, 0)).toThrow(RaftInvariantError);
  });

  it('tracks membership entries through truncation and compaction', () => {
    const conf = (index: number, term: number): Entry => ({
      index,
      term,
      type: EntryType.ConfChange,
      data: new Uint8Array([0, 65]),
    });
    const log = new RaftLog({ index: 0, term: 0 }, [entry(1, 1), conf(2, 1), entry(3, 1), conf(4, 1)], 0, 0);
    expect(log.lastConfIndex()).toBe(4);
    log.append(run(4, 2));
    expect(log.lastConfIndex()).toBe(2);
    expect(log.confEntriesAfter(0).map((e) => e.index)).toEqual([2]);
  });
});
