/** Membership entries: a byte encoding that round-trips and rejects garbage, and the rules of single-server changes. */
import { describe, expect, it } from 'vitest';
import {
  applyConfChange,
  checkConfChange,
  decodeConfChange,
  describeConfChange,
  encodeConfChange,
} from './conf-change.js';
import { ConfChangeType } from './types.js';

describe('conf changes', () => {
  it('round-trips through the entry encoding', () => {
    for (const type of [
      ConfChangeType.AddLearner,
      ConfChangeType.PromoteLearner,
      ConfChangeType.RemoveNode,
    ]) {
      const change = { type, node: 'nöde-7' };
      expect(decodeConfChange(encodeConfChange(change))).toEqual(change);
    }
  });

  it('carries a peer address, and still reads changes written without one', () => {
    const change = { type: ConfChangeType.AddLearner, node: 'n4', address: '[::1]:7404' };
    const data = encodeConfChange(change);
    expect(decodeConfChange(data)).toEqual(change);
    expect(describeConfChange(change)).toBe('add-learner n4@[::1]:7404');
    const legacy = new Uint8Array([ConfChangeType.AddLearner, 0x6e, 0x34]); // type byte, then "n4"
    expect(decodeConfChange(legacy)).toEqual({ type: ConfChangeType.AddLearner, node: 'n4' });
    expect(decodeConfChange(legacy)).not.toHaveProperty('address');
  });

  it('rejects an empty or oversized address, and refuses to encode an id with a NUL', () => {
    expect(decodeConfChange(new Uint8Array([0, 0x61, 0]))).toBeNull();
    const long = new Uint8Array(2 + 1 + 1025).fill(0x61);
    long[0] = 0;
    long[2] = 0;
    expect(decodeConfChange(long)).toBeNull();
    expect(decodeConfChange(new Uint8Array([0, 0, 0x61]))).toBeNull(); // empty id before the address
    expect(() => encodeConfChange({ type: ConfChangeType.RemoveNode, node: 'a\u0000b' })).toThrow(/NUL/);
  });

  it('rejects bytes that are not a change', () => {
    expect(decodeConfChange(new Uint8Array([]))).toBeNull();
    expect(decodeConfChange(new Uint8Array([9, 65]))).toBeNull();
    expect(decodeConfChange(new Uint8Array([0]))).toBeNull();
    expect(decodeConfChange(new Uint8Array([0, 0xff, 0xfe]))).toBeNull(); // invalid UTF-8
    expect(decodeConfChange(new Uint8Array(2000).fill(65))).toBeNull();
  });

  it('adds a learner, promotes it, removes a voter', () => {
    let conf = { voters: ['a', 'b', 'c'], learners: [] as string[] };
    conf = applyConfChange(conf, { type: ConfChangeType.AddLearner, node: 'd' });
    expect(conf).toEqual({ voters: ['a', 'b', 'c'], learners: ['d'] });
    conf = applyConfChange(conf, { type: ConfChangeType.PromoteLearner, node: 'd' });
    expect(conf).toEqual({ voters: ['a', 'b', 'c', 'd'], learners: [] });
    conf = applyConfChange(conf, { type: ConfChangeType.RemoveNode, node: 'a' });
    expect(conf).toEqual({ voters: ['b', 'c', 'd'], learners: [] });
  });

  it('refuses changes that do not fit, and applying one changes nothing', () => {
    const conf = { voters: ['a'], learners: ['l'] };
    expect(checkConfChange(conf, { type: ConfChangeType.AddLearner, node: 'a' })).toMatch(/already/);
    expect(checkConfChange(conf, { type: ConfChangeType.PromoteLearner, node: 'a' })).toMatch(
      /not a learner/,
    );
    expect(checkConfChange(conf, { type: ConfChangeType.RemoveNode, node: 'z' })).toMatch(/not a member/);
    expect(checkConfChange(conf, { type: ConfChangeType.RemoveNode, node: 'a' })).toMatch(/last voter/);
    expect(applyConfChange(conf, { type: ConfChangeType.RemoveNode, node: 'a' })).toBe(conf);
  });
});
