// Playground: a prompt against any model, streamed, with its settings, tokens and latency.
import { api, stream } from '../api.js';
import { errorBox, field, h, show } from '../ui.js';

export async function render(main, { query, signal }) {
  const models = await api('GET', '/v1/models', undefined, { signal });
  const wanted = query.get('model');
  const model = h('select', { name: 'modelId', required: true },
    models.data.map(m => h('option', { value: m.id, selected: m.id === wanted }, m.id)));
  const prompt = h('textarea', { name: 'prompt', required: true, rows: 5, placeholder: 'Summarize LLMTune in one sentence.' });
  const temperature = h('input', { name: 'temperature', type: 'number', min: 0, max: 2, step: 0.1, value: 0.7, size: 5 });
  const maxTokens = h('input', { name: 'maxTokens', type: 'number', min: 1, max: 4096, value: 200, size: 6 });
  const topP = h('input', { name: 'topP', type: 'number', min: 0, max: 1, step: 0.05, value: 1, size: 5 });
  const output = h('div', { class: 'output', id: 'playground-output', 'aria-live': 'polite', 'aria-label': 'Answer' });
  const stats = h('p', { class: 'muted', role: 'status', id: 'playground-stats' });
  const problem = h('div');
  const run = h('button', { type: 'submit', class: 'primary' }, 'Run');
  const stop = h('button', { type: 'button', disabled: true }, 'Stop');
  let running = null;

  stop.addEventListener('click', () => running?.abort());
  signal.addEventListener('abort', () => running?.abort());

  const form = h('form', { 'aria-label': 'Prompt' },
    h('div', { class: 'row' }, field('Model', model), field('Temperature', temperature), field('Max tokens', maxTokens), field('Top p', topP)),
    field('Prompt', prompt),
    h('div', { class: 'row' }, run, stop));
  form.addEventListener('submit', async event => {
    event.preventDefault();
    show(problem);
    show(output);
    delete output.dataset.pieces;
    delete stats.dataset.done;
    stats.textContent = 'Generating…';
    run.disabled = true;
    stop.disabled = false;
    running = new AbortController();
    const started = performance.now();
    let firstToken = null;
    try {
      await stream('/v1/playground/inference', {
        modelId: model.value,
        prompt: prompt.value,
        temperature: Number(temperature.value),
        maxTokens: Number(maxTokens.value),
        topP: Number(topP.value),
      }, (name, data) => {
        if (name === 'delta') {
          firstToken ??= performance.now() - started;
          output.append(data.delta);
          output.dataset.pieces = String(Number(output.dataset.pieces ?? 0) + 1);
        } else if (name === 'done') {
          output.textContent = data.text;
          stats.textContent = `${data.tokens} tokens · ${data.latency} ms on the server · first text after ${Math.round(firstToken ?? 0)} ms · ${data.finishReason} · ${data.model}`;
          stats.dataset.done = 'true';
        }
      }, running.signal);
    } catch (e) {
      if (e.name === 'AbortError') stats.textContent = 'Stopped.';
      else { stats.textContent = ''; show(problem, errorBox(e)); }
    } finally {
      run.disabled = false;
      stop.disabled = true;
      running = null;
    }
  });
  form.addEventListener('keydown', event => {
    // Ctrl+Enter runs from inside the prompt, as in most playgrounds.
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });

  show(main, h('h1', {}, 'Playground'), form, problem, h('h2', {}, 'Answer'), output, stats,
    h('p', { class: 'muted' }, 'Ctrl+Enter runs the prompt. Calls count as requests and are billed like any other.'));
  prompt.focus();
}
