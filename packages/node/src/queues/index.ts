/**
 * The replicated queue state machine: what the Raft driver applies and the gateway reads.
 * See state-machine.ts for the semantics and commands.ts for the log entry encoding.
 */
export {
  CommandDecodeError,
  type DecodedBatch,
  decodeBatch,
  decodeCommand,
  encodeBatch,
  encodeCommand,
  Opcode,
} from './commands.js';
export * from './limits.js';
export { retryDelayMs } from './options.js';
export { Fnv1a64, type Hasher, QueueSnapshot, SnapshotFormatError, SnapshotLoader } from './snapshot.js';
export { QueueStateMachine } from './state-machine.js';
export type * from './types.js';
