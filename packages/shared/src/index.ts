/** Public surface of the wire-protocol package: shared by the broker and the SDK. */
export * from './body.js';
export * from './codec-request.js';
export * from './codec-server.js';
export * from './errors.js';
export * from './frames.js';
export * from './limits.js';
export {
  decodeMsgpack,
  encodeMsgpack,
  MsgpackReader,
  MsgpackWriter,
  truncatedInputBytes,
} from './msgpack.js';
export * from './queue-options.js';
export * from './queue-options-validate.js';
