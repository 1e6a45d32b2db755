/**
 * Child process for the SIGKILL crash test (`crash.test.ts`): recovers the log in a directory,
 * then appends batches forever (with occasional conflict truncations under a new term, and
 * snapshots followed by compaction) and reports on stdout, one line per event:
 *   `READY <lastIndex>`                  recovered, about to write
 *   `W <first> <count> <term>`           about to queue this batch
 *   `A <first> <count> <term>`           that batch is durable (acknowledged)
 *   `S <index> <term>`                   a snapshot at index is durable
 * Lines go out synchronously (stdout is a pipe), so a line the parent reads was written before
 * the event it announces could have happened. Usage: `node crash-child.js <dir> <seed>`.
 */
import type { Entry } from '../raft/types.js';
import { FileStorage } from './file-storage.js';
import { NodeDisk } from './node-disk.js';
import { makeEntry, snapshotBody, snapshotMeta } from './test-kit.js';
import { seededRandom } from './virtual-clock.js';

const OUTSTANDING_BATCHES = 8;
const SNAPSHOT_EVERY_ENTRIES = 400;

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function main(): void {
  const [dir, seedArg] = process.argv.slice(2);
  if (!dir || !seedArg) throw new Error('usage: crash-child <dir> <seed>');
  const random = seededRandom(Number(seedArg));
  const storage = new FileStorage({ disk: new NodeDisk(dir), segmentSizeBytes: 256 * 1024 });
  const recovered = storage.recover();
  /** Term of every issued entry after `base`. */
  let base = recovered.snapshot?.index ?? 0;
  const terms: number[] = recovered.entries.map((e) => e.term);
  if (recovered.entries.length > 0) base = recovered.entries[0]!.index - 1;
  let floor = recovered.snapshot?.index ?? 0;
  let term = recovered.hardState.term + 1;
  /** First index of each queued batch, oldest first (acknowledged in this order). */
  const pendingFirsts: number[] = [];
  let ackedLast = storage.lastIndex;
  let snapshotAt = floor;
  storage.write({ hardState: { term, vote: 'n1', commit: 0 } }, fatalOnError);
  say(`READY ${storage.lastIndex}`);

  const issue = (): void => {
    const last = base + terms.length;
    const conflict = random() < 0.05 && last > floor;
    const back = conflict ? 1 + Math.floor(random() * Math.min(5, last - floor)) : 0;
    if (conflict) term++;
    const first = last + 1 - back;
    const count = 1 + Math.floor(random() * 20);
    const entries: Entry[] = [];
    for (let i = 0; i < count; i++) entries.push(makeEntry(first + i, term, Math.floor(random() * 2000)));
    terms.length = first - base - 1;
    for (let i = 0; i < count; i++) terms.push(term);
    say(`W ${first} ${count} ${term}`);
    pendingFirsts.push(first);
    const batchTerm = term;
    storage.write({ entries, hardState: conflict ? { term, vote: 'n1', commit: 0 } : undefined }, (err) => {
      fatalOnError(err);
      say(`A ${first} ${count} ${batchTerm}`);
      pendingFirsts.shift();
      ackedLast = first + count - 1;
      // Like Raft, snapshot only what no queued conflict can still replace.
      const settled = pendingFirsts.every((f) => f > ackedLast);
      if (settled && ackedLast - snapshotAt >= SNAPSHOT_EVERY_ENTRIES && ackedLast > floor)
        snapshot(ackedLast);
      fill();
    });
  };

  const snapshot = (index: number): void => {
    const snapTerm = terms[index - base - 1]!;
    snapshotAt = index;
    floor = Math.max(floor, index);
    const writer = storage.createSnapshot(snapshotMeta(index, snapTerm));
    writer.write(snapshotBody(index, snapTerm, 50_000));
    writer.commit((err) => {
      fatalOnError(err);
      say(`S ${index} ${snapTerm}`);
      storage.compact(index);
    });
  };

  const fill = (): void => {
    while (pendingFirsts.length < OUTSTANDING_BATCHES) issue();
  };
  fill();
}

function fatalOnError(err: Error | null): void {
  if (!err) return;
  process.stderr.write(`storage failed: ${err.stack ?? err.message}\n`);
  process.exit(2);
}

main();
