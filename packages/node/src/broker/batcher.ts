/**
 * The proposal batcher: commands submitted during one event-loop turn, from every session, leave
 * as one log entry (`encodeBatch(now, commands)`), cut into several entries when they pass the
 * entry caps so that more than one entry is in flight. Each command keeps a slot (owner, token,
 * command) in per-entry arrays; when the entry comes back applied at the index and term it was
 * proposed with, slot i gets reply i. No promise, timer or closure is made per command.
 *
 * Outcomes when things go wrong:
 * - the log refuses the proposal: not leader or a transfer in progress, NOT_LEADER (naming the
 *   leader or the transfer's target); too much uncommitted, OVERLOADED (retry here with backoff);
 *   nothing applied either way;
 * - an entry would be larger than the log accepts (`maxEntryBytes`): it is cut in halves, and a
 *   single command that alone is too large is refused with FRAME_TOO_LARGE; the log never sees an
 *   entry it would refuse as too large (if it does, an invariant broke and the node stops);
 * - a different entry shows up at the proposed index (a new leader overwrote it) or the index is
 *   passed over: the proposal was lost, UNAVAILABLE (retryable, nothing applied);
 * - this node stops being leader with proposals in flight: TIMEOUT (outcome unknown: the next
 *   leader may still commit them), so clients retry only idempotent requests.
 */
import { FlotillaError, MsgpackWriter } from '@flotilla/shared';
import type { ProposeOutcome, ReplicatedLog } from '../cluster/types.js';
import { type Command, encodeBatch, type Reply } from '../queues/index.js';
import type { Clock } from '../runtime/timer-wheel.js';
import type { CommandOwner, RuntimeLimits } from './types.js';

/** A refusal of the log. */
export type ProposeRefused = Extract<ProposeOutcome, { ok: false }>;

/** Commands gathered for one entry, in submission order. */
class Batch {
  readonly owners: CommandOwner[] = [];
  readonly tokens: number[] = [];
  readonly commands: Command[] = [];
  readonly sizes: number[] = [];
  bytes = 0;

  add(command: Command, owner: CommandOwner, token: number, sizeBytes: number): void {
    this.owners.push(owner);
    this.tokens.push(token);
    this.commands.push(command);
    this.sizes.push(sizeBytes);
    this.bytes += sizeBytes;
  }

  /** The first and second half, in order (the batch must hold at least two commands). */
  halves(): [Batch, Batch] {
    const middle = Math.ceil(this.size / 2);
    const first = new Batch();
    const second = new Batch();
    for (let i = 0; i < this.size; i++) {
      (i < middle ? first : second).add(this.commands[i]!, this.owners[i]!, this.tokens[i]!, this.sizes[i]!);
    }
    return [first, second];
  }

  get size(): number {
    return this.commands.length;
  }

  failAll(error: FlotillaError): void {
    for (let i = 0; i < this.owners.length; i++) this.owners[i]!.commandFailed(this.tokens[i]!, error);
  }
}

/** A batch proposed to the log, waiting to be applied at (index, term). */
interface InFlightEntry {
  index: number;
  term: number;
  batch: Batch;
  proposedAtMs: number;
}

export interface BatcherHooks {
  /** Asks for `flush` to run once at the end of the current turn. */
  scheduleFlush(): void;
  /** Commands carried by each proposed entry (for the batching histogram). */
  proposed?(commands: number): void;
  /** Time from proposal to apply of one of our entries, in seconds. */
  committed?(seconds: number): void;
  /** Error for commands the log refused (not leader, transferring, overloaded): what their owners hear. */
  refusedError(refusal: ProposeRefused): FlotillaError;
}

export class ProposalBatcher {
  private open = new Batch();
  private readonly sealed: Batch[] = [];
  /** In index order; applied entries resolve from the front. */
  private readonly inFlight: InFlightEntry[] = [];
  private inFlightHead = 0;
  private pendingBytes = 0;
  private readonly writer = new MsgpackWriter(64 * 1024);

  constructor(
    private readonly log: Pick<ReplicatedLog, 'tryPropose' | 'maxEntryBytes'>,
    private readonly clock: Clock,
    private readonly limits: RuntimeLimits,
    private readonly hooks: BatcherHooks,
  ) {}

  /** Bytes of commands submitted and not yet applied or failed. */
  get pendingCommandBytes(): number {
    return this.pendingBytes;
  }

  /** Entries proposed and not yet applied. */
  get inFlightEntries(): number {
    return this.inFlight.length - this.inFlightHead;
  }

  /** Commands waiting for the end of the turn. */
  get queuedCommands(): number {
    let n = this.open.size;
    for (const batch of this.sealed) n += batch.size;
    return n;
  }

  /** True when a command of `sizeBytes` would push the pending bytes past the limit (then answer OVERLOADED). */
  wouldOverload(sizeBytes: number): boolean {
    return this.pendingBytes > 0 && this.pendingBytes + sizeBytes > this.limits.maxPendingBytes;
  }

