// Webhooks: endpoints (create, test, rotate their secret, delete), the workspace signing secret (reveal once,
// rotate), and the delivery log with every attempt and a resend button.
import { api, seg } from '../api.js';
import { action, errorBox, field, h, onSubmit, poll, secretBox, show, status, table, when } from '../ui.js';

const eventTypes = ['training.started', 'training.completed', 'training.failed', 'model.deployed', 'batch.completed'];

export async function render(main, context) {
  if (context.rest[0] === 'deliveries' && context.rest[1]) return renderDelivery(main, context.rest[1], context);
  return renderOverview(main, context);
}

async function renderOverview(main, { signal }) {
  const secretSlot = h('div', { 'aria-live': 'polite' });
  const endpoints = h('div');
  const deliveries = h('div');
  const statusFilter = h('select', { 'aria-label': 'Delivery status', onchange: () => refreshDeliveries() },
    h('option', { value: '' }, 'all'), ['pending', 'succeeded', 'failed'].map(s => h('option', { value: s }, s)));

  const refreshEndpoints = async () => {
    const page = await api('GET', '/v1/webhooks/endpoints?limit=100', undefined, { signal });
    show(endpoints, table([
      { title: 'URL', cell: e => h('code', {}, e.url) },
      { title: 'Events', cell: e => (e.events.length ? e.events.join(', ') : 'all') },
      { title: 'Enabled', cell: e => (e.enabled ? 'yes' : `no${e.disabledReason ? ` (${e.disabledReason})` : ''}`) },
      { title: 'Description', cell: e => e.description ?? '' },
      { title: 'Created', cell: e => when(e.createdAt) },
      {
        title: 'Actions', cell: e => h('div', { class: 'row' },
          action('Send test', async () => { await api('POST', `/v1/webhooks/endpoints/${seg(e.id)}/test`); await refreshDeliveries(); }, { 'aria-label': `Send a test event to ${e.url}` }),
          action('Rotate secret', async () => {
            const rotated = await api('POST', `/v1/webhooks/endpoints/${seg(e.id)}/rotate-secret`);
            show(secretSlot, secretBox(`New signing secret for ${rotated.url}`, rotated.secret));
          }, { 'aria-label': `Rotate the secret of ${e.url}` }),
          action('Delete', async () => {
            if (!confirm(`Delete the endpoint ${e.url}?`)) return;
            await api('DELETE', `/v1/webhooks/endpoints/${seg(e.id)}`);
            await refreshEndpoints();
          }, { class: 'danger', 'aria-label': `Delete ${e.url}` })),
      },
    ], page.data, 'No endpoints. Jobs and batches can also name a webhookUrl of their own.'));
  };

  const refreshDeliveries = async () => {
    const query = statusFilter.value ? `&status=${encodeURIComponent(statusFilter.value)}` : '';
    const page = await api('GET', `/v1/webhooks/deliveries?limit=50${query}`, undefined, { signal });
    show(deliveries, table([
      { title: 'Delivery', cell: d => h('a', { href: `#/webhooks/deliveries/${encodeURIComponent(d.id)}` }, d.id) },
      { title: 'Event', cell: d => d.event },
      { title: 'URL', cell: d => h('code', {}, d.url) },
      { title: 'Status', cell: d => status(d.status) },
      { title: 'Attempts', cell: d => d.attemptCount },
      { title: 'Last error', cell: d => d.lastError ?? '' },
      { title: 'Created', cell: d => when(d.createdAt) },
      { title: '', cell: d => resendButton(d, refreshDeliveries) },
    ], page.data, 'No deliveries yet.'));
  };

  const form = onSubmit(h('form', { 'aria-label': 'Add an endpoint' },
    h('div', { class: 'row' },
      field('URL', h('input', { name: 'url', type: 'url', required: true, size: 40, placeholder: 'https://example.com/hooks/llmtune' })),
      field('Description', h('input', { name: 'description', maxlength: 200 }))),
    h('fieldset', {}, h('legend', {}, 'Events (none ticked: all)'),
      eventTypes.map(t => h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'events', value: t }), t))),
    h('button', { type: 'submit', class: 'primary' }, 'Add endpoint')), async data => {
    const created = await api('POST', '/v1/webhooks/endpoints', {
      url: data.get('url'), description: data.get('description') || null, events: data.getAll('events'),
    });
    show(secretSlot, secretBox(`Signing secret for ${created.url}`, created.secret));
    form.reset();
    await refreshEndpoints();
  });

  const workspaceSecret = h('div', { class: 'row' },
    action('Reveal signing secret', async () => {
      const secret = await api('GET', '/v1/webhooks/secret');
      show(secretSlot, secret.secret
        ? secretBox('Workspace signing secret', secret.secret)
        : errorBox({ message: `The workspace secret was already shown once (created ${new Date(secret.createdAt).toLocaleString()}). Rotate it to get a new one.` }));
    }),
    action('Rotate signing secret', async () => {
      if (!confirm('Rotate the workspace signing secret? The old one keeps verifying for a while.')) return;
      const secret = await api('POST', '/v1/webhooks/secret/rotate');
      show(secretSlot, secretBox('New workspace signing secret', secret.secret),
        secret.previousExpiresAt ? h('p', { class: 'muted' }, `The old secret verifies until ${new Date(secret.previousExpiresAt).toLocaleString()}.`) : null);
    }));

  show(main, h('h1', {}, 'Webhooks'),
    h('h2', {}, 'Workspace signing secret'),
    h('p', { class: 'muted' }, 'Signs deliveries to the webhookUrl of jobs and batches. Shown once; rotate for a new one.'),
    workspaceSecret, secretSlot,
    h('h2', {}, 'Endpoints'), form, endpoints,
    h('h2', {}, 'Deliveries'), h('div', { class: 'row' }, field('Status', statusFilter)), deliveries);
  await Promise.all([refreshEndpoints(), refreshDeliveries()]);
  poll(signal, 5000, refreshDeliveries);
}

function resendButton(delivery, after) {
  return action('Resend', async () => {
    await api('POST', `/v1/webhooks/deliveries/${seg(delivery.id)}/resend`);
    await after();
  }, { 'aria-label': `Resend ${delivery.id}` });
}

async function renderDelivery(main, deliveryId, { signal }) {
  const body = h('div');
  show(main, h('p', {}, h('a', { href: '#/webhooks' }, '← Webhooks')), h('h1', {}, `Delivery ${deliveryId}`), body);
  const refresh = async () => {
    try {
      const d = await api('GET', `/v1/webhooks/deliveries/${seg(deliveryId)}`, undefined, { signal });
      show(body,
        h('p', {}, status(d.status), ` ${d.event} to `, h('code', {}, d.url), d.nextAttemptAt ? ` · next attempt ${new Date(d.nextAttemptAt).toLocaleString()}` : ''),
        resendButton(d, refresh),
        h('h2', {}, 'Attempts'),
        table([
          { title: '#', cell: a => a.number },
          { title: 'When', cell: a => when(a.at) },
          { title: 'HTTP status', cell: a => a.statusCode ?? '—' },
          { title: 'Latency', cell: a => `${a.latencyMs} ms` },
          { title: 'Response or error', cell: a => h('code', {}, a.error ?? a.response ?? '') },
        ], d.attempts ?? [], 'No attempts yet.'));
    } catch (e) {
      show(body, errorBox(e));
    }
  };
  await refresh();
  poll(signal, 3000, refresh);
}
