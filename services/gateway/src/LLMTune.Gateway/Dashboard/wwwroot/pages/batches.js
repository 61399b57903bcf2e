// Batches: submit prompts as one batch, the list with progress, and a batch page with its results.
import { api, seg } from '../api.js';
import { action, errorBox, field, h, onSubmit, poll, show, status, table, when } from '../ui.js';

const finished = new Set(['completed', 'completed_with_errors', 'failed', 'cancelled']);

export async function render(main, context) {
  if (context.rest[0]) return renderBatch(main, context.rest[0], context);
  return renderList(main, context);
}

function progress(batch) {
  return h('span', { class: 'row' },
    h('progress', { max: 100, value: batch.progress, 'aria-label': `Progress of ${batch.batchId}` }),
    `${batch.counts.succeeded + batch.counts.failed + batch.counts.cancelled} of ${batch.counts.total}`);
}

async function renderList(main, { signal }) {
  const list = h('div');
  const refresh = async () => {
    const page = await api('GET', '/v1/batch?limit=50', undefined, { signal });
    show(list, table([
      { title: 'Batch', cell: b => h('a', { href: `#/batches/${encodeURIComponent(b.batchId)}` }, b.batchId) },
      { title: 'Model', cell: b => h('code', {}, b.modelId) },
      { title: 'Status', cell: b => status(b.status) },
      { title: 'Progress', cell: progress },
      { title: 'Failed', cell: b => b.counts.failed },
      { title: 'Created', cell: b => when(b.createdAt) },
    ], page.data, 'No batches yet.'));
  };

  const models = await api('GET', '/v1/models', undefined, { signal }).catch(() => ({ data: [] }));
  const form = onSubmit(h('form', { 'aria-label': 'Submit a batch' },
    h('div', { class: 'row' },
      field('Model', h('select', { name: 'modelId', required: true }, models.data.map(m => h('option', { value: m.id }, m.id)))),
      field('Max tokens', h('input', { name: 'maxTokens', type: 'number', min: 1, max: 4096, value: 64, size: 6 })),
      field('Temperature', h('input', { name: 'temperature', type: 'number', min: 0, max: 2, step: 0.1, value: 0.7, size: 5 }))),
    field('Prompts, one per line', h('textarea', { name: 'prompts', required: true, rows: 4 })),
    h('button', { type: 'submit', class: 'primary' }, 'Submit batch')), async data => {
    const prompts = String(data.get('prompts')).split('\n').map(p => p.trim()).filter(Boolean);
    const accepted = await api('POST', '/v1/batch/inference', {
      modelId: data.get('modelId'),
      requests: prompts.map((prompt, i) => ({
        id: `req-${i + 1}`, prompt, maxTokens: Number(data.get('maxTokens')), temperature: Number(data.get('temperature')),
      })),
    });
    location.hash = `#/batches/${encodeURIComponent(accepted.batchId)}`;
  });

  show(main, h('h1', {}, 'Batches'), h('h2', {}, 'Submit a batch'), form, h('h2', {}, 'Batches'), list);
  await refresh();
  poll(signal, 3000, refresh);
}

async function renderBatch(main, batchId, { signal }) {
  const body = h('div');
  const problem = h('div', { 'aria-live': 'assertive' });
  show(main, h('p', {}, h('a', { href: '#/batches' }, '← All batches')), h('h1', {}, `Batch ${batchId}`), problem, body);
  const refresh = async () => {
    let batch;
    try {
      batch = await api('GET', `/v1/batch/${seg(batchId)}`, undefined, { signal });
      show(problem);
    } catch (e) {
      show(problem, errorBox(e));
      return !signal.aborted;
    }
    show(body,
      h('div', { class: 'cards' },
        h('div', { class: 'card' }, h('div', { class: 'muted' }, 'Status'), h('div', { class: 'value', 'data-batch-status': batch.status }, status(batch.status))),
        h('div', { class: 'card' }, h('div', { class: 'muted' }, 'Progress'), progress(batch)),
        h('div', { class: 'card' }, h('div', { class: 'muted' }, 'Counts'),
          h('div', {}, `${batch.counts.succeeded} succeeded · ${batch.counts.failed} failed · ${batch.counts.pending} pending · ${batch.counts.cancelled} cancelled`)),
        h('div', { class: 'card' }, h('div', { class: 'muted' }, 'Model'), h('code', {}, batch.modelId))),
      finished.has(batch.status) ? null : action('Cancel batch', async () => {
        await api('POST', `/v1/batch/${seg(batchId)}/cancel`);
        await refresh();
      }, { class: 'danger' }),
      h('h2', {}, 'Results'),
      table([
        { title: 'Request', cell: r => h('code', {}, r.id) },
        { title: 'Status', cell: r => status(r.status) },
        { title: 'Text or error', cell: r => (r.error ? h('span', { class: 'error' }, r.error.message) : h('span', { class: 'result-text' }, r.text)) },
        { title: 'Tokens', cell: r => r.tokens ?? '—' },
        { title: 'Latency', cell: r => (r.latency != null ? `${r.latency} ms` : '—') },
      ], batch.results ?? [], 'No results yet.'));
    return !finished.has(batch.status);
  };
  if (await refresh()) poll(signal, 1000, refresh);
}
