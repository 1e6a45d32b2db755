/**
 * Failure vocabulary of the Raft core.
 *
 * Two kinds, kept apart on purpose: a *refusal* is an ordinary answer to a caller (not the leader,
 * a transfer is in progress, too much is uncommitted) and is returned as data; a *broken invariant*
 * means the core's own state is wrong, so it throws and the node must stop (its durable state is
 * the truth and a restart is safe).
 */

/** Why a proposal, membership change, transfer or read was not accepted. Stable codes. */
export const Refusal = {
  /** This node is not the leader (or the leader is stepping down); retry at `leader`. */
  NotLeader: 'not-leader',
  /** A leadership transfer is in progress; retry after it completes or aborts. */
  Transferring: 'transferring',
  /** Too many bytes proposed but not yet committed, or too many reads pending; back off. */
  Overloaded: 'overloaded',
  /** The proposal is larger than `maxEntryBytes`. */
  TooLarge: 'too-large',
  /** A membership change is still uncommitted, or no entry of this term is committed yet. */
  ChangePending: 'change-pending',
  /** The membership change does not fit the current membership (e.g. promoting a non-learner). */
  InvalidChange: 'invalid-change',
  /** A leadership transfer target that is not a voter. */
  NotAVoter: 'not-a-voter',
  /** The learner to promote is too far behind the leader's log. */
  LearnerBehind: 'learner-behind',
} as const;
export type Refusal = (typeof Refusal)[keyof typeof Refusal];

/** Thrown when an internal invariant does not hold. The node must stop; restarting from disk is safe. */
export class RaftInvariantError extends Error {
  override readonly name = 'RaftInvariantError';
  readonly code = 'RAFT_INVARIANT';
}

/** Throws {@link RaftInvariantError}. Callers build the message with the offending values. */
export function invariantFailed(message: string): never {
  throw new RaftInvariantError(message);
}
