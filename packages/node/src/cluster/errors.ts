/**
 * Errors of the replicated log's operations (reads, leadership transfer, membership changes), as
 * the shared `FlotillaError` so the gateway and the HTTP API pass them on unchanged. The code says
 * what a caller may do (NOT_LEADER: go to `details.leaderId`; UNAVAILABLE: retry, nothing happened;
 * TIMEOUT: outcome unknown); `details.reason` names the cluster-level cause.
 */
import { FlotillaError } from '@flotilla/shared';
import { type NodeId, Refusal } from '../raft/index.js';

export interface LeaderHint {
  leaderId: NodeId | null;
  /** The leader's peer address (`host:port`); the gateway maps it to a client URL. */
  leaderAddress: string | null;
}

export function notLeader(what: string, hint: LeaderHint): FlotillaError {
  return new FlotillaError('NOT_LEADER', `${what}: this node is not the leader`, {
    reason: Refusal.NotLeader,
    leaderId: hint.leaderId,
    leaderUrl: null,
    leaderAddress: hint.leaderAddress,
  });
}

/** Maps a refusal of the Raft core onto an error code with a retry meaning. */
export function refused(what: string, reason: Refusal, hint: LeaderHint): FlotillaError {
  switch (reason) {
    case Refusal.NotLeader:
      return notLeader(what, hint);
    case Refusal.Overloaded:
      return new FlotillaError('OVERLOADED', `${what}: too much pending; retry later`, { reason });
    case Refusal.InvalidChange:
    case Refusal.NotAVoter:
    case Refusal.TooLarge:
      return new FlotillaError('INVALID_ARGUMENT', `${what}: refused (${reason})`, { reason });
    case Refusal.Transferring:
    case Refusal.ChangePending:
    case Refusal.LearnerBehind:
      return new FlotillaError('UNAVAILABLE', `${what}: not now (${reason}); retry`, { reason });
  }
}

export function unavailable(what: string, reason: string): FlotillaError {
  return new FlotillaError('UNAVAILABLE', `${what}: ${reason}`, { reason });
}

/** The outcome is unknown: the change may still commit. */
export function outcomeUnknown(what: string, reason: string): FlotillaError {
  return new FlotillaError('TIMEOUT', `${what}: ${reason}; it may still take effect`, { reason });
}

export function invalidArgument(field: string, message: string): FlotillaError {
  return new FlotillaError('INVALID_ARGUMENT', `${field}: ${message}`, { field });
}
