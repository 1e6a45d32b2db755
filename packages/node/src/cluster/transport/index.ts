/**
 * Public surface of the peer transport: authenticated WebSocket links carrying Raft messages.
 */
export { dialerProof, newNonce, sameProof, serverProof } from './auth.js';
export {
  decodePeerFrame,
  type EncodedFrame,
  encodeAuth,
  encodeEntryParts,
  encodeHello,
  encodeMessages,
  encodeWelcome,
  FrameKind,
  PEER_PROTOCOL_VERSION,
  type PeerFrame,
} from './codec.js';
export { DEFAULT_TRANSPORT_LIMITS, resolveTransportLimits, type TransportLimits } from './limits.js';
export { CloseCode, type OutboundState } from './outbound.js';
export {
  type PeerHandler,
  type PeerLinkStatus,
  PeerTransport,
  type PeerTransportOptions,
} from './transport.js';
