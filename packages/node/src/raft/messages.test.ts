/**
 * Peer input is outside input: every malformed message is refused with a reason by validation
 * and by `step`, and changes nothing in the receiving node.
 */
import { describe, expect, it } from 'vitest';
import { encodeConfChange } from './conf-change.js';
import { describeMessage, type Message, validateMessage } from './messages.js';
import { TestCluster } from './test-support.js';
import { ConfChangeType, EntryType } from './types.js';

const base = { group: 1, from: 'n1', to: 'n2', term: 2 };
const entry = (index: number, term: number) => ({
  index,
  term,
  type: EntryType.Normal,
  data: new Uint8Array([1]),
});
const append = (fields: Record<string, unknown>) => ({
  ...base,
  type: 'append',
  prevIndex: 0,
  prevTerm: 0,
  entries: [],
  commit: 0,
  ...fields,
});

describe('validateMessage', () => {
  it('accepts well-formed messages', () => {
    const good: Message[] = [
      append({ entries: [entry(1, 1), entry(2, 2)] }) as Message,
      { ...base, type: 'appendResp', reject: true, index: 4, hintIndex: 3, hintTerm: 1 },
      { ...base, type: 'heartbeat', commit: 3, readSeq: 0 },
      { ...base, type: 'preVote', lastIndex: 4, lastTerm: 1, transfer: false },
      {
        ...base,
        type: 'snapshot',
        meta: { index: 9, term: 2, conf: { voters: ['n1'], learners: [] } },
        sizeBytes: 10,
        offset: 6,
        length: 4,
        done: true,
        data: new Uint8Array(4),
      },
      { ...base, type: 'timeoutNow' },
    ];
    for (const m of good) expect(validateMessage(m), describeMessage(m)).toBeNull();
  });

  it.each([
    ['not an object', 42],
    ['null', null],
    ['unknown type', { ...base, type: 'gossip' }],
    ['negative term', { ...base, term: -1, type: 'timeoutNow' }],
    [
      'fractional index',
      { ...base, type: 'appendResp', reject: false, index: 1.5, hintIndex: 0, hintTerm: 0 },
    ],
    ['empty sender', { ...base, from: '', type: 'timeoutNow' }],
    ['huge sender id', { ...base, from: 'x'.repeat(300), type: 'timeoutNow' }],
    ['entries not an array', append({ entries: 'nope' })],
    ['entry index gap', append({ entries: [entry(1, 1), entry(3, 1)] })],
    ['entry term above message term', append({ entries: [entry(1, 3)] })],
    ['entry terms decreasing', append({ entries: [entry(1, 2), entry(2, 1)] })],
    ['entry data not bytes', append({ entries: [{ index: 1, term: 1, type: 0, data: 'x' }] })],
    ['bad entry type', append({ entries: [{ ...entry(1, 1), type: 7 }] })],
    [
      'garbage membership entry',
      append({ entries: [{ ...entry(1, 1), type: EntryType.ConfChange, data: new Uint8Array([9]) }] }),
    ],
    ['vote in term 0', { ...base, term: 0, type: 'vote', lastIndex: 0, lastTerm: 0, transfer: false }],
    [
      'chunk past the end',
      {
        ...base,
        type: 'snapshot',
        meta: { index: 1, term: 1, conf: { voters: [], learners: [] } },
        sizeBytes: 4,
        offset: 2,
        length: 4,
        done: true,
        data: new Uint8Array(4),
      },
    ],
    [
      'chunk done flag wrong',
      {
        ...base,
        type: 'snapshot',
        meta: { index: 1, term: 1, conf: { voters: [], learners: [] } },
        sizeBytes: 8,
        offset: 0,
        length: 4,
        done: true,
        data: new Uint8Array(4),
      },
    ],
    [
      'chunk length mismatch',
      {
        ...base,
        type: 'snapshot',
        meta: { index: 1, term: 1, conf: { voters: [], learners: [] } },
        sizeBytes: 8,
        offset: 0,
        length: 4,
        done: false,
        data: new Uint8Array(3),
      },
    ],
    [
      'snapshot meta without conf',
      {
        ...base,
        type: 'snapshot',
        meta: { index: 1, term: 1 },
        sizeBytes: 0,
        offset: 0,
        length: 0,
        done: true,
        data: new Uint8Array(0),
      },
    ],
  ])('refuses %s', (_name, value) => {
    expect(validateMessage(value)).toEqual(expect.any(String));
  });

  it('a membership entry that decodes is accepted', () => {
    const data = encodeConfChange({ type: ConfChangeType.AddLearner, node: 'n9' });
    expect(
      validateMessage(append({ entries: [{ index: 1, term: 1, type: EntryType.ConfChange, data }] })),
    ).toBeNull();
  });
});

describe('step with hostile input', () => {
  it('drops malformed, foreign-group and misaddressed messages without changing state', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.propose('n1', 'x');
    c.stabilize();
    const n2 = c.raft('n2');
    const before = n2.status();
    const results = [
      n2.step(append({ term: 99, entries: [entry(5, 1)] }) as Message),
      n2.step({ ...base, group: 7, term: 99, type: 'timeoutNow' }),
      n2.step({ ...base, to: 'n3', term: 99, type: 'timeoutNow' }),
      n2.step({ ...base, from: 'n2', term: 99, type: 'timeoutNow' }),
      n2.step({ ...base, term: 99, type: 'heartbeat', commit: -4, readSeq: 0 } as Message),
    ];
    expect(results.map((r) => r.ok)).toEqual([false, false, false, false, false]);
    expect(n2.status()).toEqual(before);
    expect(n2.hasReady()).toBe(false);
  });

  it('refuses well-formed messages that no correct peer could send, without changing state', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    const n2 = c.raft('n2');
    const before = n2.status();
    const secondLeader = {
      group: 1,
      from: 'n3',
      to: 'n2',
      term: 1,
      type: 'heartbeat',
      commit: 0,
      readSeq: 0,
    } as const;
    expect(n2.step(secondLeader)).toEqual({ ok: false, reason: 'n3 claims to lead term 1, which n1 leads' });
    const beyond = { ...secondLeader, from: 'n1', commit: 50 };
    expect(n2.step(beyond)).toEqual({ ok: false, reason: 'heartbeat commit 50 beyond last index 1' });
    const n1 = c.raft('n1');
    const ack = {
      group: 1,
      from: 'n2',
      to: 'n1',
      term: 1,
      type: 'appendResp',
      reject: false,
      index: 9,
      hintIndex: 0,
      hintTerm: 0,
    } as const;
    expect(n1.step(ack)).toMatchObject({ ok: false });
    expect(
      n1.step({
        ...ack,
        from: 'n3',
        to: 'n1',
        type: 'append',
        prevIndex: 1,
        prevTerm: 1,
        entries: [],
        commit: 1,
      } as Message),
    ).toMatchObject({ ok: false });
    expect(n2.status()).toEqual(before);
    expect(n1.status().commit).toBe(1);
  });
});
