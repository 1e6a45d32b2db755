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
import { invariantFailed } from './errors.js';
import { type ConfChange, ConfChangeType, type ConfState, type NodeId } from './types.js';

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });
/** Longest node id in a membership entry (same bound as on the wire). */
const NODE_ID_BYTES_MAX = 1024;
/** Longest peer address in a membership entry (a host name is at most 253 bytes, plus the port). */
const ADDRESS_BYTES_MAX = 1024;
/** Separates the node id from the address; a node id never contains it. */
const ADDRESS_SEPARATOR = 0;

/**
 * Entry data for a change: one byte of change type, the node id in UTF-8, and, when the change
 * carries an address, a zero byte and the address in UTF-8. Entries written before addresses
 * existed (type and id only) decode as they always did.
 */
export function encodeConfChange(change: ConfChange): Uint8Array {
  const id = utf8Encoder.encode(change.node);
  if (id.includes(ADDRESS_SEPARATOR)) invariantFailed(`node id ${JSON.stringify(change.node)} contains NUL`);
  const address = change.address === undefined ? null : utf8Encoder.encode(change.address);
  const out = new Uint8Array(1 + id.length + (address === null ? 0 : 1 + address.length));
  out[0] = change.type;
  out.set(id, 1);
  if (address !== null) {
    out[1 + id.length] = ADDRESS_SEPARATOR;
    out.set(address, 2 + id.length);
  }
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
  const separator = data.indexOf(ADDRESS_SEPARATOR, 1);
  const idEnd = separator === -1 ? data.length : separator;
  if (idEnd < 2 || idEnd > 1 + NODE_ID_BYTES_MAX) return null;
  if (
    separator !== -1 &&
    (data.length - separator - 1 < 1 || data.length - separator - 1 > ADDRESS_BYTES_MAX)
  )
    return null;
  try {
    const node = utf8Decoder.decode(data.subarray(1, idEnd));
    if (separator === -1) return { type, node };
    return { type, node, address: utf8Decoder.decode(data.subarray(separator + 1)) };
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
  return change.address === undefined ? `${verb} ${change.node}` : `${verb} ${change.node}@${change.address}`;
}

export function copyConfState(conf: ConfState): ConfState {
  return { voters: [...conf.voters], learners: [...conf.learners] };
}
