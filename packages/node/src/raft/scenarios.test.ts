/**
 * The classic traps, each replayed step by step on a hand-driven cluster and named after the part of
 * the Raft paper (Ongaro & Ousterhout, 2014) or thesis (Ongaro, 2014) it defends. Message
 * transcripts are inline snapshots: regenerate with `npx vitest run -u <file>` and review the diff.
 */
import { describe, expect, it } from 'vitest';
import type { Message } from './messages.js';
import { TestCluster } from './test-support.js';

const between = (a: string, b: string) => (m: Message) =>
  (m.from === a && m.to === b) || (m.from === b && m.to === a);
const carries = (m: Message, index: number, term: number) =>
  m.type === 'append' && m.entries.some((e) => e.index === index && e.term === term);

describe('Figure 8 (§5.4.2): an entry of an earlier term is not committed by counting replicas', () => {
  /** Replays Figure 8 (a)–(c); returns the cluster with s1 leading term 3 and A on s1, s2, s3. */
  function figure8UpToC(): TestCluster {
    // Leases would only add waiting to this replay; the trap is about the commit rule.
    // maxAppendBytes 0: one entry per AppendEntries, so the test decides which entry reaches whom.
    const c = new TestCluster(['s1', 's2', 's3', 's4', 's5'], {
      checkQuorum: false,
      limits: { maxAppendBytes: 0 },
    });
    c.elect('s1');
    // (a) s1 leads term 1 and gets A (2/1) to s2 only.
    c.partition(['s1', 's2'], ['s3', 's4', 's5']);
    expect(c.propose('s1', 'A')).toEqual({ ok: true, index: 2, term: 1 });
    c.stabilize();
    // (b) s1 crashes; s5 wins term 2 with s3 and s4, appends its no-op 2/2, which never leaves it.
    c.crash('s1');
    c.heal();
    c.campaignUntilLeader('s5');
    c.drop(() => true);
    c.crash('s5');
    // (c) s1 restarts and wins term 3 (its log 2/1 beats s3's and s4's 1/1).
    c.restart('s1');
    c.campaignUntilLeader('s1');
    expect(c.logTerms('s1')).toEqual(['1/1', '2/1', '3/3']);
    return c;
  }

  it('A on a majority stays uncommitted, and s5 may then overwrite it', () => {
    const c = figure8UpToC();
    c.takeTranscript();
    // s1 repairs s3 up to A; its own term-3 entry reaches s2 but not s3 (once s3 could take it).
    const s3HasA = () => c.logTerms('s3').includes('2/1');
    c.settle(
      (m) =>
        (between('s1', 's2')(m) || between('s1', 's3')(m)) &&
        !(m.to === 's3' && carries(m, 3, 3) && s3HasA()),
    );
    expect(c.takeTranscript()).toMatchInlineSnapshot(`
      [
        "s1->s2 append t3 prev=2/1 [3/3] c1",
        "s1->s3 append t3 prev=2/1 [3/3] c1",
        "s2->s1 appendResp t3 ok 3",
        "s3->s1 appendResp t3 reject 2 hint=1/1",
        "s1->s3 append t3 prev=1/1 [2/1] c1",
        "s3->s1 appendResp t3 ok 2",
      ]
    `);
    expect(c.logTerms('s3')).toEqual(['1/1', '2/1']);
    // A (2/1) is on s1, s2 and s3, a majority of five, yet it is not committed: its term is not s1's.
    expect(c.raft('s1').status().commit).toBe(1);

    // (d) s1 crashes before replicating 3/3 any further; s5 returns and wins term 4 with s3 and s4
    // (its last entry 2/2 is newer than their 2/1 and 1/1), then overwrites A everywhere.
    c.crash('s1');
    c.drop(() => true);
    c.restart('s5');
    c.campaignUntilLeader('s5');
    c.stabilize();
    c.restart('s1');
    c.tickAll(1); // a heartbeat reaches s1, which answers and gets repaired
    c.stabilize();
    for (const id of ['s1', 's2', 's3', 's4', 's5']) {
      expect(c.logTerms(id), id).toEqual(['1/1', '2/2', '3/4']);
      expect(c.appliedData(id), id).toEqual([]); // A was never applied anywhere
    }
  });

  it('(e) once s1 replicates an entry of its own term to a majority, A commits and s5 cannot win', () => {
    const c = figure8UpToC();
    c.settle((m) => between('s1', 's2')(m) || between('s1', 's3')(m));
    expect(c.logTerms('s3')).toEqual(['1/1', '2/1', '3/3']);
    expect(c.raft('s1').status().commit).toBe(3);
    expect(c.appliedData('s1')).toEqual(['A']);
    c.crash('s1');
    c.drop(() => true);
    c.restart('s5');
    expect(() => c.campaignUntilLeader('s5')).toThrow(/did not become leader/);
  });
});

