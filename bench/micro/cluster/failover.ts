/**
 * Kill → new leader, in process: a 3-node cluster with production timing (tick 50 ms, election
 * timeout 1 s, heartbeat 100 ms) commits a little, then its leader is killed abruptly (links
 * dropped, port closed, like a dead process). Measures the time until a survivor is leader and
 * until that leader has committed a new entry; then restarts the dead node and repeats.
 *
 *   npx tsx bench/micro/cluster/failover.ts [--trials 10] [--no-fast-failover]
 */
import { parseArgs } from 'node:util';
import { BenchCluster } from './bench-cluster.js';

const { values } = parseArgs({
  options: {
    trials: { type: 'string', default: '10' },
    'no-fast-failover': { type: 'boolean', default: false },
  },
});
const trials = Number(values.trials);
const cluster = new BenchCluster({
  size: 3,
  timing: { tickMs: 50, electionTimeoutMs: 1000, heartbeatMs: 100 },
  fastFailover: !values['no-fast-failover'],
});
await cluster.start();

const toLeaderMs: number[] = [];
const toCommitMs: number[] = [];
const payload = new Uint8Array(1024);

async function commitOne(): Promise<void> {
  for (;;) {
    const leader = await cluster.waitForLeader();
    const at = leader.driver.propose(payload);
    if (at !== null) {
      while (leader.alive && leader.driver.status().appliedIndex < at.index) await sleep(1);
      if (leader.alive) return;
    }
    await sleep(1);
  }
}

for (let trial = 0; trial < trials; trial++) {
  await commitOne();
  await sleep(300 + Math.random() * 500); // kill at a random point of the heartbeat cycle
  const old = await cluster.waitForLeader();
  const killedAt = performance.now();
  await cluster.kill(old.id);
  const next = await cluster.waitForLeader();
  toLeaderMs.push(performance.now() - killedAt);
  await commitOne();
  toCommitMs.push(performance.now() - killedAt);
  console.log(
    `trial ${trial + 1}: ${old.id} killed, ${next.id} leads after ${toLeaderMs.at(-1)!.toFixed(0)} ms, commits after ${toCommitMs.at(-1)!.toFixed(0)} ms`,
  );
  await cluster.startNode(old.id);
  await sleep(500);
}

const stats = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return {
    min: Math.round(sorted[0]!),
    median: Math.round(sorted[Math.floor(sorted.length / 2)]!),
    max: Math.round(sorted.at(-1)!),
  };
};
console.log(
  JSON.stringify({
    fastFailover: !values['no-fast-failover'],
    trials,
    newLeaderMs: stats(toLeaderMs),
    firstCommitMs: stats(toCommitMs),
  }),
);
await cluster.close();

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
