// The API client: api() for every /v1 request, with bearer-token handling (a 401 opens the
// sign-in dialog once; concurrent requests wait on the same dialog and are retried with the
// token), withToken() for EventSource URLs, and the connection indicator in the top bar.
// Images from /v1 (thumbnails) come through api(…, { as: 'blob' }) as well, for the same header.
// upload() sends one file with XMLHttpRequest instead, for its upload progress events (fetch has
// none), with the same token handling, errors and answers as api().

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

/** The ApiError of a refused request: the API's JSON `{error, field}` worded exactly as the API
 * words it, else the body's text, else the status line. */
function errorOf(status, statusText, text) {
  let message = `${status} ${statusText}`.trim();
  let field = null;
  try {
    const err = JSON.parse(text);
    if (err && typeof err.error === 'string') {
      message = err.error;
      field = err.field ?? null;
    }
  } catch {
    if (text.trim()) message = text.trim();
  }
  return new ApiError(status, message, field);
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
  if (!res.ok) throw errorOf(res.status, res.statusText, await res.text());
  if (res.status === 204) return null;
  if (as === 'blob') return res.blob();
  const type = res.headers.get('Content-Type') || '';
  return type.includes('json') ? res.json() : res.text();
}

/** POST one file (the whole body, sent as `contentType`) with XMLHttpRequest, which reports the
 * upload's progress: onProgress(sentBytes, totalBytes) as the body goes out, onSent() once all of
 * it is out (the server may still be working on it). Aborting `signal` aborts the upload. The
 * answer and errors are api()'s: parsed JSON (or text), ApiError with the API's words; a 401 asks
 * for the token and sends the file again. */
export function upload(path, file, { contentType, onProgress, onSent, signal } = {}, retried = false) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new ApiError(0, 'upload cancelled'));
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    const t = token();
    if (t) xhr.setRequestHeader('Authorization', `Bearer ${t}`);
    if (contentType) xhr.setRequestHeader('Content-Type', contentType);
    xhr.upload.addEventListener('progress', (e) => onProgress?.(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.upload.addEventListener('load', () => onSent?.());
    const abort = () => xhr.abort();
    signal?.addEventListener('abort', abort, { once: true });
    const done = () => signal?.removeEventListener('abort', abort);
    xhr.addEventListener('abort', () => {
      done();
      reject(new ApiError(0, 'upload cancelled'));
    });
    xhr.addEventListener('error', () => {
      done();
      reject(new ApiError(0, 'cannot reach the server (the upload was cut off)'));
    });
    xhr.addEventListener('load', async () => {
      done();
      if (xhr.status === 401 && !retried) {
        if (t) sessionStorage.removeItem(TOKEN_KEY); // refused: ask again rather than resend it
        if (await askToken()) {
          resolve(upload(path, file, { contentType, onProgress, onSent, signal }, true));
          return;
        }
      }
      if (xhr.status < 200 || xhr.status >= 300) {
        reject(errorOf(xhr.status, xhr.statusText, xhr.responseText));
        return;
      }
      const type = xhr.getResponseHeader('Content-Type') || '';
      try {
        resolve(type.includes('json') ? JSON.parse(xhr.responseText) : xhr.responseText);
      } catch (e) {
        reject(new ApiError(xhr.status, `the server's answer is not JSON (${e.message})`));
      }
    });
    xhr.send(file);
  });
}

export function setConn(kind, text) {
  const el = $('#conn');
  el.dataset.state = kind;
  el.textContent = `${kind === 'ok' ? '●' : '✗'} ${text}`;
}