describe('§5.3, §5.4: a partitioned old leader keeps accepting proposals', () => {
  it('they never commit, and the new leader overwrites them', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.isolate('n1');
    // The old leader does not know yet: it accepts proposals it can never commit.
    const lost = [c.propose('n1', 'lost-1'), c.propose('n1', 'lost-2')];
    expect(lost.map((r) => r.ok)).toEqual([true, true]);
    c.stabilize();
    // The majority side elects a leader once its lease on n1 has run out.
    c.tick('n2', 10);
    c.tick('n3', 10);
    c.campaignUntilLeader('n2');
    c.propose('n2', 'kept');
    c.stabilize();
    expect(c.raft('n1').status()).toMatchObject({ role: 'leader', term: 1, commit: 1 });
    c.heal();
    c.tickAll(1); // n1's heartbeat is answered with term 2: it steps down and is repaired
    c.stabilize();
    c.tickAll(1);
    c.stabilize();
    for (const id of ['n1', 'n2', 'n3']) {
      expect(c.appliedData(id), id).toEqual(['kept']);
      expect(c.logTerms(id), id).toEqual(['1/1', '2/2', '3/2']);
    }
    // The proposer can tell: the indexes it was given now hold entries of another term.
    for (const r of lost) if (r.ok) expect(c.raft('n1').logView().term(r.index)).not.toBe(r.term);
  });
});

describe('§5.4.1: a rejoining node with a longer but stale log', () => {
  it('cannot win an election, and its extra entries are truncated', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.isolate('n1');
    for (let i = 0; i < 5; i++) c.propose('n1', `stale-${i}`);
    c.crash('n1');
    c.heal();
    c.tick('n2', 10);
    c.tick('n3', 10);
    c.campaignUntilLeader('n2');
    c.propose('n2', 'fresh');
    c.stabilize();
    c.crash('n2'); // the leader goes away, so nobody holds a lease when n1 comes back
    c.restart('n1');
    expect(c.logTerms('n1')).toHaveLength(6); // longer than n3's three entries...
    expect(c.logTerms('n3')).toEqual(['1/1', '2/2', '3/2']);
    // ...but older at its end (term 1 < 2): n3 refuses it even a pre-vote.
    expect(() => c.campaignUntilLeader('n1')).toThrow(/did not become leader/);
    c.campaignUntilLeader('n3');
    c.stabilize();
    c.heartbeat('n3');
    expect(c.logTerms('n1')).toEqual(c.logTerms('n3'));
    expect(c.appliedData('n1')).toEqual(['fresh']);
  });
});

describe('§5.2, Figure 2: the vote is persistent', () => {
  it('a vote is not sent before it is durable', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], { preVote: false });
    c.node('n2').manualPersist = true;
    c.raft('n1').campaign();
    c.processReadys();
    c.deliver((m) => m.to === 'n2');
    expect(c.network.filter((m) => m.from === 'n2')).toEqual([]);
    c.persist('n2');
    expect(c.network.filter((m) => m.from === 'n2').map((m) => m.type)).toEqual(['voteResp']);
  });

  it('a node that restarts does not vote twice in a term', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], { preVote: false, checkQuorum: false });
    c.raft('n1').campaign();
    c.processReadys();
    c.deliver((m) => m.to === 'n2'); // n2 votes for n1 in term 1
    c.drop(() => true);
    c.crash('n2');
    c.restart('n2');
    c.raft('n3').campaign(); // n3 also campaigns in term 1
    c.processReadys();
    c.takeTranscript();
    c.deliver((m) => m.to === 'n2');
    c.deliver((m) => m.to === 'n3');
    expect(c.takeTranscript()).toMatchInlineSnapshot(`
      [
        "n3->n2 vote t1 last=0/0",
        "n2->n3 voteResp t1 reject",
      ]
    `);
    expect(c.raft('n2').status()).toMatchObject({ term: 1, vote: 'n1' });
  });
});

/** Ticks every node once and delivers everything, `rounds` times: a healthy cluster at work. */
function runFor(c: TestCluster, rounds: number): void {
  for (let i = 0; i < rounds; i++) {
    c.tickAll(1);
    c.stabilize();
  }
}

describe('thesis §9.6: PreVote stops a partitioned node from disrupting a healthy cluster', () => {
  function partitionedNode(preVote: boolean): TestCluster {
    const c = new TestCluster(['n1', 'n2', 'n3'], { preVote });
    c.elect('n1');
    c.isolate('n3');
    runFor(c, 60); // n3 times out again and again while cut off
    c.heal();
    runFor(c, 5);
    return c;
  }

  it('with PreVote, the isolated node never raises its term and the leader keeps leading', () => {
    const c = partitionedNode(true);
    expect(c.raft('n3').status().term).toBe(1);
    expect(c.raft('n1').status()).toMatchObject({ role: 'leader', term: 1 });
    expect(c.leaders()).toEqual(['n1']);
  });

  it('without PreVote, the same node forces an election when it rejoins (the failure PreVote prevents)', () => {
    const c = partitionedNode(false);
    expect(c.raft('n3').status().term).toBeGreaterThan(1);
    expect(c.raft('n1').status().term).toBeGreaterThan(1);
  });
});

