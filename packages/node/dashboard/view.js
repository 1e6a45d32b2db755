/**
 * Renders polled state into the page. Rows are keyed (by node id, by queue name) and updated in
 * place, so a poll does not rebuild the tables, focus and selections survive, and tests can hold
 * on to elements across polls.
 */
import {
  deadLetterSources,
  formatAge,
  formatCount,
  formatRate,
  memberRows,
  sparklinePoints,
} from './model.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
const SPARK_WIDTH = 120;
const SPARK_HEIGHT = 28;

/** @param {string} id */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no element #${id}`);
  return el;
}

/**
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {string} [text]
 */
export function el(tag, attrs = {}, text = '') {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

/** Set text only when it changed, so screen readers and layout are not disturbed needlessly. */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/**
 * Keyed rows: returns the row for `key`, creating it with one cell per field when it is new.
 * Rows whose keys are not in `keep` are removed by `pruneRows`.
 */
function keyedRow(tbody, attr, key, fields, testId) {
  for (const row of tbody.rows) if (row.dataset[attr] === key) return row;
  const row = el('tr', { 'data-testid': testId, [`data-${attr}`]: key });
  for (const field of fields) {
    const cell = el(field === fields[0] ? 'th' : 'td', { 'data-field': field });
    if (field === fields[0]) cell.setAttribute('scope', 'row');
    row.append(cell);
  }
  tbody.append(row);
  return row;
}

function pruneRows(tbody, attr, keep) {
  for (const row of [...tbody.rows]) if (!keep.has(row.dataset[attr])) row.remove();
}

function cell(row, field) {
  return row.querySelector(`[data-field="${field}"]`);
}

const NODE_FIELDS = ['node', 'address', 'role', 'link', 'matchIndex', 'lag'];

/**
 * @param {any} status `/api/cluster` of the serving node
 * @param {{ok: boolean, reason: string | null}} ready
 * @param {{sinceMs: number, changes: number}} leader
 */
export function renderCluster(status, ready, leader) {
  document.title = `${status.nodeId} (${status.role}) · Flotilla`;
  setText(byId('serving-node'), status.nodeId);
  setText(byId('serving-role'), status.role);
  byId('serving-role').dataset.role = status.role;
  setText(byId('leader-id'), status.leaderId ?? 'none');
  byId('leader-id').dataset.leader = status.leaderId ?? '';
  setText(byId('term'), formatCount(status.term));
  setText(byId('commit-index'), formatCount(status.commitIndex));
  setText(byId('applied-index'), formatCount(status.appliedIndex));
  setText(byId('ready'), ready.ok ? 'yes' : `no${ready.reason ? ` (${ready.reason})` : ''}`);
  byId('ready').dataset.ok = String(ready.ok);
  setText(byId('leader-note'), leaderNote(status, leader));
  setText(byId('nodes-caption'), `Members as ${status.nodeId} sees them`);
  renderMembers(status);
}

function leaderNote(status, leader) {
  const since = new Date(leader.sinceMs).toLocaleTimeString();
  const changes = leader.changes === 1 ? '1 leader change' : `${leader.changes} leader changes`;
  const lag = status.commitIndex - status.appliedIndex;
  const what = status.leaderId ? `${status.leaderId} leads since ${since}` : `No leader since ${since}`;
  return `${what} · ${changes} seen by this page · ${status.nodeId} has ${lag} committed entries to apply.`;
}

function renderMembers(status) {
  const tbody = byId('nodes-body');
  const rows = memberRows(status);
  for (const m of rows) {
    const row = keyedRow(tbody, 'node', m.id, NODE_FIELDS, 'node-row');
    row.classList.toggle('is-leader', m.leader);
    row.classList.toggle('is-down', !m.reachable);
    setText(cell(row, 'node'), m.self ? `${m.id} (this node)` : m.id);
    setText(cell(row, 'address'), m.address || '—');
    setText(cell(row, 'role'), m.leader ? `★ ${m.role}` : m.role);
    cell(row, 'role').dataset.role = m.role;
    setText(cell(row, 'link'), m.self ? '—' : m.reachable ? 'connected' : 'unreachable');
    setText(cell(row, 'matchIndex'), formatCount(m.matchIndex));
    setText(cell(row, 'lag'), m.lagEntries === null ? '—' : formatCount(m.lagEntries));
    for (const f of ['matchIndex', 'lag']) cell(row, f).classList.add('num');
  }
  pruneRows(tbody, 'node', new Set(rows.map((m) => m.id)));
}

const QUEUE_FIELDS = [
  'name',
  'depth',
  'ready',
  'inFlight',
  'delayed',
  'deadLettered',
  'publishRate',
  'ackRate',
  'oldest',
  'depthChart',
  'rateChart',
];

/**
 * @param {any[]} queues `/api/queues`
 * @param {Map<string, import('./model.js').QueueHistory>} histories
 */
export function renderQueues(queues, histories) {
  const tbody = byId('queues-body');
  const dlqs = deadLetterSources(queues);
  const sorted = [...queues].sort((a, b) => a.name.localeCompare(b.name));
  for (const q of sorted) {
    const row = keyedRow(tbody, 'queue', q.name, QUEUE_FIELDS, 'queue-row');
    tbody.append(row); // keep name order as queues come and go
    renderQueueRow(row, q, dlqs, histories.get(q.name));
  }
  pruneRows(tbody, 'queue', new Set(queues.map((q) => q.name)));
  byId('queues-empty').hidden = queues.length > 0;
}

function renderQueueRow(row, q, dlqs, history) {
  const feeds = dlqs.get(q.name);
  const nameCell = cell(row, 'name');
  setText(nameCell, q.name);
  nameCell.dataset.dlq = feeds ? 'true' : 'false';
  nameCell.title = feeds ? `dead-letter queue of ${feeds.join(', ')}` : '';
  const latest = history?.latest();
  const figures = {
    depth: formatCount(q.depth),
    ready: formatCount(q.ready),
    inFlight: formatCount(q.inFlight),
    delayed: formatCount(q.delayed),
    deadLettered: q.options?.deadLetterQueue
      ? `${formatCount(q.deadLetteredCount)} → ${q.options.deadLetterQueue}`
      : formatCount(q.deadLetteredCount),
    publishRate: formatRate(latest?.publishRate),
    ackRate: formatRate(latest?.ackRate),
    oldest: formatAge(q.oldestMessageAgeMs),
  };
  for (const [field, text] of Object.entries(figures)) {
    const c = cell(row, field);
    c.classList.add('num');
    setText(c, text);
  }
  cell(row, 'depth').dataset.value = String(q.depth);
  if (history) renderCharts(row, q.name, history);
}

function renderCharts(row, name, history) {
  const depth = history.series('depth');
  sparkline(
    cell(row, 'depthChart'),
    [depth],
    `${name} depth over 5 minutes, now ${formatCount(depth.at(-1))}`,
  );
  const pub = history.series('publishRate');
  const ack = history.series('ackRate');
  sparkline(
    cell(row, 'rateChart'),
    [pub, ack],
    `${name} publish rate (now ${formatRate(pub.at(-1))}) and ack rate (now ${formatRate(ack.at(-1))}) over 5 minutes`,
  );
}

/**
 * Draw (or redraw) an inline SVG sparkline with one polyline per series, all on one scale.
 * @param {Element} container
 * @param {number[][]} seriesList
 * @param {string} label
 */
function sparkline(container, seriesList, label) {
  let svg = container.querySelector('svg');
  if (!svg) {
    svg = document.createElementNS(SVG_NS, 'svg');
    // One unit of margin so lines on the edges are not cut in half.
    svg.setAttribute('viewBox', `0 -1 ${SPARK_WIDTH} ${SPARK_HEIGHT + 2}`);
    svg.setAttribute('width', String(SPARK_WIDTH));
    svg.setAttribute('height', String(SPARK_HEIGHT + 2));
    svg.setAttribute('role', 'img');
    svg.classList.add('spark');
    svg.append(document.createElementNS(SVG_NS, 'title'));
    seriesList.forEach((_, i) => {
      const line = document.createElementNS(SVG_NS, 'polyline');
      line.classList.add(`series-${i}`);
      svg.append(line);
    });
    container.append(svg);
  }
  svg.setAttribute('aria-label', label);
  svg.querySelector('title').textContent = label;
  const top = Math.max(0, ...seriesList.flat());
  const lines = svg.querySelectorAll('polyline');
  seriesList.forEach((values, i) => {
    lines[i]?.setAttribute('points', sparklinePoints(values, SPARK_WIDTH, SPARK_HEIGHT, top));
  });
}
