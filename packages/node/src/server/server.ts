/**
 * The composition root of a broker node: builds every component from the validated config and
 * wires them together on one listening port.
 *
 *   HTTP frontend ── /client ──▶ Gateway ──▶ QueueRuntime (the replicated state machine)
 *                └─ /cluster ─▶ PeerTransport ◀──▶ RaftDriver (core + FileStorage) ──┘
 *
 * Start-up: recover storage and start Raft, then listen. Graceful stop (SIGTERM): stop taking new
 * clients and requests, let in-flight confirms finish, hand leadership to another voter, tell
 * clients where the leader went, close. A fatal error (storage I/O, broken invariant) rejects
 * `closed`; the process should exit rather than continue with doubtful state.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TokenAuthenticator } from '../auth/tokens.js';
import { QueueRuntime } from '../broker/index.js';
import { PeerTransport, RaftDriver } from '../cluster/index.js';
import { formatHostPort, type ServerConfig } from '../config/config.js';
import { Gateway } from '../gateway/index.js';
import { HttpFrontend } from '../http/server.js';
import { NodeMetrics } from '../metrics/metrics.js';
import { createLogger, type Logger } from '../runtime/logger.js';
import { TimerWheel } from '../runtime/timer-wheel.js';
import { NodeHttpApi } from './node-api.js';
import { type QueueStatsOptions, QueueStatsSource } from './queue-stats.js';
import type { RunningServer } from './types.js';

export interface StartOptions {
  /** Defaults to a pino logger on stdout at the configured level. */
  logger?: Logger;
  /** Sampling of the per-queue publish/ack rates (default: once a second over 10 s); tests shorten it. */
  queueRates?: Pick<QueueStatsOptions, 'sampleMs' | 'windowMs'>;
}

/** How long a graceful stop waits for in-flight confirms, and for the leadership hand-over. */
const DRAIN_TIMEOUT_MS = 5_000;

const DASHBOARD_DIR = fileURLToPath(new URL('../../dashboard/', import.meta.url));

export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  let driver: RaftDriver | null = null;
  const logger =
    options.logger ??
    createLogger({ nodeId: config.nodeId, level: config.logLevel, term: () => driver?.currentTerm ?? 0 });
  const authenticator = config.authTokens ? TokenAuthenticator.fromFile(config.authTokens) : null;
  if (!authenticator) logger.warn('no --auth-tokens: clients are not authenticated (development only)');

  const timers = new TimerWheel();
  const metrics = new NodeMetrics(config.nodeId, {
    status: () => runtime.status(),
    queues: () => queueStats.counts(),
  });
  const runtime = new QueueRuntime({ nodeId: config.nodeId, timers, logger, metrics });
  const queueStats = new QueueStatsSource(runtime, options.queueRates);
  const transport = new PeerTransport({
    nodeId: config.nodeId,
    advertise: formatHostPort(config.advertise),
    clusterSecret: config.clusterSecret,
    logger,
  });
  driver = new RaftDriver({
    nodeId: config.nodeId,
    advertise: formatHostPort(config.advertise),
    peers: new Map([...config.peers].map(([id, hp]) => [id, formatHostPort(hp)])),
    join: config.join,
    dataDir: config.dataDir,
    transport,
    app: runtime,
    tickMs: config.tickMs,
    electionTimeoutMs: config.electionTimeoutMs,
    heartbeatMs: config.heartbeatMs,
    snapshotLogBytes: config.snapshotLogBytes,
    logger,
    observer: {
      sync: (report) => metrics.fsyncSeconds.observe(report.durationMs / 1000),
      leaderChanged: () => metrics.leaderChanges.inc(),
    },
  });
  runtime.attachLog(driver);
  const gateway = new Gateway({
    runtime,
    timers,
    authenticator,
    metrics,
    logger,
    decorateStats: (stats) => queueStats.decorate(stats),
    settings: {
      maxSessions: config.maxSessions,
      maxSubscriptionsPerSession: config.maxSubscriptionsPerSession,
    },
  });

  let state: 'running' | 'stopping' | 'stopped' = 'running';
  const raft = driver;
  const api = new NodeHttpApi(
    raft,
    runtime,
    metrics,
    () => (state === 'running' ? { ok: true } : { ok: false, reason: state }),
    queueStats,
  );
  const http = new HttpFrontend({
    api,
    upgrades: {
      '/client': (req, socket, head) => gateway.handleUpgrade(req, socket, head),
      '/cluster': transport.handleUpgrade,
    },
    authenticate: authenticator ? (token) => authenticator.authenticate(token) : undefined,
    staticDir: existsSync(DASHBOARD_DIR) ? DASHBOARD_DIR : undefined,
    logger,
  });

  await raft.start();
  let bound: { host: string; port: number };
  try {
    bound = await http.listen(config.listen.host, config.listen.port);
  } catch (err) {
    await raft.stop({ transfer: false });
    throw err;
  }
  const httpUrl = `http://${formatHostPort(bound)}`;
  queueStats.start();
  logger.info(
    { listen: httpUrl, advertise: formatHostPort(config.advertise), dataDir: config.dataDir },
    'node started',
  );

  const shutdown = async (reason: string): Promise<void> => {
    logger.info({ reason }, 'stopping');
    gateway.stopAccepting();
    await gateway.drain(DRAIN_TIMEOUT_MS);
    if (raft.status().role === 'leader') {
      await raft
        .transferLeadership()
        .catch((err: unknown) => logger.warn({ err }, 'leadership hand-over failed'));
    }
    const s = raft.status();
    const leaderId = s.leaderId === config.nodeId ? null : s.leaderId;
    gateway.closeAll(
      'shutdown',
      leaderId,
      leaderId && s.leaderAddress ? `ws://${s.leaderAddress}/client` : null,
    );
    gateway.close();
    queueStats.stop();
    runtime.stop();
    await raft.stop({ transfer: false });
    await http.close();
    timers.close();
    logger.info('stopped');
    logger.flush();
  };

  let stopping: Promise<void> | null = null;
  const closed = raft.closed.then(async (err) => {
    if (err) {
      logger.fatal({ err }, 'node failed; stopping');
      state = 'stopped';
      gateway.closeAll('node failed');
      gateway.close();
      queueStats.stop();
      runtime.stop();
      await http.close();
      timers.close();
      logger.flush();
      throw err;
    }
    await stopping;
  });
  closed.catch(() => {});

  return {
    config,
    httpUrl,
    status: () => raft.status(),
    stop(reason = 'stop requested') {
      if (!stopping) {
        state = 'stopping';
        stopping = shutdown(reason).finally(() => {
          state = 'stopped';
        });
      }
      return stopping;
    },
    closed,
  };
}
