// Fine-tunes: the job list with a form to start one, and a job page with live progress, loss curves, events,
// checkpoints and the deployed model.
import { api, download, seg } from '../api.js';
import { lineChart } from '../charts.js';
import { action, errorBox, field, h, onSubmit, poll, show, status, table, when } from '../ui.js';

const finished = new Set(['completed', 'failed', 'cancelled']);

export async function render(main, context) {
  if (context.rest[0]) return renderJob(main, context.rest[0], context);
  return renderList(main, context);
}

async function renderList(main, { signal }) {
  const list = h('div');
  const refresh = async () => {
    const page = await api('GET', '/v1/fine-tune?limit=50', undefined, { signal });
    show(list, table([
      { title: 'Job', cell: j => h('a', { href: `#/fine-tunes/${encodeURIComponent(j.id)}` }, j.id) },
      { title: 'Base model', cell: j => j.baseModel },
      { title: 'Status', cell: j => status(j.status) },
      { title: 'Progress', cell: j => progressBar(j) },
      { title: 'Loss', cell: j => j.metrics.loss ?? '—' },
      { title: 'Created', cell: j => when(j.createdAt) },
      { title: 'Model', cell: j => j.fineTunedModel ? h('code', {}, j.fineTunedModel) : '—' },
    ], page.data, 'No fine-tunes yet.'));
    return true;
  };

  const models = await api('GET', '/v1/models', undefined, { signal }).catch(() => ({ data: [] }));
  const bases = models.data.filter(m => !m.id.startsWith('ft:'));
  const form = onSubmit(h('form', { 'aria-label': 'Start a fine-tune' },
    h('div', { class: 'row' },
      field('Training data (JSONL)', h('input', { name: 'file', type: 'file', accept: '.jsonl,application/jsonl,application/json,text/plain', required: true })),
      field('Base model', h('select', { name: 'baseModel', required: true }, bases.map(m => h('option', { value: m.id }, m.id)))),
      field('Method', h('select', { name: 'trainingMethod' }, h('option', { value: 'sft' }, 'sft'))),
      field('Epochs', h('input', { name: 'epochs', type: 'number', min: 1, max: 100, placeholder: 'auto', size: 6 })),
      field('Learning rate', h('input', { name: 'learningRate', type: 'number', step: 'any', min: 0, placeholder: 'auto', size: 8 })),
      field('Batch size', h('input', { name: 'batchSize', type: 'number', min: 1, max: 256, placeholder: 'auto', size: 6 })),
      h('button', { type: 'submit', class: 'primary' }, 'Start fine-tune'))), async data => {
    const upload = new FormData();
    upload.append('purpose', 'fine-tune');
    upload.append('file', data.get('file'));
    const file = await api('POST', '/v1/files', upload);
    const number = name => (data.get(name) ? Number(data.get(name)) : 'auto');
    const job = await api('POST', '/v1/fine-tune', {
      baseModel: data.get('baseModel'),
      dataset: `llmtune://files/${file.id}`,
      trainingMethod: data.get('trainingMethod'),
      hyperparameters: { epochs: number('epochs'), learningRate: number('learningRate'), batchSize: number('batchSize') },
    });
    location.hash = `#/fine-tunes/${encodeURIComponent(job.id)}`;
  });

  show(main, h('h1', {}, 'Fine-tunes'),
    h('h2', {}, 'Start a fine-tune'),
    h('p', { class: 'muted' }, 'One JSON object per line: {"messages": [...]} or {"prompt": ..., "completion": ...}.'),
    form, h('h2', {}, 'Jobs'), list);
  await refresh();
  poll(signal, 3000, refresh);
}

function progressBar(job) {
  return h('span', { class: 'row' },
    h('progress', { max: 100, value: job.progress, 'aria-label': `Progress of ${job.id}` }), `${job.progress}%`);
}

