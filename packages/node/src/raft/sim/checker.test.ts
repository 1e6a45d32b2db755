/**
 * Proves the simulator's checker can fail: for each property it checks, a hand-made sequence of
 * observations that breaks exactly that property is reported (naming the property), and the same
 * sequence made consistent is not. Commit monotonicity (checked by the simulated driver) and
 * liveness (checked by the simulation after healing) are shown failing where they live. Last, a
 * deliberately broken core (a leader that commits an entry of an earlier term by counting replicas,
 * the Figure 8 bug that §5.4.2 rules out) is run through the simulator, which must catch it within
 * a few seeds; the same seed is clean once the core is restored.
 */
import { describe, expect, it } from 'vitest';
import type { LogView } from '../node.js';
import { RaftNode } from '../node.js';
import { quorumMatchIndex } from '../quorum.js';
import type { Entry, NodeId } from '../types.js';
import { Checker, entryKey } from './checker.js';
import { EventQueue } from './event-queue.js';
import { createSimStorage, MemDisk } from './mem-storage.js';
import { Prng } from './prng.js';
import { SimNode } from './sim-node.js';
import { runSimulation } from './simulation.js';

function entry(index: number, term: number, text: string): Entry {
  return { index, term, type: 0, data: new TextEncoder().encode(text) };
}

/** A node's log as the checker sees it: `terms[i]` is the term of index `first + i`. */
function logOf(terms: number[], first = 1): LogView {
  const entries = terms.map((term, i) => entry(first + i, term, `e${first + i}/${term}`));
  return {
    firstIndex: () => first,
    lastIndex: () => first + terms.length - 1,
    term: (index) => (index === first - 1 ? 0 : entries[index - first]?.term),
    entries: (lo, hi) => entries.filter((e) => e.index >= lo && e.index < hi),
  };
}

/** Runs `observe` on a fresh checker; returns its violations. */
function violationsOf(observe: (checker: Checker) => void): string[] {
  const checker = new Checker();
  observe(checker);
  return checker.violations;
}