  /** Queues a command for the entry of this turn. The owner hears back exactly once. */
  submit(command: Command, owner: CommandOwner, token: number, sizeBytes: number): void {
    const open = this.open;
    if (
      open.size > 0 &&
      (open.size >= this.limits.maxEntryCommands || open.bytes + sizeBytes > this.limits.maxEntryBytes)
    ) {
      this.sealed.push(open);
      this.open = new Batch();
    }
    if (this.sealed.length === 0 && this.open.size === 0) this.hooks.scheduleFlush();
    this.open.add(command, owner, token, sizeBytes);
    this.pendingBytes += sizeBytes;
  }

  /** Encodes and proposes every batch gathered this turn, in order. */
  flush(): void {
    if (this.open.size > 0) {
      this.sealed.push(this.open);
      this.open = new Batch();
    }
    for (let i = 0; i < this.sealed.length; i++) this.propose(this.sealed[i]!);
    this.sealed.length = 0;
  }

  private propose(batch: Batch): void {
    const nowMs = this.clock.now();
    const data = encodeBatch(nowMs, batch.commands, this.writer);
    const maxEntryBytes = this.log.maxEntryBytes;
    if (data.length > maxEntryBytes) {
      this.proposeOversized(batch, data.length, maxEntryBytes);
      return;
    }
    const at = this.log.tryPropose(data);
    if (!at.ok) {
      if (at.reason === 'too-large') {
        throw new Error(
          `the log refused an entry of ${data.length} bytes as too large although its limit is ${maxEntryBytes} bytes`,
        );
      }
      this.pendingBytes -= batch.bytes;
      batch.failAll(this.hooks.refusedError(at));
      return;
    }
    const last = this.inFlight[this.inFlight.length - 1];
    if (last !== undefined && last.index >= at.index && this.inFlightEntries > 0) {
      throw new Error(`proposal index went backwards: ${at.index} after ${last.index}`);
    }
    this.inFlight.push({ index: at.index, term: at.term, batch, proposedAtMs: nowMs });
    this.hooks.proposed?.(batch.size);
  }

  /**
   * A batch whose entry would be larger than the log accepts: its halves are proposed one after
   * the other (in order), and a single command too large on its own is refused, nothing applied.
   */
  private proposeOversized(batch: Batch, entryBytes: number, maxEntryBytes: number): void {
    if (batch.size > 1) {
      const [first, second] = batch.halves();
      this.propose(first);
      this.propose(second);
      return;
    }
    this.pendingBytes -= batch.bytes;
    const op = batch.commands[0]!.op;
    batch.failAll(
      new FlotillaError(
        'FRAME_TOO_LARGE',
        `this ${op} takes ${entryBytes} bytes in the log, more than one entry holds (${maxEntryBytes}); send fewer or smaller messages per request`,
        { entryBytes, maxEntryBytes },
      ),
    );
  }

  /**
   * Called for every applied entry, in log order, after the state machine applied it. Fails our
   * entries that were passed over, and hands back our batch at this (index, term) if there is one,
   * for the caller to route `replies[i]` to slot i.
   */
  resolve(index: number, term: number): Batch | null {
    for (let entry = this.peek(); entry !== undefined && entry.index <= index; entry = this.peek()) {
      this.shift();
      this.pendingBytes -= entry.batch.bytes;
      if (entry.index === index && entry.term === term) {
        this.hooks.committed?.((this.clock.now() - entry.proposedAtMs) / 1000);
        return entry.batch;
      }
      entry.batch.failAll(lostError(entry.index, entry.term, term));
    }
    return null;
  }

  /** Routes the replies of an applied batch to its owners. */
  static deliverReplies(batch: Batch, replies: readonly Reply[]): void {
    if (replies.length !== batch.size) {
      throw new Error(
        `entry carried ${batch.size} commands but the state machine gave ${replies.length} replies`,
      );
    }
    for (let i = 0; i < batch.size; i++) {
      batch.owners[i]!.commandApplied(batch.tokens[i]!, batch.commands[i]!, replies[i]!);
    }
  }

  /** Every proposal in flight gets `inFlightError` (usually TIMEOUT); queued ones get `queuedError`. */
  failAll(inFlightError: FlotillaError, queuedError: FlotillaError): void {
    const queued = this.sealed.splice(0);
    if (this.open.size > 0) queued.push(this.open);
    this.open = new Batch();
    const inFlight = this.inFlight.splice(0).slice(this.inFlightHead);
    this.inFlightHead = 0;
    this.pendingBytes = 0;
    for (const entry of inFlight) entry.batch.failAll(inFlightError);
    for (const batch of queued) batch.failAll(queuedError);
  }

  private peek(): InFlightEntry | undefined {
    return this.inFlight[this.inFlightHead];
  }

  private shift(): void {
    this.inFlight[this.inFlightHead++] = undefined as unknown as InFlightEntry;
    if (this.inFlightHead > 1024 && this.inFlightHead * 2 > this.inFlight.length) {
      this.inFlight.splice(0, this.inFlightHead);
      this.inFlightHead = 0;
    }
  }
}

export type { Batch };

function lostError(index: number, term: number, appliedTerm: number): FlotillaError {
  return new FlotillaError(
    'UNAVAILABLE',
    `proposal at index ${index} (term ${term}) was replaced by a later leader (term ${appliedTerm}); it was not applied`,
    { index, term },
  );
}
