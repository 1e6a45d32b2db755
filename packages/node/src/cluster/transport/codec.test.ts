/**
 * Peer frame codec: every Raft message type and handshake frame round-trips; an AppendEntries
 * batch encodes shared entries once and never copies an entry body; and hostile bytes (random, truncated, trailing, wrong field
 * counts, oversized strings) are refused with a typed error, never a crash or a wrong message.
 */
import { FlotillaError, MsgpackWriter } from '@flotilla/shared';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Entry, EntryType, type Message, validateMessage } from '../../raft/index.js';
import {
  decodePeerFrame,
  encodeAuth,
  encodeEntryParts,
  encodeHello,
  encodeMessages,
  encodeWelcome,
  NONCE_BYTES,
  PROOF_BYTES,
} from './codec.js';

const env = { group: 1, from: 'n1', to: 'n2', term: 7 };
const bytes = (text: string) => new TextEncoder().encode(text);
const entry = (index: number, term: number, data: string): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: bytes(data),
});

const samples: Message[] = [
  {
    ...env,
    type: 'append',
    prevIndex: 4,
    prevTerm: 6,
    commit: 3,
    entries: [entry(5, 7, 'a'), entry(6, 7, '')],
  },
  { ...env, type: 'append', prevIndex: 9, prevTerm: 7, commit: 9, entries: [] },
  { ...env, type: 'appendResp', reject: true, index: 9, hintIndex: 4, hintTerm: 2 },
  { ...env, type: 'heartbeat', commit: 12, readSeq: 3 },
  { ...env, type: 'heartbeatResp', readSeq: 3 },
  { ...env, type: 'preVote', lastIndex: 10, lastTerm: 6, transfer: false },
  { ...env, type: 'vote', lastIndex: 10, lastTerm: 6, transfer: true },
  { ...env, type: 'preVoteResp', reject: false },
  { ...env, type: 'voteResp', reject: true },
  {
    ...env,
    type: 'snapshot',
    meta: { index: 100, term: 5, conf: { voters: ['n1', 'n2', 'n3'], learners: ['n4'] } },
    sizeBytes: 10,
    offset: 4,
    length: 6,
    done: true,
    data: bytes('abcdef'),
  },
  { ...env, type: 'snapshotResp', snapshotIndex: 100, snapshotTerm: 5, nextOffset: 10, reject: false },
  { ...env, type: 'timeoutNow' },
];

