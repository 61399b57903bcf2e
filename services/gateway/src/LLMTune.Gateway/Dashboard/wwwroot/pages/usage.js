// Usage: plan, balance and quota left (GET /v1/billing); requests, tokens and cost per day, model and key (GET /v1/usage).
import { api } from '../api.js';
import { barChart, lineChart } from '../charts.js';
import { errorBox, field, h, money, num, onSubmit, poll, show, table } from '../ui.js';

const isoDay = date => date.toISOString().slice(0, 10);

export async function render(main, { signal }) {
  const today = new Date();
  const from = h('input', { name: 'from', type: 'date', value: isoDay(new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 1))) });
  const to = h('input', { name: 'to', type: 'date', value: isoDay(today) });
  const summary = h('div');
  const charts = h('div');
  const form = onSubmit(h('form', { class: 'inline', 'aria-label': 'Usage period' },
    field('From (UTC)', from), field('To (UTC)', to), h('button', { type: 'submit' }, 'Show')), () => refresh());

  const refresh = async () => {
    const range = `from=${encodeURIComponent(from.value)}&to=${encodeURIComponent(to.value)}`;
    const [billing, byDay, byModel, byKey] = await Promise.all([
      api('GET', '/v1/billing', undefined, { signal }),
      api('GET', `/v1/usage?${range}&groupBy=day`, undefined, { signal }),
      api('GET', `/v1/usage?${range}&groupBy=model`, undefined, { signal }),
      api('GET', `/v1/usage?${range}&groupBy=key`, undefined, { signal }),
    ]).catch(e => { show(charts, errorBox(e)); throw e; });
    show(summary, h('div', { class: 'cards' },
      card('Plan', billing.plan),
      card('Balance', money(billing.balanceUsd), billing.limits.prepaid ? 'prepaid' : 'invoiced or free'),
      card('Requests this month', `${num(billing.requests.used)} / ${num(billing.requests.limit)}`, `${num(billing.requests.remaining)} left`),
      card('Fine-tunes this month', `${num(billing.fineTunes.used)} / ${num(billing.fineTunes.limit)}`, `${num(billing.fineTunes.remaining)} left`),
      card('Rate limits', `${num(billing.limits.requestsPerMinute)} req/min`, `${num(billing.limits.tokensPerMinute)} tokens/min`),
      card('Period total', `${num(byDay.total.requests)} requests`, `${num(byDay.total.promptTokens + byDay.total.completionTokens)} tokens · ${money(byDay.total.costUsd)}`)));
    const days = byDay.data.map((row, i) => ({ ...row, index: i }));
    show(charts,
      h('h2', {}, 'Per day'),
      h('div', { class: 'charts' },
        barChart('Requests per day', days.map(d => ({ label: d.day.slice(5), value: d.requests }))),
        lineChart('Tokens per day', [
          { name: 'prompt', points: days.map(d => ({ x: d.index + 1, y: d.promptTokens })) },
          { name: 'completion', points: days.map(d => ({ x: d.index + 1, y: d.completionTokens })) },
        ], { xLabel: 'day of the period' }),
        barChart('Cost per day (USD)', days.map(d => ({ label: d.day.slice(5), value: d.costUsd })), { formatValue: money })),
      h('h2', {}, 'Per model'),
      h('div', { class: 'charts' },
        barChart('Requests per model', byModel.data.map(r => ({ label: r.model, value: r.requests }))),
        barChart('Tokens per model', byModel.data.map(r => ({ label: r.model, value: r.promptTokens + r.completionTokens })))),
      usageTable('model', byModel.data),
      h('h2', {}, 'Per key'),
      h('div', { class: 'charts' },
        barChart('Requests per key', byKey.data.map(r => ({ label: r.keyId ?? '(none)', value: r.requests }))),
        barChart('Cost per key (USD)', byKey.data.map(r => ({ label: r.keyId ?? '(none)', value: r.costUsd })), { formatValue: money })),
      usageTable('keyId', byKey.data));
  };

  show(main, h('h1', {}, 'Usage'), summary, form, charts);
  await refresh();
  poll(signal, 15_000, refresh);
}

function card(title, value, detail) {
  return h('div', { class: 'card' }, h('div', { class: 'muted' }, title), h('div', { class: 'value' }, value), detail ? h('div', { class: 'muted' }, detail) : null);
}

function usageTable(by, rows) {
  return table([
    { title: by === 'model' ? 'Model' : 'Key', cell: r => h('code', {}, r[by] ?? '(none)') },
    { title: 'Requests', cell: r => num(r.requests) },
    { title: 'Prompt tokens', cell: r => num(r.promptTokens) },
    { title: 'Completion tokens', cell: r => num(r.completionTokens) },
    { title: 'Cost', cell: r => money(r.costUsd) },
  ], rows, 'No usage in this period.');
}
