// Models: base models and this workspace's fine-tunes; a fine-tune can be tried or deleted.
import { api, seg } from '../api.js';
import { action, h, show, table, when } from '../ui.js';

export async function render(main, { signal }) {
  const list = h('div');
  const refresh = async () => {
    const models = await api('GET', '/v1/models', undefined, { signal });
    const isFineTune = m => m.id.startsWith('ft:');
    const columns = fineTunes => [
      { title: 'Model', cell: m => h('code', {}, m.id) },
      { title: 'Owner', cell: m => m.owned_by },
      { title: 'Created', cell: m => when(new Date(m.created * 1000).toISOString()) },
      {
        title: 'Actions', cell: m => h('div', { class: 'row' },
          h('a', { href: `#/playground?model=${encodeURIComponent(m.id)}` }, 'Try it'),
          fineTunes ? action('Delete', async () => {
            if (!confirm(`Delete ${m.id} for good? Requests to it will fail.`)) return;
            await api('DELETE', `/v1/models/${seg(m.id)}`);
            await refresh();
          }, { class: 'danger', 'aria-label': `Delete ${m.id}` }) : null),
      },
    ];
    show(list,
      h('h2', {}, 'Base models'), table(columns(false), models.data.filter(m => !isFineTune(m)), 'No base models are served.'),
      h('h2', {}, 'Fine-tuned models'), table(columns(true), models.data.filter(isFineTune), 'No fine-tuned models yet: start one under Fine-tunes.'));
  };
  show(main, h('h1', {}, 'Models'), list);
  await refresh();
}
