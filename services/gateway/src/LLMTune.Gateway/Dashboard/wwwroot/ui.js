// Small DOM helpers: elements are built with textContent, never innerHTML, so API data cannot inject markup.

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name === 'class') element.className = value;
    else if (name in element && typeof value !== 'string') element[name] = value;
    else element.setAttribute(name, value === true ? '' : value);
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces an element's content. */
export function show(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

export function errorBox(error) {
  return h('div', { class: 'error', role: 'alert' }, error?.message ?? String(error));
}

export function notice(text) {
  return h('div', { class: 'notice', role: 'status' }, text);
}

export function status(value) {
  return h('span', { class: `status ${value}` }, value);
}

export function when(value) {
  if (!value) return '—';
  const date = new Date(value);
  return h('time', { datetime: value, title: value }, date.toLocaleString());
}

export function table(columns, rows, empty = 'Nothing yet.') {
  if (rows.length === 0) return h('p', { class: 'muted' }, empty);
  return h('table', {},
    h('thead', {}, h('tr', {}, columns.map(c => h('th', { scope: 'col' }, c.title)))),
    h('tbody', {}, rows.map(row => h('tr', {}, columns.map(c => h('td', {}, c.cell(row)))))));
}

export function field(label, input) {
  return h('label', {}, label, input);
}

/** A button that disables itself while its action runs and shows the action's error next to it. */
export function action(label, run, attrs = {}) {
  const button = h('button', { type: 'button', ...attrs }, label);
  button.addEventListener('click', async () => {
    button.disabled = true;
    try { await run(button); } catch (e) { reportError(button, e); } finally { button.disabled = false; }
  });
  return button;
}

/** Shows an error right after an element, replacing the previous one there. */
export function reportError(element, error) {
  const next = element.nextElementSibling;
  if (next?.classList.contains('error')) next.remove();
  element.after(errorBox(error));
}

/** Runs a form's submit handler with its error shown inside the form. */
export function onSubmit(form, run) {
  form.addEventListener('submit', async event => {
    event.preventDefault();
    form.querySelector(':scope > .error')?.remove();
    const submit = form.querySelector('button[type=submit]');
    if (submit) submit.disabled = true;
    try { await run(new FormData(form)); } catch (e) { form.append(errorBox(e)); } finally { if (submit) submit.disabled = false; }
  });
  return form;
}

/** A secret shown once, with a copy button. */
export function secretBox(title, secret) {
  const value = h('code', { class: 'mono', 'data-secret': '' }, secret);
  const copied = h('span', { role: 'status', class: 'muted' });
  return h('div', { class: 'secret', role: 'region', 'aria-label': title },
    h('strong', {}, title), h('p', {}, 'Copy it now: it is shown only once.'),
    h('div', { class: 'row' }, value,
      h('button', {
        type: 'button', onclick: async () => {
          try { await navigator.clipboard.writeText(secret); copied.textContent = 'Copied.'; } catch { copied.textContent = 'Select the text and copy it.'; }
        },
      }, 'Copy'), copied));
}

/** Calls run every intervalMs until the page is left (signal aborted) or run returns false. */
export function poll(signal, intervalMs, run) {
  let timer;
  const tick = async () => {
    if (signal.aborted) return;
    let again = true;
    try { again = (await run()) !== false; } catch { /* the page shows the error; keep polling */ }
    if (again && !signal.aborted) timer = setTimeout(tick, intervalMs);
  };
  signal.addEventListener('abort', () => clearTimeout(timer));
  timer = setTimeout(tick, intervalMs);
}

export const money = value => {
  const amount = Number(value ?? 0);
  return `${amount < 0 ? '-' : ''}$${Math.abs(amount).toFixed(Math.abs(amount) < 1 && amount !== 0 ? 4 : 2)}`;
};
export const num = value => (value === null || value === undefined ? 'unlimited' : Number(value).toLocaleString('en-US'));
