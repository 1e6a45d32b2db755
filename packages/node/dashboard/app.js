/**
 * The dashboard's entry point: polls the serving node (`/api/cluster`, `/api/queues`, `/ready`)
 * one poll at a time, keeps the charts' history, and tells the user when the node stops answering
 * or wants a token. Polls never overlap: the next one is scheduled when the last one ends.
 */
import { callApi, probe, tokenStore } from './api.js';
import { MessageBrowser } from './messages.js';
import { LeaderTracker, pollIntervalMs, QueueHistory } from './model.js';
import { byId, el, renderCluster, renderQueues } from './view.js';

const pollMs = pollIntervalMs(location.search);
/** A stopped (not dead) node never refuses the connection; give up on it after a couple of polls. */
const pollTimeoutMs = Math.max(2_000, pollMs * 2);

const histories = new Map();
const leader = new LeaderTracker();
/** The last cluster view that arrived, to point the user at other nodes when this one goes quiet. */
let lastStatus = null;
let lostSinceMs = null;
let firstQueues = true;
let timer = 0;

const browser = new MessageBrowser({ onChange: () => pollSoon(), onError: (err) => noteFailure(err) });

async function pollOnce() {
  const nowMs = Date.now();
  const [status, queues, ready] = await Promise.all([
    callApi('/api/cluster', { timeoutMs: pollTimeoutMs }),
    callApi('/api/queues', { timeoutMs: pollTimeoutMs }),
    probe('/ready', pollTimeoutMs),
  ]);
  if (leader.observe(status.leaderId, nowMs)) flash(byId('leader-id'));
  lastStatus = status;
  renderCluster(status, ready, leader);
  recordHistories(queues, nowMs);
  renderQueues(queues, histories);
  browser.updateQueues(queues);
  if (firstQueues && browser.selected !== null) {
    firstQueues = false;
    void browser.peek();
  }
  showLive(nowMs);
}

function recordHistories(queues, nowMs) {
  const names = new Set();
  for (const q of queues) {
    names.add(q.name);
    if (!histories.has(q.name)) histories.set(q.name, new QueueHistory());
    histories.get(q.name).add(nowMs, q);
  }
  for (const name of histories.keys()) if (!names.has(name)) histories.delete(name);
}

async function loop() {
  try {
    await pollOnce();
  } catch (err) {
    noteFailure(err);
  }
  timer = window.setTimeout(loop, pollMs);
}

/** Poll again now (after the user changed something), instead of waiting for the next tick. */
function pollSoon() {
  window.clearTimeout(timer);
  timer = window.setTimeout(loop, 0);
}

function showLive(nowMs) {
  lostSinceMs = null;
  byId('lost').hidden = true;
  setConnection('live', `Live · every ${pollMs / 1000} s · updated ${new Date(nowMs).toLocaleTimeString()}`);
}

/** @param {unknown} err */
function noteFailure(err) {
  const code = /** @type {any} */ (err)?.code;
  if (code === 'UNAUTHORIZED' || code === 'FORBIDDEN') {
    setConnection(
      'auth',
      code === 'UNAUTHORIZED' ? 'This cluster needs a bearer token.' : 'The token may not do that.',
    );
    /** @type {HTMLDetailsElement} */ (byId('auth')).open = true;
    return;
  }
  if (/** @type {any} */ (err)?.unreachable) {
    showLost();
    return;
  }
  setConnection('error', `Last poll failed: ${err instanceof Error ? err.message : String(err)}`);
}

function showLost() {
  lostSinceMs ??= Date.now();
  const node = lastStatus?.nodeId ?? 'the node serving this page';
  const since = new Date(lostSinceMs).toLocaleTimeString();
  setConnection('lost', `No answer from ${node} since ${since}; retrying.`);
  byId('lost-text').textContent =
    `${node} has not answered since ${since}. The figures below are from before then. ` +
    'This page keeps retrying; to keep watching, open the dashboard on another node.';
  const others = (lastStatus?.members ?? []).filter((m) => m.id !== lastStatus.nodeId && m.address);
  byId('lost-links').replaceChildren(
    ...others.map((m) => {
      const item = el('li');
      item.append(el('a', { href: `http://${m.address}/` }, `${m.id} at ${m.address}`));
      return item;
    }),
  );
  byId('lost-hint').hidden = others.length === 0;
  byId('lost').hidden = false;
}

function setConnection(state, text) {
  const node = byId('connection');
  node.dataset.state = state;
  if (node.textContent !== text) node.textContent = text;
}

/** Draw the eye to a value that just changed (the leader). */
function flash(node) {
  node.classList.remove('flash');
  void node.getBoundingClientRect(); // restart the animation
  node.classList.add('flash');
}

function setUpToken() {
  const input = /** @type {HTMLInputElement} */ (byId('token-input'));
  input.value = tokenStore.get();
  byId('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    tokenStore.set(input.value.trim());
    pollSoon();
  });
  byId('token-forget').addEventListener('click', () => {
    input.value = '';
    tokenStore.set('');
    pollSoon();
  });
}

setUpToken();
void loop();