describe('thesis §4.2.3: a removed node must not disrupt the cluster', () => {
  it('a removed node that never learned of its removal cannot unseat the leader', () => {
    const c = new TestCluster(['n1', 'n2', 'n3', 'n4']);
    c.elect('n1');
    c.isolate('n4'); // n4 misses its own removal
    const removal = c.proposeConfChange('n1', { type: 2, node: 'n4' });
    expect(removal.ok).toBe(true);
    c.stabilize();
    expect(c.raft('n1').status().conf.voters).toEqual(['n1', 'n2', 'n3']);
    runFor(c, 40); // n4 times out repeatedly
    c.heal();
    runFor(c, 40);
    expect(c.raft('n4').status().conf.voters).toContain('n4'); // it still thinks it is a voter
    expect(c.raft('n1').status()).toMatchObject({ role: 'leader', term: 1 });
    c.propose('n1', 'still working');
    c.stabilize();
    c.heartbeat('n1');
    expect(c.appliedData('n2')).toEqual(['still working']);
  });
});

describe('thesis §4.2.3: the leader lease alone also protects against a removed node', () => {
  it('without PreVote, its ever higher terms are ignored by members that hear from the leader', () => {
    const c = new TestCluster(['n1', 'n2', 'n3', 'n4'], { preVote: false });
    c.elect('n1');
    c.isolate('n4');
    c.proposeConfChange('n1', { type: 2, node: 'n4' });
    c.stabilize();
    c.heal();
    runFor(c, 60);
    expect(c.raft('n4').status().term).toBeGreaterThan(1);
    expect(c.raft('n1').status()).toMatchObject({ role: 'leader', term: 1 });
    expect(c.raft('n2').status().term).toBe(1);
  });
});

describe('§7: a far-behind follower gets the snapshot', () => {
  it('sends the snapshot in chunks, then entries; the follower restores and catches up', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], {
      limits: { compactionKeepEntries: 0, snapshotChunkBytes: 40, snapshotChunksInflight: 2 },
    });
    c.elect('n1');
    c.crash('n3');
    for (let i = 1; i <= 8; i++) c.propose('n1', `e${i}`);
    c.stabilize();
    const meta = c.snapshot('n1', 60);
    expect(meta.index).toBe(9);
    expect(c.raft('n1').status().firstIndex).toBe(10);
    c.propose('n1', 'after');
    c.stabilize();
    c.restart('n3');
    c.takeTranscript();
    c.tickAll(1);
    c.stabilize();
    expect(c.takeTranscript()).toMatchInlineSnapshot(`
      [
        "n1->n2 heartbeat t1 c10",
        "n1->n3 heartbeat t1 c1",
        "n2->n1 heartbeatResp t1",
        "n3->n1 heartbeatResp t1",
        "n1->n3 append t1 prev=10/1 [] c10",
        "n3->n1 appendResp t1 reject 10 hint=1/1",
        "n1->n3 snapshot t1 snap=9/1 bytes=0+40/86",
        "n1->n3 snapshot t1 snap=9/1 bytes=40+40/86",
        "n3->n1 snapshotResp t1 snap=9/1 next=40",
        "n3->n1 snapshotResp t1 snap=9/1 next=80",
        "n1->n3 snapshot t1 snap=9/1 bytes=80+6/86 done",
        "n3->n1 appendResp t1 ok 9",
        "n1->n3 append t1 prev=9/1 [10/1] c10",
        "n3->n1 appendResp t1 ok 10",
      ]
    `);
    expect(c.node('n3').restoredFrom).toBe(9);
    expect(c.appliedData('n3')).toEqual(['after']);
    expect(
      new TextDecoder().decode(c.node('n3').disk.snapshotData).startsWith('0|,e1,e2,e3,e4,e5,e6,e7,e8'),
    ).toBe(true);
    expect(c.logTerms('n3')).toEqual(c.logTerms('n1'));
  });

  it('a follower whose log diverges at the snapshot point replaces its whole log', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], { limits: { compactionKeepEntries: 0 } });
    c.elect('n3');
    c.isolate('n3');
    for (let i = 0; i < 4; i++) c.propose('n3', `stale-${i}`); // 2..5 at term 1, never committed
    c.stabilize();
    c.tick('n1', 10);
    c.tick('n2', 10);
    c.campaignUntilLeader('n1');
    for (let i = 0; i < 6; i++) c.propose('n1', `new-${i}`);
    c.stabilize();
    c.snapshot('n1');
    c.heal();
    runFor(c, 3);
    const n3 = c.node('n3');
    expect(n3.disk.snapshot?.index).toBe(8);
    expect(n3.disk.entries.every((e) => e.term === 2)).toBe(true); // the stale tail is gone from disk too
    expect(c.logTerms('n3')).toEqual(c.logTerms('n1'));
    expect(c.appliedData('n3')).toEqual([]); // everything it has came with the snapshot
  });
});
