/**
 * One WebSocket data frame written straight onto the TCP socket under a `ws` client connection,
 * from several buffers. `ws` sends one buffer per frame (or per fragment), so a message made of a
 * header and entry bodies would have to be copied into one buffer, or go as fragments that the
 * receiving `ws` copies together again. Written here instead: a frame header, then the parts as
 * they are, all on a corked socket, so the kernel gets them in one writev and the receiver one
 * frame (RFC 6455 §5.2).
 *
 * Only for links with a zero masking key: a client frame must be masked, and with the key 0 the
 * payload goes unchanged (the receiving `ws` sees the zero key and skips unmasking). Writing beside
 * `ws` is safe because `ws` writes every frame of its own (pings, pongs, close) whole and at once
 * (no permessage-deflate on these links), and this module never leaves a frame half written.
 */
import type { Writable } from 'node:stream';

const FIN_BINARY = 0x82;
const MASK_BIT = 0x80;
/** Payload lengths up to this fit in the 7-bit field; up to 0xffff take 16 bits, beyond 64. */
const LENGTH_7_MAX = 125;
const LENGTH_16_MAX = 0xffff;

/** Header of a final binary client frame of `payloadBytes` bytes, masked with the zero key. */
export function zeroMaskFrameHeader(payloadBytes: number): Buffer {
  if (!Number.isSafeInteger(payloadBytes) || payloadBytes < 0) {
    throw new RangeError(`frame payload of ${payloadBytes} bytes`);
  }
  const lengthBytes = payloadBytes <= LENGTH_7_MAX ? 0 : payloadBytes <= LENGTH_16_MAX ? 2 : 8;
  // Buffer.alloc: the four mask bytes after the length stay zero.
  const header = Buffer.alloc(2 + lengthBytes + 4);
  header[0] = FIN_BINARY;
  if (lengthBytes === 0) {
    header[1] = MASK_BIT | payloadBytes;
  } else if (lengthBytes === 2) {
    header[1] = MASK_BIT | 126;
    header.writeUInt16BE(payloadBytes, 2);
  } else {
    header[1] = MASK_BIT | 127;
    header.writeUInt32BE(Math.floor(payloadBytes / 2 ** 32), 2);
    header.writeUInt32BE(payloadBytes >>> 0, 6);
  }
  return header;
}

/**
 * Writes one frame whose payload is `parts` joined (`payloadBytes` in all) onto `socket`; `done`
 * runs once the last part is written, like `ws.send`'s callback. The caller corks the socket around
 * a batch of frames so they leave in one writev.
 */
export function writeZeroMaskFrame(
  socket: Writable,
  parts: readonly Uint8Array[],
  payloadBytes: number,
  done: (err?: Error | null) => void,
): void {
  let total = 0;
  for (const part of parts) total += part.byteLength;
  // A wrong length would desynchronise the stream for every later frame: refuse before writing.
  if (total !== payloadBytes) throw new Error(`frame parts hold ${total} bytes, header says ${payloadBytes}`);
  socket.write(zeroMaskFrameHeader(payloadBytes));
  const last = parts.length - 1;
  for (let i = 0; i < last; i++) if (parts[i]!.byteLength > 0) socket.write(parts[i]!);
  socket.write(last >= 0 ? parts[last]! : new Uint8Array(0), done);
}
