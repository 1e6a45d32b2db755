/** Public surface of the broker package: start a node from a validated configuration. */

export type { MemberStatus, NodeStatus, Role } from './cluster/types.js';
export {
  ConfigError,
  envName,
  formatHostPort,
  type HostPort,
  loadServerConfig,
  parseHostPort,
  parsePeers,
  type RawSettings,
  SETTINGS,
  type ServerConfig,
  type SettingKey,
} from './config/config.js';
export { type StartOptions, startServer } from './server/server.js';
export type { RunningServer } from './server/types.js';
