/**
 * The message browser: pick a queue, peek at its stored messages (no lease is taken, so consumers
 * are not disturbed), and for a dead-letter queue move messages back with redrive (one, N or all).
 */
import { callApi, queuePath } from './api.js';
import { deadLetterSources, formatCount } from './model.js';
import { byId, el } from './view.js';

const BODY_PREVIEW_CHARS = 200;

export class MessageBrowser {
  /**
   * @param {{onChange: () => void, onError: (err: unknown) => void}} hooks `onChange` after a
   *   redrive (to refresh the figures at once), `onError` for failures worth a wider notice
   */
  constructor(hooks) {
    this.hooks = hooks;
    /** @type {Map<string, string[]>} DLQ name → queues feeding it */
    this.dlqs = new Map();
    /** @type {string[]} */
    this.queueNames = [];
    this.busy = false;
    /** Figures of the selected queue when its messages were last listed (see `updateQueues`). */
    this.listedKey = '';
    byId('peek-form').addEventListener('submit', (event) => {
      event.preventDefault();
      void this.peek();
    });
    byId('peek-queue').addEventListener('change', () => {
      this.syncRedrivePanel();
      byId('peek-from').value = '0';
      void this.peek();
    });
    byId('redrive-one').addEventListener('click', () => void this.redrive(1));
    byId('redrive-n').addEventListener('click', () => void this.redrive(this.redriveCount()));
    byId('redrive-all').addEventListener('click', () => void this.redrive(null));
    byId('redrive-count').addEventListener('input', () => {
      byId('redrive-n').textContent = `Redrive ${formatCount(this.redriveCount())}`;
    });
  }

  /** The selected queue, or null when there are no queues. */
  get selected() {
    const value = /** @type {HTMLSelectElement} */ (byId('peek-queue')).value;
    return value === '' ? null : value;
  }

  /** Keep the queue list in step with the last poll, without losing the user's choice. */
  updateQueues(queues) {
    this.dlqs = deadLetterSources(queues);
    const names = queues.map((q) => q.name).sort((a, b) => a.localeCompare(b));
    if (names.join('\n') !== this.queueNames.join('\n')) {
      this.queueNames = names;
      this.fillQueueSelect();
      this.fillTargetSelect();
    }
    this.syncRedrivePanel();
    this.refreshWhenChanged(queues);
  }

  /**
   * Re-list the selected queue's messages when its figures moved since the list was drawn: a
   * redrive or a publish applied on the leader reaches this node's replica a moment later, and a
   * list drawn in between would otherwise stay stale until the user peeks again.
   */
  refreshWhenChanged(queues) {
    const queue = queues.find((q) => q.name === this.selected);
    if (!queue || this.busy) return;
    const key = changeKey(queue);
    if (this.listedKey !== '' && key !== this.listedKey) void this.peekKeepingStatus();
    this.listedKey = key;
  }

  fillQueueSelect() {
    const select = /** @type {HTMLSelectElement} */ (byId('peek-queue'));
    const previous = select.value;
    select.replaceChildren(
      ...this.queueNames.map((name) => {
        const label = this.dlqs.has(name) ? `${name} (dead-letter queue)` : name;
        return el('option', { value: name }, label);
      }),
    );
    if (this.queueNames.includes(previous)) select.value = previous;
  }

  fillTargetSelect() {
    const select = /** @type {HTMLSelectElement} */ (byId('redrive-target'));
    const previous = select.value;
    select.replaceChildren(
      el('option', { value: '' }, 'the queue each message came from'),
      ...this.queueNames.map((name) => el('option', { value: name }, name)),
    );
    if (this.queueNames.includes(previous)) select.value = previous;
  }

  syncRedrivePanel() {
    const name = this.selected;
    const panel = byId('redrive');
    panel.hidden = name === null || !this.dlqs.has(name);
    byId('redrive-queue').textContent = name ?? '';
  }

  redriveCount() {
    const n = Number(/** @type {HTMLInputElement} */ (byId('redrive-count')).value);
    return Number.isSafeInteger(n) && n >= 1 ? n : 1;
  }

