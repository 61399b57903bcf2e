// The dashboard shell: sign-in, navigation (hash routes, so the server serves one page) and the page lifecycle.
import { api, session } from './api.js';
import { errorBox, h, notice, show } from './ui.js';
import * as keys from './pages/keys.js';
import * as usage from './pages/usage.js';
import * as fineTunes from './pages/fine-tunes.js';
import * as batches from './pages/batches.js';
import * as webhooks from './pages/webhooks.js';
import * as models from './pages/models.js';
import * as playground from './pages/playground.js';
import * as admin from './pages/admin.js';

const workspacePages = [
  ['keys', 'API keys', keys],
  ['usage', 'Usage', usage],
  ['fine-tunes', 'Fine-tunes', fineTunes],
  ['batches', 'Batches', batches],
  ['webhooks', 'Webhooks', webhooks],
  ['models', 'Models', models],
  ['playground', 'Playground', playground],
];
const operatorPages = [['admin', 'Workspaces', admin]];

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const signOut = document.getElementById('sign-out');
let leave = new AbortController();
let signedOutMessage = null;

function pagesFor(credential) {
  return credential?.kind === 'operator' ? operatorPages : workspacePages;
}

function parseRoute() {
  const [path, query = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const [page, ...rest] = path.split('/').filter(Boolean);
  return { page, rest: rest.map(decodeURIComponent), query: new URLSearchParams(query) };
}

async function render() {
  leave.abort();
  leave = new AbortController();
  const credential = session.get();
  if (!credential) {
    nav.hidden = true;
    signOut.hidden = true;
    who.textContent = '';
    renderSignIn();
    return;
  }
  const pages = pagesFor(credential);
  const route = parseRoute();
  const entry = pages.find(([name]) => name === route.page);
  if (!entry) {
    location.replace(`#/${pages[0][0]}`);
    return;
  }
  nav.hidden = false;
  signOut.hidden = false;
  who.textContent = sessionStorage.getItem('llmtune.who') ?? '';
  show(nav, pages.map(([name, title]) =>
    h('a', { href: `#/${name}`, 'aria-current': name === entry[0] ? 'page' : undefined }, title)));
  const [, title, page] = entry;
  document.title = `${title} · LLMTune`;
  show(main, h('p', { class: 'muted' }, 'Loading…'));
  const { signal } = leave;
  try {
    await page.render(main, { ...route, signal, credential });
  } catch (e) {
    // A page left before it finished loading says nothing; the next page owns the screen.
    if (!signal.aborted) show(main, h('h1', {}, title), errorBox(e));
  }
}

function renderSignIn() {
  document.title = 'Sign in · LLMTune';
  const token = h('input', { name: 'token', type: 'password', required: true, autocomplete: 'off', spellcheck: 'false', size: 50 });
  const form = h('form', { 'aria-labelledby': 'signin-title' },
    h('fieldset', {},
      h('legend', {}, 'Sign in with'),
      h('label', { class: 'check' }, h('input', { type: 'radio', name: 'kind', value: 'key', checked: true }), 'a workspace API key'),
      h('label', { class: 'check' }, h('input', { type: 'radio', name: 'kind', value: 'operator' }), 'the operator token (administration)')),
    h('label', {}, 'Key or token', token),
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    h('p', { class: 'muted' }, 'It is kept in this tab only (session storage) and sent as a bearer token to the API.'));
  form.addEventListener('submit', async event => {
    event.preventDefault();
    form.querySelector('.error')?.remove();
    const kind = new FormData(form).get('kind');
    const secret = token.value.trim();
    // A cheap authenticated read proves the credential before it is kept and any page is shown.
    const init = { headers: { Authorization: `Bearer ${secret}` } };
    try {
      if (kind === 'operator') {
        await api('GET', '/admin/workspaces', undefined, init);
        sessionStorage.setItem('llmtune.who', 'Operator');
      } else {
        const billing = await api('GET', '/v1/billing', undefined, init);
        sessionStorage.setItem('llmtune.who', `Workspace ${billing.workspaceId} · ${billing.plan}`);
      }
      session.set(kind, secret);
      signedOutMessage = null;
      const first = `#/${pagesFor(session.get())[0][0]}`;
      if (location.hash === first) await render();
      else location.hash = first; // hashchange renders it
    } catch (e) {
      form.append(errorBox(e));
    }
  });
  show(main, h('section', { class: 'signin' },
    h('h1', { id: 'signin-title' }, 'Sign in to LLMTune'),
    signedOutMessage ? notice(`You were signed out: ${signedOutMessage}`) : null,
    form));
  token.focus();
}

window.addEventListener('llmtune:signed-out', event => {
  signedOutMessage = event.detail;
  render();
});
window.addEventListener('hashchange', () => { render(); main.focus(); });
signOut.addEventListener('click', () => { session.clear(); sessionStorage.removeItem('llmtune.who'); signedOutMessage = null; render(); });

render();