describe('checker: each property is reported when broken, and only then', () => {
  it('election safety: two leaders in one term', () => {
    const log = logOf([1]);
    const clean = violationsOf((c) => {
      c.onLeader('n1', 2, log);
      c.onLeader('n1', 2, log); // the same leader seen twice is fine
      c.onLeader('n2', 3, log);
    });
    expect(clean).toEqual([]);
    const broken = violationsOf((c) => {
      c.onLeader('n1', 2, log);
      c.onLeader('n2', 2, log);
    });
    expect(broken).toEqual(['election safety: n1 and n2 both leaders in term 2']);
  });

  it('vote safety: one voter, two candidates, one term', () => {
    expect(
      violationsOf((c) => {
        c.onVoteGranted('n1', 3, 'n2');
        c.onVoteGranted('n1', 3, 'n2');
        c.onVoteGranted('n1', 4, 'n3');
      }),
    ).toEqual([]);
    const broken = violationsOf((c) => {
      c.onVoteGranted('n1', 3, 'n2');
      c.onVoteGranted('n1', 3, 'n3');
    });
    expect(broken).toEqual(['vote safety: n1 voted for n2 and n3 in term 3']);
  });

  it('log matching: one (index, term) with other data or another predecessor term', () => {
    expect(
      violationsOf((c) => {
        c.onPersistEntries('n1', [entry(2, 1, 'a'), entry(3, 2, 'b')], 1);
        c.onPersistEntries('n2', [entry(2, 1, 'a'), entry(3, 2, 'b')], 1);
      }),
    ).toEqual([]);
    const otherData = violationsOf((c) => {
      c.onPersistEntries('n1', [entry(2, 1, 'a')], 1);
      c.onPersistEntries('n2', [entry(2, 1, 'x')], 1);
    });
    expect(otherData).toHaveLength(1);
    expect(otherData[0]).toMatch(
      /^log matching: n2 has 2\/1 = 0:x after term 1; elsewhere 0:a after term 1$/,
    );
    const otherPredecessor = violationsOf((c) => {
      c.onPersistEntries('n1', [entry(3, 2, 'b')], 1);
      c.onPersistEntries('n2', [entry(3, 2, 'b')], 2);
    });
    expect(otherPredecessor).toHaveLength(1);
    expect(otherPredecessor[0]).toMatch(
      /^log matching: n2 has 3\/2 .* after term 2; elsewhere .* after term 1$/,
    );
  });

  it('log matching: a full sweep of in-memory logs finds the same conflict', () => {
    const broken = violationsOf((c) => {
      c.checkLog('n1', logOf([1, 1, 2]));
      c.checkLog('n2', logOf([1, 1, 3]));
      c.checkLog('n3', logOf([1, 2, 2]));
    });
    // n2 only diverges by a new (index, term); n3's 3/2 follows term 2 where n1's follows term 1.
    expect(broken).toEqual(['log matching: n3 has 3/2 = 0:e3/2 after term 2; elsewhere 0:e3/2 after term 1']);
    const same = logOf([1, 1, 2]);
    expect(
      violationsOf((c) => {
        c.checkLog('n1', same);
        c.checkLog('n2', same);
      }),
    ).toEqual([]);
  });

  it('leader completeness: a new leader lacks a committed entry', () => {
    const committed = (c: Checker) => c.onCommit('n1', 0, 3, logOf([1, 1, 2]));
    expect(
      violationsOf((c) => {
        committed(c);
        c.onLeader('n2', 3, logOf([1, 1, 2, 3]));
      }),
    ).toEqual([]);
    const tooShort = violationsOf((c) => {
      committed(c);
      c.onLeader('n2', 3, logOf([1, 1]));
    });
    expect(tooShort).toEqual(['leader completeness: n2 leads term 3 with last index 2 < committed 3']);
    const otherTerm = violationsOf((c) => {
      committed(c);
      c.onLeader('n3', 3, logOf([1, 1, 1]));
    });
    expect(otherTerm).toEqual(['leader completeness: n3 leads term 3 but has 3/1, committed 3/2']);
  });

  it('commit stability: an index committed with one term is never committed with another', () => {
    expect(
      violationsOf((c) => {
        c.onCommit('n1', 0, 2, logOf([1, 2]));
        c.onCommit('n2', 0, 3, logOf([1, 2, 2]));
      }),
    ).toEqual([]);
    const broken = violationsOf((c) => {
      c.onCommit('n1', 0, 2, logOf([1, 2]));
      c.onCommit('n2', 1, 2, logOf([1, 3]));
    });
    expect(broken).toEqual(['commit stability: n2 committed 2/3, but 2/2 was committed before']);
  });

  it('state machine safety: another state at an index, by apply or by snapshot restore', () => {
    const a = entry(1, 1, 'a');
    expect(
      violationsOf((c) => {
        c.onApply('n1', a, 100);
        c.onApply('n2', a, 100);
        c.onRestore('n3', 1, 100);
      }),
    ).toEqual([]);
    expect(
      violationsOf((c) => {
        c.onApply('n1', a, 100);
        c.onApply('n2', entry(1, 1, 'b'), 200);
      }),
    ).toEqual(['state machine safety: n2 apply of 1/1 gives state 200, others reached 100 at 1']);
    expect(
      violationsOf((c) => {
        c.onApply('n1', a, 100);
        c.onRestore('n3', 1, 300);
      }),
    ).toEqual(['state machine safety: n3 restore of snapshot 1 gives state 300, others reached 100 at 1']);
  });

  it('linearizable reads: a read index below an earlier acknowledged write', () => {
    expect(violationsOf((c) => c.onReadState('n1', 5, 5))).toEqual([]);
    expect(violationsOf((c) => c.onReadState('n1', 4, 5))).toEqual([
      'linearizable read: n1 answered read at 4, a write at 5 was acknowledged before',
    ]);
  });

  it('durability: an acknowledged proposal must be applied, at its index, on every live member', () => {
    const p1 = entry(1, 1, 'p1');
    const acked = (c: Checker) => {
      c.onApply('n1', p1, 7);
      c.onAck(1, entryKey(p1));
    };
    expect(
      violationsOf((c) => {
        acked(c);
        c.checkAcknowledged([
          { id: 'n1', applied: 1 },
          { id: 'n2', applied: 3 },
        ]);
      }),
    ).toEqual([]);
    expect(
      violationsOf((c) => {
        acked(c);
        c.checkAcknowledged([
          { id: 'n1', applied: 1 },
          { id: 'n2', applied: 0 },
        ]);
      }),
    ).toEqual(['durability: acknowledged 0:p1 at 1 not applied on n2 (applied 0)']);
    expect(
      violationsOf((c) => {
        c.onApply('n1', entry(1, 2, 'other'), 7);
        c.onAck(1, entryKey(p1));
        c.checkAcknowledged([{ id: 'n1', applied: 1 }]);
      }),
    ).toEqual(['durability: acknowledged 0:p1 at 1, but 0:other was applied there']);
  });
});

