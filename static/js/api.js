// The API client: api() for every /v1 request, with bearer-token handling (a 401 opens the
// sign-in dialog once; concurrent requests wait on the same dialog and are retried with the
// token), withToken() for EventSource URLs, and the connection indicator in the top bar.
// Images from /v1 (thumbnails) come through api(…, { as: 'blob' }) as well, for the same header.

import { $ } from './dom.js';
import { state } from './state.js';

const TOKEN_KEY = 'vggserve.token';

export class ApiError extends Error {
  constructor(status, message, field = null) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

const token = () => sessionStorage.getItem(TOKEN_KEY);

/** EventSource cannot send headers, so the token rides in the query string instead. */
export function withToken(url) {
  const t = token();
  if (!t) return url;
  return `${url}${url.includes('?') ? '&' : '?'}access_token=${encodeURIComponent(t)}`;
}

/** Ask for a token (resolves true when one was given). After a cancel it stops asking until
 * the user presses "Sign in" (see signIn). */
export function askToken() {
  const { auth } = state;
  if (auth.declined) return Promise.resolve(false);
  if (auth.pending) return auth.pending;
  const dialog = $('#auth-dialog');
  const input = $('#auth-token');
  auth.pending = new Promise((resolve) => {
    input.value = '';
    dialog.returnValue = '';
    dialog.addEventListener('close', () => {
      auth.pending = null;
      const value = input.value.trim();
      if (dialog.returnValue === 'ok' && value) {
        sessionStorage.setItem(TOKEN_KEY, value);
        $('#sign-in').hidden = true;
        resolve(true);
      } else {
        auth.declined = true;
        $('#sign-in').hidden = false;
        setConn('bad', 'not signed in: the server needs a token');
        resolve(false);
      }
    }, { once: true });
    dialog.showModal();
    input.focus();
  });
  return auth.pending;
}

/** The "Sign in" button: ask again even after a cancel. */
export function signIn() {
  state.auth.declined = false;
  return askToken();
}

/** A /v1 request. The answer: parsed JSON, text, or with `as: 'blob'` a Blob (images, which
 * need the token too and so cannot be plain <img src> links). */
export async function api(path, { method = 'GET', json, body, as } = {}, retried = false) {
  const headers = {};
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  const init = { method, headers };
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body; // FormData: the browser writes the multipart Content-Type with its boundary
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `cannot reach the server (${e.message})`);
  }
  if (res.status === 401 && !retried) {
    // A stored token that the server refuses is useless: forget it before asking again.
    if (t) sessionStorage.removeItem(TOKEN_KEY);
    if (await askToken()) return api(path, { method, json, body, as }, true);
  }
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    let field = null;
    const text = await res.text();
    try {
      const err = JSON.parse(text);
      if (err && typeof err.error === 'string') {
        message = err.error; // shown exactly as the API words it
        field = err.field ?? null;
      }
    } catch {
      if (text.trim()) message = text.trim();
    }
    throw new ApiError(res.status, message, field);
  }
  if (res.status === 204) return null;
  if (as === 'blob') return res.blob();
  const type = res.headers.get('Content-Type') || '';
  return type.includes('json') ? res.json() : res.text();
}

export function setConn(kind, text) {
  const el = $('#conn');
  el.dataset.state = kind;
  el.textContent = `${kind === 'ok' ? '●' : '✗'} ${text}`;
}