/** The bytes a peer receives for one frame: its parts joined (WebSocket fragments of one message). */
const joined = (parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

describe('peer frame codec', () => {
  it('round-trips every Raft message type into a valid message', () => {
    const frames = encodeMessages(samples);
    expect(frames.map((f) => f.message)).toEqual(samples);
    frames.forEach((frame, i) => {
      const decoded = decodePeerFrame(joined(frame.parts));
      expect(decoded).toEqual({ kind: 'raft', message: samples[i] });
      if (decoded.kind === 'raft') expect(validateMessage(decoded.message)).toBeNull();
      expect(frame.bytes).toBe(joined(frame.parts).length);
    });
    expect(frames.map((f) => f.bulk)).toEqual(
      samples.map((m) => m.type === 'snapshot' || (m.type === 'append' && m.entries.length > 0)),
    );
  });

  it('encodes the same entries once for every follower, sends bodies uncopied, decodes them as views', () => {
    const entries = [entry(5, 7, 'x'.repeat(1000)), entry(6, 7, 'y')];
    const base = {
      group: 1,
      from: 'n1',
      term: 7,
      type: 'append',
      prevIndex: 4,
      prevTerm: 7,
      commit: 4,
    } as const;
    const [a, b, c] = encodeMessages([
      { ...base, to: 'n2', entries },
      { ...base, to: 'n3', entries: entries.slice() },
      { ...base, to: 'n4', entries: entries.slice(1), prevIndex: 5 },
    ]);
    // Header, then prefix and data per entry; the data parts are the entries' own bytes.
    expect(a!.parts).toHaveLength(5);
    expect(a!.parts[2]).toBe(entries[0]!.data);
    expect(a!.parts[4]).toBe(entries[1]!.data);
    expect(b!.parts.slice(1)).toEqual(a!.parts.slice(1));
    // Shared, not re-encoded: the very same part objects.
    expect(b!.parts.slice(1).every((part, i) => part === a!.parts[i + 1])).toBe(true);
    expect(c!.parts[1]).not.toBe(a!.parts[3]); // a different run of entries: its own prefixes
    expect(c!.parts[2]).toBe(entries[1]!.data);
    const frame = joined(b!.parts);
    const decoded = decodePeerFrame(frame);
    if (decoded.kind !== 'raft' || decoded.message.type !== 'append') throw new Error('not an append');
    expect(decoded.message.to).toBe('n3');
    expect(decoded.message.entries.map((e) => e.index)).toEqual([5, 6]);
    expect(decoded.message.entries[0]!.data.buffer).toBe(frame.buffer);
  });

  it('writes entries exactly as the shared msgpack writer would, for every size class', () => {
    const sizes = [0, 1, 255, 256, 65_535, 65_536];
    const terms = [1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER];
    const entries: Entry[] = terms.map((term, i) => ({
      index: i + 1,
      term,
      type: EntryType.Normal,
      data: new Uint8Array(sizes[i % sizes.length]!).fill(i),
    }));
    const reference = new MsgpackWriter();
    for (const e of entries) {
      reference.arrayHeader(3);
      reference.uint(e.term);
      reference.uint(e.type);
      reference.bin(e.data);
    }
    const { parts, bytes: size } = encodeEntryParts(entries);
    expect(Buffer.compare(Buffer.concat(parts), reference.finish())).toBe(0);
    expect(size).toBe(joined(parts).length);
    // Every non-empty body is its own part, the entry's very bytes; an empty one adds no part.
    const bodies = parts.filter((part) => entries.some((e) => e.data === part));
    expect(bodies).toHaveLength(entries.filter((e) => e.data.length > 0).length);
  });

  it('round-trips the handshake frames', () => {
    const nonce = new Uint8Array(NONCE_BYTES).fill(1);
    const proof = new Uint8Array(PROOF_BYTES).fill(2);
    expect(decodePeerFrame(encodeHello('n1', nonce))).toEqual({
      kind: 'hello',
      version: 1,
      nodeId: 'n1',
      nonce,
    });
    expect(decodePeerFrame(encodeAuth('n2', '[::1]:7402', nonce, proof))).toEqual({
      kind: 'auth',
      version: 1,
      nodeId: 'n2',
      address: '[::1]:7402',
      nonce,
      proof,
    });
    expect(decodePeerFrame(encodeWelcome(proof))).toEqual({ kind: 'welcome', proof });
  });

  it('refuses trailing bytes, wrong field counts, unknown kinds and types, short nonces', () => {
    const heartbeat = joined(encodeMessages([samples[3]!])[0]!.parts);
    const refuse = (frame: Uint8Array) => expect(() => decodePeerFrame(frame)).toThrow(FlotillaError);
    refuse(new Uint8Array([...heartbeat, 0]));
    refuse(Buffer.from([0x92, 3, 1])); // [RAFT, group] only
    refuse(Buffer.from([0x92, 9, 1])); // unknown kind
    refuse(Buffer.from([0x96, 3, 1, 99, 0xa1, 0x61, 0xa1, 0x62, 1])); // unknown message type
    const edited = heartbeat.slice();
    edited[0] = 0x97; // heartbeat header claims one field fewer
    refuse(edited);
    refuse(encodeHello('n1', new Uint8Array(8))); // short nonce
    refuse(Buffer.from([0xc1])); // never-used msgpack byte
    refuse(Buffer.alloc(0));
  });

  it('refuses every truncation of every frame', () => {
    for (const frame of encodeMessages(samples)) {
      const full = joined(frame.parts);
      for (let cut = 0; cut < full.length; cut++) {
        expect(() => decodePeerFrame(full.subarray(0, cut))).toThrow(FlotillaError);
      }
    }
  });

  it('answers random bytes and mutated frames only with a typed error or a frame', () => {
    const valid = encodeMessages(samples).map((f) => joined(f.parts));
    const mutated = fc
      .tuple(fc.constantFrom(...valid), fc.nat(), fc.integer({ min: 0, max: 255 }))
      .map(([frame, at, value]) => {
        const copy = frame.slice();
        copy[at % copy.length] = value;
        return copy;
      });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), mutated), (input) => {
        try {
          const frame = decodePeerFrame(input);
          // Whatever decodes is structurally a frame; a Raft message is either valid or refused with a reason.
          if (frame.kind === 'raft') expect(typeof (validateMessage(frame.message) ?? '')).toBe('string');
        } catch (err) {
          expect(err).toBeInstanceOf(FlotillaError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