/** One simulated single-voter node on the small in-memory disk, driven by its own event queue. */
function singleNode(): { node: SimNode; checker: Checker; queue: EventQueue } {
  const queue = new EventQueue();
  const rng = new Prng(1);
  const checker = new Checker();
  const schedule = (delayMs: number, run: () => void) => queue.schedule(delayMs, run);
  const disk = new MemDisk();
  const node = new SimNode('n1', () => createSimStorage(disk, { rng, schedule, syncDelayMs: [1, 2] }), {
    rng,
    checker,
    initialVoters: ['n1'],
    limits: { electionTimeoutTicks: 3, heartbeatIntervalTicks: 1 },
    snapshotEveryEntries: 1_000,
    snapshotFillerBytesMax: 0,
    send: () => {},
    trace: () => {},
    count: () => {},
  });
  return { node, checker, queue };
}

/** Ticks and runs events until `done`, within a bounded number of rounds. */
function runUntil(queue: EventQueue, node: SimNode, done: () => boolean): void {
  for (let round = 0; round < 200 && !done(); round++) {
    node.tick();
    while (queue.runNext()) {}
  }
  expect(done(), 'condition reached within 200 ticks').toBe(true);
}

describe('commit monotonicity (checked by the simulated driver)', () => {
  it('reports a running node whose commit index goes back, and not one that moves forward', () => {
    const { node, checker, queue } = singleNode();
    node.start();
    runUntil(queue, node, () => node.raft.status().role === 'leader');
    node.raft.propose(new TextEncoder().encode('x'));
    node.drive();
    runUntil(queue, node, () => node.raft.status().commit >= 2);
    expect(checker.violations).toEqual([]);

    const commit = node.raft.status().commit;
    const real = node.raft.status.bind(node.raft);
    node.raft.status = () => ({ ...real(), commit: commit - 1 });
    node.drive();
    expect(checker.violations).toEqual([
      `commit monotonicity: n1 commit went from ${commit} to ${commit - 1}`,
    ]);
  });
});

describe('liveness (checked by the simulation after healing)', () => {
  it('is reported when the bound is too short for any marker to commit, and met with the default', () => {
    const healthy = runSimulation({ seed: 3, steps: 300 });
    expect(healthy.violations).toEqual([]);
    const hurried = runSimulation({ seed: 3, steps: 300, livenessBoundMs: 0 });
    expect(hurried.violations).toHaveLength(1);
    expect(hurried.violations[0]).toMatch(/^liveness: no marker committed on every member within 0 ms/);
  });
});

/** The parts of RaftNode the broken commit rule needs (private in the class). */
interface CoreInternals {
  id: NodeId;
  term: number;
  conf: { voters: NodeId[] };
  progress: Map<NodeId, { match: number }>;
  log: { committed: number; persisted: number; commitTo(index: number): void };
  onLeaderCommit(previous: number): void;
}

/** maybeCommit without "only entries of the leader's own term" (§5.4.2): the Figure 8 bug. */
function commitByCountingReplicas(this: CoreInternals): void {
  const matchOf = (id: NodeId) => (id === this.id ? this.log.persisted : (this.progress.get(id)?.match ?? 0));
  const index = quorumMatchIndex(this.conf.voters, matchOf);
  if (index <= this.log.committed) return;
  const previous = this.log.committed;
  this.log.commitTo(index);
  this.onLeaderCommit(previous);
}

const SEEDS_TO_CATCH_MAX = 30;
const SAFETY_VIOLATION =
  /^(election safety|vote safety|log matching|leader completeness|commit stability|state machine safety|commit monotonicity|linearizable read|durability):/;

describe('a broken core is caught', () => {
  it(`commits of earlier-term entries by counting replicas are reported within ${SEEDS_TO_CATCH_MAX} seeds`, () => {
    const proto = RaftNode.prototype as unknown as { maybeCommit: (this: CoreInternals) => void };
    const original = proto.maybeCommit;
    expect(typeof original).toBe('function');
    let caught: { seed: number; violations: string[] } | null = null;
    try {
      proto.maybeCommit = commitByCountingReplicas;
      for (let seed = 1; seed <= SEEDS_TO_CATCH_MAX && caught === null; seed++) {
        const result = runSimulation({ seed, steps: 4000 });
        if (result.violations.length > 0) caught = { seed, violations: result.violations };
      }
    } finally {
      proto.maybeCommit = original;
    }
    expect(caught, 'a violation with the broken commit rule').not.toBeNull();
    // A safety property, not a crash or a stall. (Seed 6 shows it first: a ReadIndex answered below
    // an acknowledged write, because the read was released on a commit of an earlier term's entry.)
    expect(caught!.violations[0]).toMatch(SAFETY_VIOLATION);
    // The same seed with the real rule is clean: the report came from the broken rule.
    expect(runSimulation({ seed: caught!.seed, steps: 4000 }).violations).toEqual([]);
  });
});
