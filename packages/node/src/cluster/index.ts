/**
 * Public surface of the cluster layer: the Raft driver (the `ReplicatedLog` the application runs
 * on), the peer transport it talks through, and the contract types. See README.md for wiring.
 */
export type { SnapshotEvent } from './app-runner.js';
export { BOOTSTRAP_INDEX, BOOTSTRAP_TERM, BootstrapError } from './bootstrap.js';
export { type DriverObserver, RaftDriver, type RaftDriverOptions, type StopOptions } from './driver.js';
export type { LeaderHint } from './errors.js';
export {
  CloseCode,
  DEFAULT_TRANSPORT_LIMITS,
  type PeerHandler,
  type PeerLinkStatus,
  PeerTransport,
  type PeerTransportOptions,
  type TransportLimits,
} from './transport/index.js';
export type {
  AppliedEntry,
  MemberStatus,
  NodeStatus,
  ReplicatedLog,
  ReplicatedStateMachine,
  Role,
  SnapshotSource,
} from './types.js';
