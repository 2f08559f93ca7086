// Talks to the vmp3 HTTP API. The token lives in memory and sessionStorage (gone when the tab
// closes) and travels only in the Authorization header, never in a URL.

const SESSION_KEY = 'vmp3.session';

// An API failure: `code` is the problem's code (e.g. "not_media"), `status` the HTTP status
// (0 when the network failed).
export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code);
    this.status = status;
    this.code = code;
  }
}

let session = loadSession();

function loadSession() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY));
    if (saved && saved.token && saved.expiresAt > Date.now()) return saved;
  } catch {
    // No storage (privacy mode) or a damaged entry: start signed out.
  }
  return null;
}

export function currentSession() {
  if (session && session.expiresAt <= Date.now()) signOut();
  return session;
}

export function signOut() {
  session = null;
  try {
    sessionStorage.removeItem(SESSION_KEY);
  } catch {
    // Nothing stored.
  }
}

function authHeaders() {
  const s = currentSession();
  if (!s) throw new ApiError(401, 'unauthenticated', 'Please sign in.');
  return { Authorization: `Bearer ${s.token}` };
}

// Turns a failed response (problem+json or anything else) into an ApiError.
export async function errorFrom(response) {
  let problem = {};
  try {
    problem = await response.json();
  } catch {
    // Not JSON: keep the status only.
  }
  return new ApiError(response.status, problem.code || `http_${response.status}`, problem.detail);
}

async function request(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { cache: 'no-store', credentials: 'omit', ...options });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'The server could not be reached.');
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

function base64Utf8(text) {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

export async function register(username, password, email) {
  const body = { username, password };
  if (email) body.email = email;
  await request('/v1/auth/register', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
}

// credentials: 'omit' (in request) keeps the browser from showing its own password dialog
// when the server answers 401 with WWW-Authenticate.
export async function signIn(username, password) {
  const response = await request('/v1/auth/login', {
    method: 'POST',
    headers: { Authorization: `Basic ${base64Utf8(`${username}:${password}`)}` },
  });
  const body = await response.json();
  // Renew a minute early so a request never leaves with a token about to expire.
  const lifetime = Math.max(60, Number(body.expires_in) || 3600) * 1000 - 60000;
  session = { token: body.access_token, username, expiresAt: Date.now() + lifetime };
  try {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  } catch {
    // Storage refused: the session lasts until reload.
  }
  return session;
}

export async function listJobs(cursor) {
  const query = new URLSearchParams({ limit: '20' });
  if (cursor) query.set('cursor', cursor);
  const response = await request(`/v1/jobs?${query}`, { headers: authHeaders() });
  return response.json();
}

export async function getJob(id) {
  const response = await request(`/v1/jobs/${encodeURIComponent(id)}`, { headers: authHeaders() });
  return response.json();
}

export async function deleteJob(id) {
  await request(`/v1/jobs/${encodeURIComponent(id)}`, { method: 'DELETE', headers: authHeaders() });
}

// Notification settings: {email, events, push_events}.
export async function getNotificationSettings() {
  const response = await request('/v1/account/notifications', { headers: authHeaders() });
  return response.json();
}

export async function setEmailNotifications(on) {
  const response = await request('/v1/account/notifications', {
    method: 'PUT',
    headers: { ...authHeaders(), 'Content-Type': 'application/json' },
    body: JSON.stringify({ email: on }),
  });
  return response.json();
}

// The VAPID public key as the bytes pushManager.subscribe() takes as applicationServerKey.
export async function vapidPublicKey() {
  const response = await request('/v1/push/vapid-public-key');
  const { public_key: key } = await response.json();
  const base64 = key.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((key.length + 3) % 4);
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

// Registers a PushSubscription (its toJSON()); gives {id, endpoint, created_at}.
export async function addPushSubscription(subscription) {
  const response = await request('/v1/push/subscriptions', {
    method: 'POST',
    headers: { ...authHeaders(), 'Content-Type': 'application/json' },
    body: JSON.stringify(subscription),
  });
  return response.json();
}

export async function removePushSubscription(id) {
  await request(`/v1/push/subscriptions/${encodeURIComponent(id)}`, {
    method: 'DELETE',
    headers: authHeaders(),
  });
}

// Uploads one file. onProgress(sentBytes, totalBytes) follows the request body; the promise
// gives the new job, or fails with ApiError (code "aborted" after abort()).
export function upload(file, fields, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    form.append('file', file, file.name);
    xhr.open('POST', '/v1/jobs');
    xhr.setRequestHeader('Authorization', authHeaders().Authorization);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded, e.total);
    };
    xhr.onload = () => {
      let body = {};
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // Not JSON.
      }
      if (xhr.status === 202 || xhr.status === 201) resolve(body);
      else reject(new ApiError(xhr.status, body.code || `http_${xhr.status}`, body.detail));
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', 'The upload was interrupted.'));
    xhr.onabort = () => reject(new ApiError(0, 'aborted', 'The upload was cancelled.'));
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

// Follows a job's Server-Sent Events with fetch, so the token stays in a header (EventSource
// cannot send one). Calls onEvent(type, data) per event; resolves when the server ends the
// stream, rejects on errors; abort with `signal`.
export async function followEvents(id, onEvent, signal) {
  const response = await request(`/v1/jobs/${encodeURIComponent(id)}/events`, {
    headers: { ...authHeaders(), Accept: 'text/event-stream' },
    signal,
  });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let type = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;  // keep-alive comment
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') type = text;
          else if (field === 'data') data.push(text);
        }
        if (data.length) onEvent(type, data.join('\n'));
      }
    }
  } finally {
    // Also when onEvent threw: never leave the connection open behind us.
    reader.cancel().catch(() => {});
  }
}

// Downloads a job's MP3 with the token and hands it to the browser as a file.
export async function downloadMp3(job) {
  const response = await request(job.links.mp3, { headers: authHeaders() });
  const name =
    filenameFrom(response.headers.get('Content-Disposition')) ||
    job.input.filename.replace(/\.[^.]*$/, '') + '.mp3';
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  return name;
}

// The file name of a Content-Disposition header: filename* (RFC 8187) wins over filename.
export function filenameFrom(header) {
  if (!header) return '';
  const extended = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(header);
  if (extended) {
    try {
      return decodeURIComponent(extended[1].trim());
    } catch {
      // Malformed escapes: fall back to the plain parameter.
    }
  }
  const quoted = /filename\s*=\s*"((?:[^"\\]|\\.)*)"/i.exec(header);
  if (quoted) return quoted[1].replace(/\\(.)/g, '$1');
  const plain = /filename\s*=\s*([^;\s]+)/i.exec(header);
  return plain ? plain[1] : '';
}
