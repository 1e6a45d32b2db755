/**
 * The running broker as the command line and tests see it. `startServer` (server.ts) builds one
 * from a validated {@link ServerConfig}.
 */
import type { NodeStatus } from '../cluster/types.js';
import type { ServerConfig } from '../config/config.js';

export interface RunningServer {
  readonly config: ServerConfig;
  /** `http://host:port` actually bound (the port is resolved when `--listen` asks for port 0). */
  readonly httpUrl: string;
  status(): NodeStatus;
  /**
   * Graceful stop (SIGTERM): hand leadership to another voter if this node leads, stop accepting
   * clients, finish in-flight confirms, flush storage, close. Idempotent.
   */
  stop(reason?: string): Promise<void>;
  /** Resolves when the server has stopped, for whatever reason; rejects if it died of an error. */
  readonly closed: Promise<void>;
}
