/**
 * Readiness as load balancers and Kubernetes see it: a node is ready when it runs, knows a leader
 * and has applied nearly everything the leader has committed — judged by the leader's commit index
 * as the node last heard it, not only by the node's own (small, when it is far behind).
 */
import { describe, expect, it } from 'vitest';
import type { QueueRuntime } from '../broker/index.js';
import type { NodeStatus, RaftDriver } from '../cluster/index.js';
import type { NodeMetrics } from '../metrics/metrics.js';
import type { RaftStatus } from '../raft/index.js';
import { NodeHttpApi } from './node-api.js';

interface View {
  leaderId: string | null;
  commitIndex: number;
  appliedIndex: number;
  leaderCommit: number;
}

function apiFor(view: View, healthy = true): NodeHttpApi {
  const driver = {
    nodeId: 'n2',
    status: (): Partial<NodeStatus> => ({
      leaderId: view.leaderId,
      commitIndex: view.commitIndex,
      appliedIndex: view.appliedIndex,
    }),
    raftStatus: (): Partial<RaftStatus> => ({ leaderCommit: view.leaderCommit }),
  } as unknown as RaftDriver;
  return new NodeHttpApi(driver, {} as QueueRuntime, {} as NodeMetrics, () =>
    healthy ? { ok: true } : { ok: false, reason: 'stopping' },
  );
}

describe('NodeHttpApi.ready', () => {
  it('is ready when a leader is known and applied is within a few entries of the leader’s commit', () => {
    expect(
      apiFor({ leaderId: 'n1', commitIndex: 500, appliedIndex: 498, leaderCommit: 520 }).ready(),
    ).toEqual({
      ready: true,
    });
  });

  it('is not ready while far behind the leader’s commit index, though level with its own', () => {
    const behind = apiFor({ leaderId: 'n1', commitIndex: 100, appliedIndex: 100, leaderCommit: 5_000 });
    expect(behind.ready()).toEqual({
      ready: false,
      reason: 'catching up: 4900 committed entries behind the leader',
    });
  });

  it('is not ready while applying what it knows is committed', () => {
    const applying = apiFor({ leaderId: 'n1', commitIndex: 1_000, appliedIndex: 10, leaderCommit: 0 });
    expect(applying.ready()).toMatchObject({ ready: false });
  });

  it('is not ready without a leader or when not running', () => {
    expect(apiFor({ leaderId: null, commitIndex: 5, appliedIndex: 5, leaderCommit: 5 }).ready()).toEqual({
      ready: false,
      reason: 'no leader known',
    });
    expect(
      apiFor({ leaderId: 'n1', commitIndex: 5, appliedIndex: 5, leaderCommit: 5 }, false).ready(),
    ).toEqual({
      ready: false,
      reason: 'not running',
    });
  });
});
