/**
 * The dashboard's arithmetic, free of the DOM so it can be tested on its own: per-queue history of
 * polls, rates computed from counters between polls, which queues are dead-letter queues, how far
 * each cluster member lags, sparkline geometry and display formats.
 */

/** How far back the charts look. */
export const HISTORY_WINDOW_MS = 5 * 60_000;

/**
 * Rolling samples of one queue's stats: `{ tMs, depth, published, acked, publishRate, ackRate }`.
 * Samples older than the window are dropped, so memory stays bounded whatever the poll interval.
 */
export class QueueHistory {
  /** @param {number} windowMs */
  constructor(windowMs = HISTORY_WINDOW_MS) {
    this.windowMs = windowMs;
    /** @type {Array<{tMs: number, depth: number, published: number, acked: number, publishRate: number | null, ackRate: number | null}>} */
    this.samples = [];
  }

  /**
   * Record one poll of a queue at time `tMs` (ms, the page's clock). The node's own rates
   * (`publishRate`/`ackRate`, averaged over its last 10 s) are used when it sends them; an older
   * node's answer gets rates from the counters between two polls.
   * @param {number} tMs
   * @param {{depth: number, publishedCount: number, ackedCount: number, publishRate?: number, ackRate?: number}} stats
   */
  add(tMs, stats) {
    const prev = this.samples.at(-1);
    if (prev && tMs <= prev.tMs) return;
    this.samples.push({
      tMs,
      depth: stats.depth,
      published: stats.publishedCount,
      acked: stats.ackedCount,
      publishRate:
        stats.publishRate ??
        (prev ? ratePerSecond(prev.published, stats.publishedCount, tMs - prev.tMs) : null),
      ackRate: stats.ackRate ?? (prev ? ratePerSecond(prev.acked, stats.ackedCount, tMs - prev.tMs) : null),
    });
    const oldestKeptMs = tMs - this.windowMs;
    while (this.samples.length > 1 && this.samples[0].tMs < oldestKeptMs) this.samples.shift();
  }

  /** The latest sample, or undefined before the first poll. */
  latest() {
    return this.samples.at(-1);
  }

  /** @param {'depth' | 'publishRate' | 'ackRate'} field */
  series(field) {
    return this.samples.map((s) => s[field]).filter((v) => v !== null);
  }
}

/**
 * Events per second between two readings of a monotonic counter. A counter that went down (the
 * page switched to a node that restored an older snapshot, say) gives null rather than a negative rate.
 * @param {number} before
 * @param {number} after
 * @param {number} elapsedMs
 * @returns {number | null}
 */
export function ratePerSecond(before, after, elapsedMs) {
  if (elapsedMs <= 0 || after < before) return null;
  return ((after - before) * 1000) / elapsedMs;
}

/**
 * Dead-letter queues and the queues that feed them: DLQ name → source queue names.
 * @param {Array<{name: string, options?: {deadLetterQueue?: string | null}}>} queues
 * @returns {Map<string, string[]>}
 */
export function deadLetterSources(queues) {
  /** @type {Map<string, string[]>} */
  const sources = new Map();
  for (const q of queues) {
    const dlq = q.options?.deadLetterQueue;
    if (!dlq) continue;
    const list = sources.get(dlq) ?? [];
    list.push(q.name);
    sources.set(dlq, list);
  }
  return sources;
}

/**
 * One row per cluster member as seen by the node serving the page. The role of a member other
 * than the serving node is only known for the leader; replication lag (entries behind the leader's
 * last index) only when the serving node leads, since only the leader tracks `matchIndex`.
 * @param {{nodeId: string, role: string, leaderId: string | null, lastIndex: number, members: Array<{id: string, address: string, voter: boolean, matchIndex: number | null, connected: boolean}>}} status
 */
export function memberRows(status) {
  const servingLeads = status.role === 'leader';
  const members = status.members.some((m) => m.id === status.nodeId)
    ? status.members
    : [
        { id: status.nodeId, address: '', voter: false, matchIndex: null, connected: true },
        ...status.members,
      ];
  return members.map((m) => {
    const self = m.id === status.nodeId;
    let role = m.voter ? 'follower' : 'learner';
    if (self) role = status.role;
    else if (m.id === status.leaderId) role = 'leader';
    return {
      id: m.id,
      address: m.address,
      role,
      self,
      leader: m.id === status.leaderId,
      reachable: self || m.connected,
      matchIndex: m.matchIndex,
      lagEntries: servingLeads && m.matchIndex !== null ? Math.max(0, status.lastIndex - m.matchIndex) : null,
    };
  });
}

/**
 * Remembers the leader across polls to report changes: `{ leaderId, sinceMs, changes }`.
 * A poll with no leader is a change too (an election is running).
 */
export class LeaderTracker {
  constructor() {
    /** @type {string | null | undefined} */
    this.leaderId = undefined;
    this.sinceMs = 0;
    this.changes = 0;
  }

  /**
   * @param {string | null} leaderId
   * @param {number} tMs
   * @returns {boolean} whether the leader changed with this observation
   */
  observe(leaderId, tMs) {
    if (leaderId === this.leaderId) return false;
    if (this.leaderId !== undefined) this.changes++;
    this.leaderId = leaderId;
    this.sinceMs = tMs;
    return true;
  }
}

/**
 * Points of a sparkline in a `width` × `height` box as an SVG `points` string. Zero (or the lowest
 * value, if negative) sits on the bottom edge and `top` on the top edge; `top` defaults to the
 * highest value, and a shared `top` puts several series on one scale. An all-zero series lies on
 * the bottom. Values are spread evenly left to right; the last one always ends at the right edge.
 * @param {number[]} values
 * @param {number} width
 * @param {number} height
 * @param {number} [top]
 */
export function sparklinePoints(values, width, height, top = Math.max(...values)) {
  if (values.length === 0) return '';
  const min = Math.min(0, ...values);
  const span = Math.max(top, ...values) - min;
  const y = (v) => (span === 0 ? height : height - ((v - min) / span) * height);
  const x = (i) => (values.length > 1 ? (i * width) / (values.length - 1) : width);
  return values.map((v, i) => `${round1(x(i))},${round1(y(v))}`).join(' ');
}

function round1(n) {
  return Math.round(n * 10) / 10;
}

/** @param {number | null | undefined} ms */
export function formatAge(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${s % 60} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} m`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** @param {number | null | undefined} perSecond */
export function formatRate(perSecond) {
  if (perSecond === null || perSecond === undefined) return '—';
  if (perSecond === 0) return '0/s';
  if (perSecond < 10) return `${perSecond.toFixed(1)}/s`;
  return `${formatCount(Math.round(perSecond))}/s`;
}

/** @param {number | null | undefined} n */
export function formatCount(n) {
  if (n === null || n === undefined) return '—';
  return n.toLocaleString('en-US');
}

/** @param {number} bytes */
export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 * 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

/**
 * The poll interval from the page's query string (`?pollMs=500`), clamped to something sane.
 * @param {string} search
 */
export function pollIntervalMs(search) {
  const raw = Number(new URLSearchParams(search).get('pollMs'));
  if (!Number.isFinite(raw) || raw <= 0) return 1000;
  return Math.min(60_000, Math.max(200, Math.round(raw)));
}
