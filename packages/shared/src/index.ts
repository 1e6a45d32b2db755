/** Public surface of the wire-protocol package: shared by the broker and the SDK. */
export * from './queue-options.js';
