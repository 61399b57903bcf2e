// API keys: create (the secret shown once), list, rotate with a grace period, revoke.
import { api, seg } from '../api.js';
import { action, field, h, onSubmit, poll, secretBox, show, status, table, when } from '../ui.js';

export async function render(main, { signal, credential }) {
  const secretSlot = h('div', { 'aria-live': 'polite' });
  const list = h('div');

  const refresh = async () => {
    const page = await api('GET', '/v1/keys?limit=100', undefined, { signal });
    show(list, table([
      { title: 'Name', cell: k => [k.name, credential.token.startsWith(k.prefix) ? h('span', { class: 'muted' }, ' (this session)') : null] },
      { title: 'Key', cell: k => h('code', {}, `${k.prefix}…`) },
      { title: 'Status', cell: k => status(stateOf(k)) },
      { title: 'Created', cell: k => when(k.createdAt) },
      { title: 'Last used', cell: k => when(k.lastUsedAt) },
      { title: 'Expires', cell: k => when(k.expiresAt) },
      { title: 'Old secret valid until', cell: k => when(k.previousKeyExpiresAt) },
      { title: 'Actions', cell: k => k.revokedAt ? '' : h('div', { class: 'row' }, rotateControl(k), revokeButton(k)) },
    ], page.data.filter(k => !k.revokedAt).concat(page.data.filter(k => k.revokedAt)), 'No keys.'));
  };

  const rotateControl = key => {
    const grace = h('select', { 'aria-label': `Grace period for ${key.name}` },
      h('option', { value: '86400' }, 'old secret works 24 h'),
      h('option', { value: '3600' }, 'old secret works 1 h'),
      h('option', { value: '0' }, 'old secret stops now'));
    return h('span', { class: 'row' }, grace, action(`Rotate`, async () => {
      const rotated = await api('POST', `/v1/keys/${seg(key.id)}/rotate`, { gracePeriodSeconds: Number(grace.value) });
      show(secretSlot, secretBox(`New secret for “${rotated.name}”`, rotated.key));
      await refresh();
    }, { 'aria-label': `Rotate ${key.name}` }));
  };

  const revokeButton = key => action('Revoke', async () => {
    if (!confirm(`Revoke “${key.name}”? Requests with it fail from now on.`)) return;
    await api('DELETE', `/v1/keys/${seg(key.id)}`);
    await refresh();
  }, { class: 'danger', 'aria-label': `Revoke ${key.name}` });

  const name = h('input', { name: 'name', required: true, maxlength: 100, placeholder: 'ci' });
  const expires = h('input', { name: 'expiresAt', type: 'datetime-local' });
  const form = onSubmit(h('form', { class: 'inline', 'aria-label': 'Create a key' },
    field('Name', name), field('Expires (optional)', expires), h('button', { type: 'submit', class: 'primary' }, 'Create key')), async data => {
    const expiresAt = data.get('expiresAt') ? new Date(data.get('expiresAt')).toISOString() : null;
    const created = await api('POST', '/v1/keys', { name: data.get('name'), expiresAt });
    show(secretSlot, secretBox(`Secret for “${created.name}”`, created.key));
    form.reset();
    await refresh();
  });

  show(main, h('h1', {}, 'API keys'), form, secretSlot, list);
  await refresh();
  poll(signal, 10_000, refresh);
}

function stateOf(key) {
  if (key.revokedAt) return 'revoked';
  if (key.expiresAt && new Date(key.expiresAt) < new Date()) return 'expired';
  return 'active';
}
