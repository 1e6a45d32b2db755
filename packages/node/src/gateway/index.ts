/** The client gateway: the WebSocket protocol at `/client` (docs/protocol.md). */
export { DEFAULT_GATEWAY_SETTINGS, type GatewaySettings } from './core.js';
export { Gateway, type GatewayOptions } from './gateway.js';
export { CloseCode } from './session.js';
