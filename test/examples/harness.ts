/**
 * Shared pieces of the example tests: a real 3-node cluster per test file, clients that are closed
 * whatever happens, a record of connection faults (the only times at-least-once delivery may
 * legitimately hand a message out twice), and a seeded random source for predictable flakiness.
 */

import { type ConnectOptions, connect, type FlotillaClient } from '@flotilla/client';
import { TestCluster } from '../support/cluster.js';
import { WaitTimeoutError } from '../support/wait.js';

/** Undo actions run in reverse order, each even if an earlier one failed. */
export class Cleanup {
  private readonly actions: Array<() => unknown> = [];

  add(action: () => unknown): void {
    this.actions.push(action);
  }

  async run(): Promise<void> {
    const errors: unknown[] = [];
    while (this.actions.length > 0) {
      try {
        await this.actions.pop()!();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, `${errors.length} cleanup actions failed`);
  }
}

/**
 * Starts a 3-node cluster and waits for its leader. One more try if the first start misses its
 * health deadline: on a CPU-starved shared machine, loading three node processes at once can take
 * longer than the support code's 15 s, and that says nothing about the examples under test.
 */
export async function startCluster(): Promise<TestCluster> {
  const cluster = await TestCluster.start().catch((error: unknown) => {
    if (!(error instanceof WaitTimeoutError)) throw error;
    return TestCluster.start();
  });
  try {
    await cluster.waitForLeader();
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

/** Connection faults a client saw since it was created: disconnections and leader changes. */
export interface FaultLog {
  readonly events: string[];
}

/** A client for `cluster`, closed by `cleanup` (without draining, so a failed test cannot hang on it). */
export async function clientFor(
  cluster: TestCluster,
  cleanup: Cleanup,
  options: Partial<ConnectOptions> = {},
): Promise<{ client: FlotillaClient; faults: FaultLog }> {
  const client = await connect({ servers: cluster.urls(), ...options });
  cleanup.add(() => client.close({ drain: false }));
  const faults: FaultLog = { events: [] };
  client.on('disconnected', ({ nodeId, error }) =>
    faults.events.push(`disconnected from ${nodeId}: ${error.code}`),
  );
  client.on('leaderChanged', ({ leaderId, previousLeaderId }) => {
    if (previousLeaderId !== null) faults.events.push(`leader ${previousLeaderId} -> ${leaderId}`);
  });
  return { client, faults };
}

/** A seeded pseudo-random source (a 32-bit linear congruential generator): same seed, same sequence. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 4_294_967_296;
  };
}
