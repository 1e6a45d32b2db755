/**
 * Majority arithmetic over a set of voters (Raft §5.2, §5.3). Pure functions; learners never
 * appear here. Membership changes add or remove one voter at a time, so any two majorities of
 * consecutive configurations overlap (thesis §4.1) and one configuration at a time is enough.
 */
import type { NodeId } from './types.js';

export function quorumSize(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The largest index that a majority of voters has reached: the quorum-th largest match index.
 * With no voters nothing can be committed, so the answer is 0.
 */
export function quorumMatchIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => number): number {
  if (voters.length === 0) return 0;
  const matches = voters.map(matchOf).sort((a, b) => b - a);
  return matches[quorumSize(voters.length) - 1]!;
}

export type VoteOutcome = 'won' | 'lost' | 'pending';

/** Tally of an election: `votes` maps a voter to true (granted) or false (rejected). Non-voters are ignored. */
export function voteOutcome(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteOutcome {
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === true) granted++;
    else if (vote === false) rejected++;
  }
  const needed = quorumSize(voters.length);
  if (granted >= needed) return 'won';
  if (voters.length - rejected < needed) return 'lost';
  return 'pending';
}

/** True when a majority of voters satisfy `predicate`. */
export function isQuorum(voters: readonly NodeId[], predicate: (id: NodeId) => boolean): boolean {
  let count = 0;
  for (const id of voters) if (predicate(id)) count++;
  return voters.length > 0 && count >= quorumSize(voters.length);
}
