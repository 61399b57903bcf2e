// Operators: workspaces (create with a first key, set the plan) and credits.
import { api, seg } from '../api.js';
import { action, field, h, onSubmit, secretBox, show, table, when } from '../ui.js';

const plans = ['sandbox', 'growth', 'scale'];

export async function render(main, { signal }) {
  const slot = h('div', { 'aria-live': 'polite' });
  const list = h('div');

  const refresh = async () => {
    const page = await api('GET', '/admin/workspaces', undefined, { signal });
    show(list, table([
      { title: 'Workspace', cell: w => [h('strong', {}, w.name), h('div', {}, h('code', {}, w.id))] },
      { title: 'Created', cell: w => when(w.createdAt) },
      { title: 'Plan', cell: w => planControl(w) },
      { title: 'Credits', cell: w => creditControl(w) },
    ], page.data, 'No workspaces.'));
  };

  const planControl = workspace => {
    const select = h('select', { 'aria-label': `Plan of ${workspace.name}` }, plans.map(p => h('option', { value: p, selected: p === workspace.plan }, p)));
    return h('span', { class: 'row' }, select, action('Set plan', async () => {
      const updated = await api('PUT', `/admin/workspaces/${seg(workspace.id)}/plan`, { plan: select.value });
      show(slot, h('p', { class: 'notice', role: 'status' }, `${updated.name} is on ${updated.plan} now.`));
      await refresh();
    }, { 'aria-label': `Set the plan of ${workspace.name}` }));
  };

  const creditControl = workspace => onSubmit(h('form', { class: 'inline', 'aria-label': `Add credits to ${workspace.name}` },
    field('Amount (USD)', h('input', { name: 'amountUsd', type: 'number', step: '0.01', min: '0.01', required: true, size: 7 })),
    field('Reference', h('input', { name: 'reference', required: true, size: 12, placeholder: 'invoice-42' })),
    h('button', { type: 'submit' }, 'Add credits')), async data => {
    const credit = await api('POST', `/admin/workspaces/${seg(workspace.id)}/credits`, { amountUsd: Number(data.get('amountUsd')), reference: data.get('reference') });
    show(slot, h('p', { class: 'notice', role: 'status' }, credit.applied
      ? `Added $${credit.amountUsd} to ${workspace.name}: balance $${credit.balanceUsd}.`
      : `Reference ${credit.reference} was already applied; balance $${credit.balanceUsd}.`));
  });

  const form = onSubmit(h('form', { class: 'inline', 'aria-label': 'Create a workspace' },
    field('Name', h('input', { name: 'name', required: true, maxlength: 64, pattern: '[A-Za-z0-9._\\-]+' })),
    field('Plan', h('select', { name: 'plan' }, plans.map(p => h('option', { value: p }, p)))),
    h('button', { type: 'submit', class: 'primary' }, 'Create workspace')), async data => {
    const created = await api('POST', '/admin/workspaces', { name: data.get('name'), plan: data.get('plan') });
    show(slot, secretBox(`First API key of ${created.workspace.name}`, created.apiKey.key));
    form.reset();
    await refresh();
  });

  show(main, h('h1', {}, 'Workspaces'), form, slot, list);
  await refresh();
}
