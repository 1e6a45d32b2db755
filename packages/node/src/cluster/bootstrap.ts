/**
 * Bootstrapping a new cluster so that members added later learn its membership.
 *
 * Every initial member (started without `--join`), on its first start with empty storage, writes
 * the same snapshot: index 1, term 1, membership `{voters: <--peers ids, sorted>, learners: []}`,
 * holding the driver's preamble (the `--peers` address book) and the application's empty state,
 * then hard state term 1. The log therefore starts after index 1 on every initial member, so:
 *
 * - A node that joins later (empty storage, `--join`, no idea of the initial voters) can never be
 *   caught up by AppendEntries from index 1 (index 1 is in no log); the leader sends it a snapshot,
 *   whose meta carries the membership and whose preamble the addresses.
 * - Safety: the snapshot stands for a committed entry 1 of term 1 that every initial member holds,
 *   identical everywhere (same ids, same addresses, same empty application state). No node can vote
 *   or lead in term 1 (everyone starts at term 1 and the first election is for term 2), so no
 *   different entry 1 can ever be committed, and Log Matching holds from index 1 on. A crash
 *   before the snapshot is durable leaves empty storage and the bootstrap simply runs again; a
 *   crash after it but before the hard state leaves term 0 below a term-1 snapshot, which the core
 *   resolves by adopting the snapshot's term.
 * - A member whose data directory is wiped and that restarts without `--join` bootstraps again: as
 *   with any Raft node losing its disk, it may then vote twice in a term it forgot. Operators must
 *   re-add such a node as a new member instead (the same caveat as every Raft system).
 */
import type { NodeId, SnapshotMeta } from '../raft/index.js';
import type { RaftStorage, RecoveredState } from '../storage/index.js';
import { encodeSnapshotPreamble } from './snapshot-format.js';
import type { ReplicatedStateMachine } from './types.js';

export const BOOTSTRAP_INDEX = 1;
export const BOOTSTRAP_TERM = 1;

export class BootstrapError extends Error {
  override readonly name = 'BootstrapError';
}

export interface Bootstrapped {
  recovered: RecoveredState;
  snapshotSizeBytes: number;
}

/** True when `recovered` is an empty storage; throws when it holds a hard state but nothing else. */
export function isEmptyStorage(recovered: RecoveredState): boolean {
  if (recovered.snapshot !== null || recovered.entries.length > 0) return false;
  const { term, vote } = recovered.hardState;
  if (term > 0 || vote !== null) {
    throw new BootstrapError(
      `storage holds hard state term ${term} (vote ${String(vote)}) but no snapshot or log: refusing to bootstrap over it`,
    );
  }
  return true;
}

/**
 * Writes the bootstrap snapshot and hard state into empty `storage`, and returns what a later
 * `recover()` would return. `app` must be freshly built (its snapshot is the empty state).
 */
export async function bootstrap(
  storage: RaftStorage,
  peers: ReadonlyMap<NodeId, string>,
  app: ReplicatedStateMachine,
): Promise<Bootstrapped> {
  if (peers.size === 0) throw new BootstrapError('cannot bootstrap a cluster without voters');
  const voters = [...peers.keys()].sort();
  const meta: SnapshotMeta = { index: BOOTSTRAP_INDEX, term: BOOTSTRAP_TERM, conf: { voters, learners: [] } };
  // resetLog: the (empty) log continues at index 2, as after an installed snapshot.
  const writer = storage.createSnapshot(meta, { resetLog: true });
  const preamble = encodeSnapshotPreamble(peers);
  writer.write(preamble);
  let sizeBytes = preamble.length;
  const source = app.snapshot();
  for (let chunk = source.next(); chunk !== null; chunk = source.next()) {
    writer.write(chunk);
    sizeBytes += chunk.length;
  }
  await new Promise<void>((resolve, reject) =>
    writer.commit((err) => (err === null ? resolve() : reject(err))),
  );
  const hardState = { term: BOOTSTRAP_TERM, vote: null, commit: BOOTSTRAP_INDEX };
  await new Promise<void>((resolve, reject) =>
    storage.write({ hardState }, (err) => (err === null ? resolve() : reject(err))),
  );
  return { recovered: { hardState, snapshot: meta, entries: [] }, snapshotSizeBytes: sizeBytes };
}
