/**
 * Mutual challenge–response authentication of peer links with the cluster secret. The secret never
 * crosses the wire; each side proves it knows it by an HMAC-SHA256 over the other side's fresh
 * random nonce:
 *
 *   server → dialer  HELLO   serverId, serverNonce
 *   dialer → server  AUTH    dialerId, dialerAddress, dialerNonce,
 *                            HMAC(secret, ["dialer", serverNonce, dialerId, serverId, dialerAddress])
 *   server → dialer  WELCOME HMAC(secret, ["server", dialerNonce, serverId, dialerId])
 *
 * The MAC input is a msgpack array, so fields cannot be shifted into one another, and the labels
 * differ, so a proof cannot be reflected back to the side that asked for it. A recorded AUTH is of
 * no use later: the server's nonce is new for every connection.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { encodeMsgpack } from '@flotilla/shared';
import type { NodeId } from '../../raft/index.js';
import { NONCE_BYTES } from './codec.js';

export function newNonce(): Uint8Array {
  return randomBytes(NONCE_BYTES);
}

function hmac(secret: string, fields: unknown[]): Uint8Array {
  return createHmac('sha256', secret).update(encodeMsgpack(fields)).digest();
}

/** What the dialer sends to prove it knows the secret (answering the server's nonce). */
export function dialerProof(
  secret: string,
  serverNonce: Uint8Array,
  dialerId: NodeId,
  serverId: NodeId,
  dialerAddress: string,
): Uint8Array {
  return hmac(secret, ['dialer', serverNonce, dialerId, serverId, dialerAddress]);
}

/** What the server sends back to prove it knows the secret too (answering the dialer's nonce). */
export function serverProof(
  secret: string,
  dialerNonce: Uint8Array,
  serverId: NodeId,
  dialerId: NodeId,
): Uint8Array {
  return hmac(secret, ['server', dialerNonce, serverId, dialerId]);
}

/** Constant-time comparison of two proofs. */
export function sameProof(expected: Uint8Array, received: Uint8Array): boolean {
  return expected.length === received.length && timingSafeEqual(expected, received);
}
