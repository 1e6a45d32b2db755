/**
 * Membership: the byte encoding of a {@link ConfChange} inside a log entry, and the pure rules for
 * applying one to a {@link ConfState}.
 *
 * Membership takes effect when the entry is *appended* to a log (Raft thesis §4.1), not when it
 * commits: each node uses the newest configuration in its log, and reverts to the previous one if
 * that entry is truncated away. The leader keeps at most one change uncommitted and proposes none
 * until an entry of its own term has committed (the fix for single-server changes across leader
 * changes, thesis §4.1 and Ongaro's 2015 raft-dev erratum).
 */
import { type ConfChange, ConfChangeType, type ConfState, type NodeId } from './types.js';

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });
/** Longest node id in a membership entry (same bound as on the wire). */
const NODE_ID_BYTES_MAX = 1024;

/** Entry data for a change: one byte of change type, then the node id in UTF-8. */
export function encodeConfChange(change: ConfChange): Uint8Array {
  const id = utf8Encoder.encode(change.node);
  const out = new Uint8Array(1 + id.length);
  out[0] = change.type;
  out.set(id, 1);
  return out;
}

/** Inverse of {@link encodeConfChange}; null when the bytes are not a valid change. */
export function decodeConfChange(data: Uint8Array): ConfChange | null {
  const type = data[0];
  if (
    type !== ConfChangeType.AddLearner &&
    type !== ConfChangeType.PromoteLearner &&
    type !== ConfChangeType.RemoveNode
  ) {
    return null;
  }
  if (data.length < 2 || data.length > 1 + NODE_ID_BYTES_MAX) return null;
  try {
    return { type, node: utf8Decoder.decode(data.subarray(1)) };
  } catch {
    return null;
  }
}

/** Why a change does not fit `conf`, or null when it does. */
export function checkConfChange(conf: ConfState, change: ConfChange): string | null {
  const isVoter = conf.voters.includes(change.node);
  const isLearner = conf.learners.includes(change.node);
  switch (change.type) {
    case ConfChangeType.AddLearner:
      return isVoter || isLearner ? `${change.node} is already a member` : null;
    case ConfChangeType.PromoteLearner:
      return isLearner ? null : `${change.node} is not a learner`;
    case ConfChangeType.RemoveNode:
      if (!isVoter && !isLearner) return `${change.node} is not a member`;
      return isVoter && conf.voters.length === 1 ? 'cannot remove the last voter' : null;
  }
}

/**
 * The membership after `change`. Changes that do not fit leave it as it is (the leader checks each
 * change against the same log prefix before appending it, so a misfit never reaches a log).
 */
export function applyConfChange(conf: ConfState, change: ConfChange): ConfState {
  if (checkConfChange(conf, change) !== null) return conf;
  const without = (list: NodeId[]) => list.filter((id) => id !== change.node);
  switch (change.type) {
    case ConfChangeType.AddLearner:
      return { voters: conf.voters, learners: [...conf.learners, change.node] };
    case ConfChangeType.PromoteLearner:
      return { voters: [...conf.voters, change.node], learners: without(conf.learners) };
    case ConfChangeType.RemoveNode:
      return { voters: without(conf.voters), learners: without(conf.learners) };
  }
}

export function describeConfChange(change: ConfChange): string {
  const verb = ['add-learner', 'promote', 'remove'][change.type];
  return `${verb} ${change.node}`;
}

export function copyConfState(conf: ConfState): ConfState {
  return { voters: [...conf.voters], learners: [...conf.learners] };
}