async function renderJob(main, jobId, { signal }) {
  const header = h('div');
  const curves = h('div', { class: 'charts' });
  const deployed = h('div');
  const checkpoints = h('div');
  const events = h('div');
  const problem = h('div', { 'aria-live': 'assertive' });
  const live = h('p', { class: 'muted', role: 'status' });
  show(main, h('p', {}, h('a', { href: '#/fine-tunes' }, '← All fine-tunes')), h('h1', {}, `Fine-tune ${jobId}`),
    problem, header, live, h('h2', {}, 'Loss'), curves, deployed, h('h2', {}, 'Checkpoints'), checkpoints, h('h2', {}, 'Events'), events);

  // Every event seen so far, by id: each poll reads only the newest page(s) until it meets a known one.
  const known = new Map();
  const loadEvents = async () => {
    let cursor = '';
    for (let pages = 0; pages < 100; pages++) {
      const page = await api('GET', `/v1/fine-tune/${seg(jobId)}/events?limit=100${cursor}`, undefined, { signal });
      let metKnown = false;
      for (const event of page.data) {
        if (known.has(event.id)) metKnown = true;
        else known.set(event.id, event);
      }
      if (metKnown || !page.hasMore) break;
      cursor = `&cursor=${encodeURIComponent(page.nextCursor)}`;
    }
    return [...known.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  };

  const refresh = async () => {
    let job, eventList, checkpointPage;
    try {
      [job, eventList, checkpointPage] = await Promise.all([
        api('GET', `/v1/fine-tune/${seg(jobId)}`, undefined, { signal }),
        loadEvents(),
        api('GET', `/v1/fine-tune/${seg(jobId)}/checkpoints?limit=100`, undefined, { signal }),
      ]);
      show(problem);
    } catch (e) {
      show(problem, errorBox(e));
      return !signal.aborted;
    }
    const h1 = job.hyperparameters;
    show(header, h('div', { class: 'cards' },
      h('div', { class: 'card' }, h('div', { class: 'muted' }, 'Status'), h('div', { class: 'value', 'data-job-status': job.status }, status(job.status))),
      h('div', { class: 'card' }, h('div', { class: 'muted' }, 'Progress'), progressBar(job), h('div', { class: 'muted' }, `epoch ${job.epochs.current} of ${job.epochs.total}`)),
      h('div', { class: 'card' }, h('div', { class: 'muted' }, 'Loss / eval loss'), h('div', { class: 'value' }, `${job.metrics.loss ?? '—'} / ${job.metrics.evalLoss ?? '—'}`),
        h('div', { class: 'muted' }, job.metrics.tokensPerSecond ? `${job.metrics.tokensPerSecond} tokens/s` : '')),
      h('div', { class: 'card' }, h('div', { class: 'muted' }, 'Base model'), h('div', {}, h('code', {}, job.baseModel)),
        h('div', { class: 'muted' }, `lr ${h1.learningRate} · epochs ${h1.epochs} · batch ${h1.batchSize} · ${h1.adapter}`))),
      job.error ? errorBox({ message: `${job.error.code}: ${job.error.message}` }) : null,
      finished.has(job.status) ? null : action('Cancel job', async () => {
        await api('POST', `/v1/fine-tune/${seg(jobId)}/cancel`);
        await refresh();
      }, { class: 'danger' }));

    // Events are kept newest first; the curves read oldest first.
    const ordered = [...eventList].reverse();
    const loss = ordered.filter(e => e.metrics?.loss != null && e.step != null).map(e => ({ x: e.step, y: e.metrics.loss }));
    const evalLoss = ordered.filter(e => e.metrics?.evalLoss != null && e.step != null).map(e => ({ x: e.step, y: e.metrics.evalLoss }));
    show(curves, lineChart('Training and evaluation loss', [
      { name: 'loss', points: dedupe(loss) },
      { name: 'eval loss', points: dedupe(evalLoss) },
    ], { xLabel: 'step' }));

    show(deployed, job.fineTunedModel ? h('section', { 'aria-label': 'Deployed model' },
      h('h2', {}, 'Deployed model'),
      h('p', {}, h('code', { 'data-model': job.fineTunedModel }, job.fineTunedModel), ' ',
        h('a', { href: `#/playground?model=${encodeURIComponent(job.fineTunedModel)}` }, 'Try it in the playground'),
        job.deployedCheckpoint ? h('span', { class: 'muted' }, ` (step ${job.deployedCheckpoint.step}, eval loss ${job.deployedCheckpoint.evalLoss ?? '—'})`) : null)) : null);

    show(checkpoints, table([
      { title: 'Step', cell: c => c.step },
      { title: 'Epoch', cell: c => c.epoch },
      { title: 'Loss', cell: c => c.loss },
      { title: 'Eval loss', cell: c => c.evalLoss },
      { title: 'Kind', cell: c => c.kind },
      { title: 'Size', cell: c => `${(c.bytes / 1024).toFixed(0)} KiB` },
      { title: 'Deployed', cell: c => (c.deployed ? 'yes' : '') },
      { title: 'Download', cell: c => action('Download', () => download(`/v1/fine-tune/${seg(jobId)}/checkpoints/${seg(c.id)}/content`, `${jobId}-${c.id}.gguf`), { 'aria-label': `Download checkpoint at step ${c.step}` }) },
    ], checkpointPage.data, 'No checkpoints yet.'));

    show(events, table([
      { title: 'When', cell: e => when(e.createdAt) },
      { title: 'Type', cell: e => e.type },
      { title: 'Message', cell: e => e.message },
    ], eventList.slice(0, 200), 'No events yet.'));

    // A completed job's model is deployed a moment later (the inference service announces it): keep polling for it,
    // for at most two minutes after the job finished.
    const deploying = job.status === 'completed' && !job.fineTunedModel && deployPolls++ < 120;
    live.textContent = deploying ? 'Completed; deploying the model…'
      : finished.has(job.status) ? `Finished ${job.finishedAt ? new Date(job.finishedAt).toLocaleString() : ''}.` : 'Updating every second…';
    return deploying || !finished.has(job.status);
  };
  let deployPolls = 0;

  if (await refresh()) poll(signal, 1000, refresh);
}

function dedupe(points) {
  const byX = new Map();
  for (const p of points) byX.set(p.x, p);
  return [...byX.values()].sort((a, b) => a.x - b.x);
}
