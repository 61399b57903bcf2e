// The dashboard's only way to the server: the public API with the signed-in credential as a bearer token.
// Every path is written out in full where it is used (tests check each one against /openapi/v1.json).

const storageKey = 'llmtune.credential';

/** The credential lives in sessionStorage: gone with the tab, never in a URL or a cookie. */
export const session = {
  get() {
    try { return JSON.parse(sessionStorage.getItem(storageKey)) ?? null; } catch { return null; }
  },
  set(kind, token) { sessionStorage.setItem(storageKey, JSON.stringify({ kind, token })); },
  clear() { sessionStorage.removeItem(storageKey); },
};

/** An error answer from the API; message is the API's own error message. */
export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(extra = {}) {
  const credential = session.get();
  return credential ? { Authorization: `Bearer ${credential.token}`, ...extra } : extra;
}

async function errorFrom(response) {
  let message = `The server answered ${response.status} ${response.statusText}.`;
  let code;
  try {
    const body = await response.json();
    if (body?.error?.message) {
      message = body.error.message;
      code = body.error.code;
    }
  } catch { /* not JSON: keep the status line */ }
  if (response.status === 401 && session.get()) {
    // The key was revoked or expired (or the token changed): nothing else will work, so sign out.
    session.clear();
    window.dispatchEvent(new CustomEvent('llmtune:signed-out', { detail: message }));
  }
  return new ApiError(response.status, message, code);
}

async function send(method, path, body, init = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: headers(body === undefined || body instanceof FormData ? {} : { 'Content-Type': 'application/json' }),
      body: body === undefined ? undefined : body instanceof FormData ? body : JSON.stringify(body),
      ...init,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, `Could not reach the server (${e.message}).`);
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

/** Sends a request and returns the JSON answer (null when there is none). */
export async function api(method, path, body, init) {
  const response = await send(method, path, body, init);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** Downloads an authenticated binary answer as a file. */
export async function download(path, filename) {
  const response = await send('GET', path);
  const url = URL.createObjectURL(await response.blob());
  const link = Object.assign(document.createElement('a'), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * POSTs with "stream": true and reads the server-sent events as they come: onEvent(name, data) for each.
 * An "error" event carries the API's error shape.
 */
export async function stream(path, body, onEvent, signal) {
  const response = await send('POST', path, { ...body, stream: true }, { signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      if (data.length === 0) continue;
      const parsed = JSON.parse(data.join('\n'));
      if (name === 'error') throw new ApiError(response.status, parsed?.error?.message ?? 'The stream failed.', parsed?.error?.code);
      onEvent(name, parsed);
    }
  }
}

/** A path segment; model ids keep their slashes (the routes take them whole). */
export function seg(value) {
  return String(value).split('/').map(encodeURIComponent).join('/');
}