  async peek() {
    const name = this.selected;
    if (name === null) return;
    const fromSeq = integerInput('peek-from', 0);
    const max = Math.min(1000, Math.max(1, integerInput('peek-max', 50)));
    try {
      const messages = await callApi(`${queuePath(name, '/messages')}?fromSeq=${fromSeq}&max=${max}`);
      if (name !== this.selected) return; // the user moved on while this was in flight
      renderMessages(name, messages);
      status(messages.length === 0 ? `${name} holds no messages from seq ${fromSeq}.` : '');
    } catch (err) {
      status(`Peek at ${name} failed: ${describe(err)}`, true);
      this.hooks.onError(err);
    }
  }

  /** @param {number | null} max null = all */
  async redrive(max) {
    const dlq = this.selected;
    if (dlq === null || this.busy) return;
    const target = /** @type {HTMLSelectElement} */ (byId('redrive-target')).value;
    const body = {};
    if (max !== null) body.max = max;
    if (target) body.target = target;
    this.setBusy(true);
    try {
      const { moved } = await callApi(queuePath(dlq, '/redrive'), {
        method: 'POST',
        body,
        timeoutMs: 35_000,
      });
      const where = target || 'where they came from';
      status(`Moved ${formatCount(moved)} message${moved === 1 ? '' : 's'} from ${dlq} to ${where}.`);
      this.hooks.onChange();
      await this.peekKeepingStatus();
    } catch (err) {
      status(`Redrive of ${dlq} failed: ${describe(err)}`, true);
      this.hooks.onError(err);
    } finally {
      this.setBusy(false);
    }
  }

  /** Refresh the message list after a change without replacing the change's report. */
  async peekKeepingStatus() {
    const report = byId('messages-status').textContent ?? '';
    await this.peek();
    if (!byId('messages-status').dataset.error) status(report);
  }

  setBusy(busy) {
    this.busy = busy;
    for (const id of ['redrive-one', 'redrive-n', 'redrive-all']) {
      /** @type {HTMLButtonElement} */ (byId(id)).disabled = busy;
    }
  }
}

/** Figures that change whenever the queue's stored messages do. */
function changeKey(q) {
  return [q.depth, q.inFlight, q.publishedCount, q.ackedCount, q.deadLetteredCount].join(':');
}

function integerInput(id, fallback) {
  const n = Number(/** @type {HTMLInputElement} */ (byId(id)).value);
  return Number.isSafeInteger(n) && n >= 0 ? n : fallback;
}

function status(text, isError = false) {
  const node = byId('messages-status');
  node.textContent = text;
  if (isError) node.dataset.error = 'true';
  else delete node.dataset.error;
}

function describe(err) {
  return err instanceof Error ? `${/** @type {any} */ (err).code ?? err.name}: ${err.message}` : String(err);
}

function renderMessages(queue, messages) {
  byId('messages-caption').textContent = `${queue}: ${messages.length} stored message${
    messages.length === 1 ? '' : 's'
  } (peeked, not leased)`;
  byId('messages-body').replaceChildren(...messages.map(messageRow));
  byId('messages').hidden = messages.length === 0;
}

function messageRow(m) {
  const row = el('tr', { 'data-testid': 'message-row', 'data-seq': String(m.seq) });
  const headers = Object.entries(m.headers ?? {})
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n');
  const body = m.bodyText ?? `base64:${m.bodyBase64}`;
  const preview = body.length > BODY_PREVIEW_CHARS ? `${body.slice(0, BODY_PREVIEW_CHARS)}…` : body;
  row.append(
    el('td', { class: 'num' }, String(m.seq)),
    el('td', {}, new Date(m.publishedAtMs).toLocaleString()),
    el('td', { class: 'num' }, String(m.deliveryCount)),
    el('td', { class: 'num' }, String(m.priority)),
    el('td', {}, m.group ?? '—'),
    el('td', { class: 'headers' }, headers || '—'),
    el('td', { class: 'num' }, formatCount(m.bytes)),
  );
  const bodyCell = el('td', { class: 'body' });
  bodyCell.append(el('code', { title: body.slice(0, 4000) }, preview));
  row.append(bodyCell);
  return row;
}
