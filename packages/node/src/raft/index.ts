/**
 * Public surface of the Raft core: the node, its inputs and outputs, and the membership codec.
 * Everything else in this folder is internal.
 */

export { decodeConfChange, describeConfChange, encodeConfChange } from './conf-change.js';
export { DEFAULT_LIMITS, type RaftConfig, type RaftLimits, type RaftLogger } from './config.js';
export { RaftInvariantError, Refusal } from './errors.js';
export {
  type AppendMessage,
  type AppendResponse,
  describeMessage,
  type HeartbeatMessage,
  type HeartbeatResponse,
  type Message,
  type MessageType,
  type SnapshotMessage,
  type SnapshotResponse,
  type TimeoutNowMessage,
  type VoteRequest,
  type VoteResponse,
  validateMessage,
} from './messages.js';
export {
  type AcceptResult,
  type LogView,
  type PeerStatus,
  type ProposeResult,
  RaftNode,
  type RaftStatus,
  type StepResult,
} from './node.js';
export type { ReplicationState } from './progress.js';
export type { ReadState, Ready, Role, SnapshotChunkToPersist, SoftState } from './ready.js';
export { isReadyEmpty } from './ready.js';
export * from './types.js';
