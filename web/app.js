// The vmp3 page: accounts, uploads with progress, live conversion progress, downloads and the
// list of the user's files. Plain DOM; every piece of user data goes in through textContent.
import * as api from './api.js';
import * as fmt from './format.js';

const $ = (id) => document.getElementById(id);

const TERMINAL = new Set(['done', 'failed', 'cancelled']);
const MAX_UPLOADS = 2;  // at once; browsers allow 6 connections per host and events need some
const MAX_STREAMS = 3;  // live event streams; further active jobs are polled
const POLL_MS = 3000;

// One row of the list: a file being uploaded (job is null until the server accepts it) or a
// job the server knows.
//   { key, name, size, job, progress, live, upload: {state, file, fields, loaded, total, ...} }
const items = new Map();
let nextCursor = null;
let localCount = 0;
const uploadQueue = [];
let activeUploads = 0;
let askedNotifications = false;

// ---------------------------------------------------------------------------------------------
// Announcements and notifications

let announceTimer;
function announce(text) {
  const region = $('announcer');
  region.textContent = '';
  clearTimeout(announceTimer);
  // A fresh text node after a tick makes screen readers read repeated messages too.
  announceTimer = setTimeout(() => {
    region.textContent = text;
  }, 50);
}

function askNotificationPermission() {
  if (askedNotifications || !('Notification' in window)) return;
  askedNotifications = true;
  if (Notification.permission === 'default') Notification.requestPermission().catch(() => {});
}

function notify(item) {
  if (!document.hidden || !('Notification' in window) || Notification.permission !== 'granted') return;
  const ok = item.job.status === 'done';
  const note = new Notification(ok ? 'Your MP3 is ready' : 'A conversion did not work', {
    body: ok ? item.name : `${item.name}: ${jobError(item)}`,
    tag: item.key,
    icon: '/assets/icon.svg',
  });
  note.onclick = () => {
    window.focus();
    note.close();
  };
}

// ---------------------------------------------------------------------------------------------
// Views

function showError(element, text) {
  element.textContent = text;
  element.hidden = !text;
}

function showSignedOut(notice) {
  $('account').hidden = true;
  $('signed-in').hidden = true;
  $('signed-out').hidden = false;
  showError($('session-notice'), notice || '');
  document.title = 'vmp3 – sign in';
}

function showSignedIn(session, focus) {
  $('who').textContent = session.username;
  $('account').hidden = false;
  $('signed-out').hidden = true;
  $('signed-in').hidden = false;
  document.title = 'vmp3 – your files';
  showNotificationSettings();
  if (focus) {
    $('convert-title').tabIndex = -1;
    $('convert-title').focus();
  }
  loadJobs(true);
}

function clearItems() {
  for (const item of items.values()) if (item.upload?.handle) item.upload.handle.abort();
  uploadQueue.length = 0;
  items.clear();
  $('jobs').replaceChildren();
  nextCursor = null;
  $('more').hidden = true;
}

function endSession(notice) {
  api.signOut();
  watcher.stopAll();
  clearItems();
  showSignedOut(notice);
  $('sign-in-username').focus();
}

// Every API failure passes here first: an expired or refused token ends the session.
function sessionLost(error) {
  if (error?.status !== 401) return false;
  endSession('Your session has ended. Please sign in again.');
  return true;
}

// ---------------------------------------------------------------------------------------------
// Sign in and registration

function setBusy(form, busy, label) {
  const button = form.querySelector('button[type=submit]');
  if (busy) {
    button.dataset.label = button.textContent;
    button.textContent = label;
  } else if (button.dataset.label) {
    button.textContent = button.dataset.label;
  }
  button.disabled = busy;
  form.setAttribute('aria-busy', String(busy));
}

function markInvalid(inputs, invalid) {
  for (const input of inputs) input.setAttribute('aria-invalid', String(invalid.includes(input)));
  if (invalid.length) invalid[0].focus();
}

async function onSignIn(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const user = $('sign-in-username');
  const pass = $('sign-in-password');
  const error = $('sign-in-error');
  const missing = [user, pass].filter((input) => !input.value);
  markInvalid([user, pass], missing);
  if (missing.length) {
    showError(error, 'Enter your username and your password.');
    return;
  }
  showError(error, '');
  setBusy(form, true, 'Signing in…');
  try {
    const session = await api.signIn(user.value.trim(), pass.value);
    form.reset();
    showSignedIn(session, true);
    announce(`Signed in as ${session.username}.`);
  } catch (e) {
    const text = e.status === 401 ? 'Wrong username or password.' : fmt.errorSentence(e.code, e.message);
    showError(error, text);
    if (e.status === 401) markInvalid([user, pass], [pass]);
  } finally {
    setBusy(form, false);
  }
}

async function onRegister(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const user = $('register-username');
  const pass = $('register-password');
  const email = $('register-email');
  const error = $('register-error');
  const username = user.value.trim();
  let problem = '';
  let bad = [];
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$/.test(username)) {
    problem = 'Choose a username of 3 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit.';
    bad = [user];
  } else if (pass.value.length < 8) {
    problem = 'Choose a password of at least 8 characters.';
    bad = [pass];
  } else if (email.value && !email.checkValidity()) {
    problem = 'Enter a valid email address, or leave it empty.';
    bad = [email];
  }
  markInvalid([user, pass, email], bad);
  showError(error, problem);
  if (problem) return;
  setBusy(form, true, 'Creating account…');
  try {
    await api.register(username, pass.value, email.value.trim());
    const session = await api.signIn(username, pass.value);
    form.reset();
    showSignedIn(session, true);
    announce(`Account created. Signed in as ${session.username}.`);
  } catch (e) {
    let text = fmt.errorSentence(e.code, e.message);
    if (e.code === 'already_exists') text = 'That username is taken. Please choose another one.';
    if (e.code === 'permission_denied') text = 'This server does not accept new accounts.';
    showError(error, text);
    if (e.code === 'already_exists') markInvalid([user, pass, email], [user]);
  } finally {
    setBusy(form, false);
  }
}

// ---------------------------------------------------------------------------------------------
// The list

function part(item, selector) {
  return item.el.querySelector(selector);
}

function createRow(item, atTop) {
  const row = $('job-template').content.firstElementChild.cloneNode(true);
  item.el = row;
  part(item, '.download').addEventListener('click', () => onDownload(item));
  part(item, '.retry').addEventListener('click', () => onRetry(item));
  part(item, '.cancel').addEventListener('click', () => onCancelUpload(item));
  part(item, '.delete').addEventListener('click', () => onDelete(item));
  const list = $('jobs');
  if (atTop) list.prepend(row);
  else list.append(row);
  $('jobs-empty').hidden = true;
}

function jobError(item) {
  const { job } = item;
  if (job.status === 'cancelled') return fmt.errorSentence('cancelled');
  return fmt.errorSentence(job.error?.code, job.error?.message || 'The conversion failed.');
}

// The badge and its colour for each state of a row.
function badgeOf(item) {
  const upload = item.upload;
  if (upload && upload.state !== 'done') {
    return {
      waiting: ['Waiting', 'waiting'],
      sending: ['Uploading', 'active'],
      finishing: ['Uploading', 'active'],
      failed: [upload.error?.code === 'aborted' ? 'Cancelled' : 'Upload failed', 'bad'],
    }[upload.state];
  }
  return {
    queued: ['Waiting', 'waiting'],
    converting: ['Converting', 'active'],
    done: ['Ready', 'good'],
    failed: ['Failed', 'bad'],
    cancelled: ['Cancelled', 'bad'],
  }[item.job?.status] || ['Unknown', 'waiting'];
}

function render(item) {
  if (!item.el) return;
  const { job, upload, name } = item;
  const row = item.el;
  const hadFocus = row.contains(document.activeElement) ? document.activeElement : null;
  row.dataset.key = item.key;
  row.dataset.status = upload && upload.state !== 'done' ? `upload-${upload.state}` : job?.status || '';

  part(item, '.job-name').textContent = name;
  const meta = [fmt.bytes(item.size)];
  const options = job?.options || upload?.options;
  if (fmt.quality(options)) meta.push(fmt.quality(options));
  if (job?.created_at) meta.push(fmt.when(job.created_at));
  if (job?.status === 'done' && job.expires_at) meta.push(`kept until ${fmt.when(job.expires_at, false)}`);
  // Lines break only between the facts, never inside a date.
  part(item, '.job-meta').textContent = meta.filter(Boolean).map((m) => m.replace(/ /g, '\u00a0')).join(' · ');

  const [badgeText, badgeKind] = badgeOf(item);
  const badge = part(item, '.badge');
  badge.textContent = badgeText;
  badge.className = `badge ${badgeKind}`;

  // Bars while work is under way; an ended job shows its result instead.
  const running = job && (job.status === 'queued' || job.status === 'converting');
  const uploadBar = part(item, '.upload-bar');
  uploadBar.hidden = !upload || (job && !running);
  if (upload) {
    const progress = uploadBar.querySelector('progress');
    progress.setAttribute('aria-label', `Upload of ${name}`);
    const fraction = upload.total ? upload.loaded / upload.total : 0;
    progress.value = upload.state === 'done' ? 1 : fraction;
    let detail = '';
    if (upload.state === 'waiting') detail = 'Waiting for another upload to finish…';
    if (upload.state === 'sending') {
      detail = `${fmt.bytes(Math.round(fraction * item.size))} of ${fmt.bytes(item.size)}`;
      if (upload.rate > 0) {
        const left = ((1 - fraction) * item.size) / upload.rate;
        detail += ` · ${fmt.bytes(Math.round(upload.rate))}/s · ${fmt.timeLeft(left)}`;
      }
    }
    if (upload.state === 'finishing') detail = 'Finishing…';
    if (upload.state === 'done') detail = 'Done';
    if (upload.state === 'failed') detail = `Stopped at ${fmt.percent(fraction)}`;
    uploadBar.querySelector('.bar-detail').textContent = detail;
  }

  const convertBar = part(item, '.convert-bar');
  convertBar.hidden = !running;
  if (running) {
    const progress = convertBar.querySelector('progress');
    progress.setAttribute('aria-label', `Conversion of ${name}`);
    const fraction = Math.max(item.progress || 0, job.progress || 0);
    progress.value = fraction;
    convertBar.querySelector('.bar-detail').textContent =
      job.status === 'queued' && !fraction ? 'Waiting for a free converter…' : fmt.percent(fraction);
  }

  let errorText = '';
  if (upload?.state === 'failed') errorText = fmt.errorSentence(upload.error?.code, upload.error?.message);
  else if (job && (job.status === 'failed' || job.status === 'cancelled')) errorText = jobError(item);
  if (item.actionError) errorText = item.actionError;
  showError(part(item, '.job-error'), errorText);

  const download = part(item, '.download');
  download.hidden = job?.status !== 'done';
  if (!download.hidden && !item.downloading) {
    const facts = [fmt.bytes(job.output?.size), fmt.duration(job.output?.duration)].filter(Boolean);
    download.replaceChildren('Download MP3');
    if (facts.length) {
      const small = document.createElement('span');
      small.className = 'button-facts';
      small.textContent = facts.join(' · ');
      download.append(' ', small);
    }
    download.setAttribute('aria-label', `Download the MP3 of ${name} (${facts.join(', ')})`);
  }

  const uploading = upload && (upload.state === 'waiting' || upload.state === 'sending');
  const cancel = part(item, '.cancel');
  cancel.hidden = !uploading;
  cancel.setAttribute('aria-label', `Cancel the upload of ${name}`);
  const retry = part(item, '.retry');
  retry.hidden = upload?.state !== 'failed';
  retry.setAttribute('aria-label', `Upload ${name} again`);
  const remove = part(item, '.delete');
  remove.hidden = !(job || upload?.state === 'failed');
  remove.textContent = job ? 'Delete' : 'Remove';
  remove.setAttribute('aria-label', `${remove.textContent} ${name}`);

  // A button that just disappeared took the focus with it: hand it to the row's next action.
  if (hadFocus && (hadFocus.hidden || !row.contains(hadFocus))) {
    const next = [...row.querySelectorAll('.job-actions button')].find((b) => !b.hidden);
    if (next) next.focus();
  }
}

function removeItem(item) {
  const row = item.el;
  const list = $('jobs');
  const rows = [...list.children];
  const index = rows.indexOf(row);
  const hadFocus = row.contains(document.activeElement);
  items.delete(item.key);
  row.remove();
  $('jobs-empty').hidden = items.size > 0;
  if (hadFocus) {
    const neighbour = list.children[index] || list.children[index - 1];
    const target = neighbour?.querySelector('.job-actions button:not([hidden])') || $('jobs-title');
    if (target === $('jobs-title')) target.tabIndex = -1;
    target.focus();
  }
}

// Adds or refreshes a row from the server's view of a job.
function upsertJob(job) {
  let item = items.get(job.id);
  if (!item) {
    item = {
      key: job.id,
      name: job.input?.filename || 'upload',
      size: job.input?.size,
      job,
      progress: job.progress,
      live: !TERMINAL.has(job.status),  // followed from here on: its changes are announced
    };
    items.set(job.id, item);
    createRow(item, false);
  }
  updateJob(item, job);
  return item;
}

// Applies a newer state of a job: announces changes, notifies when the tab is hidden.
function updateJob(item, job) {
  const before = item.job?.status;
  item.job = job;
  if (job.status === 'done') item.progress = 1;
  if (before && before !== job.status && item.live) {
    if (job.status === 'converting') announce(`${item.name}: converting.`);
    if (job.status === 'done') announce(`${item.name}: the MP3 is ready to download.`);
    if (job.status === 'failed' || job.status === 'cancelled') announce(`${item.name}: ${jobError(item)}`);
    if (TERMINAL.has(job.status)) notify(item);
  }
  render(item);
  if (!TERMINAL.has(job.status)) watcher.watch(job.id);
}

// Orders the rows: uploads from this page first, then the listed jobs newest first, then the
// rest. Only rows out of place move, so a focused row usually keeps its focus.
function arrangeRows(listedIds) {
  const list = $('jobs');
  const rows = [...list.children];
  const uploaded = rows.filter((row) => items.get(row.dataset.key)?.upload);
  const listed = listedIds.map((id) => items.get(id)?.el).filter((row) => row && !uploaded.includes(row));
  const rest = rows.filter((row) => !uploaded.includes(row) && !listed.includes(row));
  let cursor = list.firstElementChild;
  for (const row of [...uploaded, ...listed, ...rest]) {
    if (row === cursor) cursor = cursor.nextElementSibling;
    else list.insertBefore(row, cursor);
  }
}

// Loads the first page of jobs (reset) or the next one.
async function loadJobs(reset) {
  const error = $('jobs-error');
  try {
    const page = await api.listJobs(reset ? null : nextCursor);
    showError(error, '');
    if (reset) {
      const listed = new Set(page.jobs.map((j) => j.id));
      for (const item of [...items.values()]) if (!item.upload && !listed.has(item.key)) removeItem(item);
    }
    for (const job of page.jobs) upsertJob(job);
    if (reset) arrangeRows(page.jobs.map((j) => j.id));
    nextCursor = page.next_cursor;
    $('more').hidden = !nextCursor;
    $('jobs-empty').hidden = items.size > 0;
  } catch (e) {
    if (!sessionLost(e)) showError(error, `Your files could not be loaded. ${fmt.errorSentence(e.code, e.message)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Following jobs: Server-Sent Events read with fetch (the token stays in a header), a few at a
// time; the rest are polled. A broken stream falls back to one read of the job, then retries.

const watcher = (() => {
  const streams = new Map();  // job id -> AbortController
  const polled = new Set();
  let pollTimer = null;

  const sleep = (ms, signal) =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });

  function gone(id) {
    const item = items.get(id);
    if (item && !item.upload) removeItem(item);
  }

  function apply(job) {
    const item = items.get(job.id);
    if (item) updateJob(item, job);
    return TERMINAL.has(job.status);
  }

  async function follow(id) {
    const controller = new AbortController();
    streams.set(id, controller);
    let delay = 1000;
    while (!controller.signal.aborted && items.has(id)) {
      let ended = false;
      try {
        await api.followEvents(id, (type, data) => {
          delay = 1000;
          const value = JSON.parse(data);
          if (type === 'status') ended = apply(value) || ended;
          if (type === 'progress') {
            const item = items.get(id);
            if (item) {
              item.progress = Math.max(item.progress || 0, value.progress);
              render(item);
            }
          }
        }, controller.signal);
      } catch (e) {
        if (controller.signal.aborted) break;
        if (e.status === 404) {
          gone(id);
          break;
        }
        if (sessionLost(e)) break;
      }
      if (ended || controller.signal.aborted) break;
      try {
        if (apply(await api.getJob(id))) break;
      } catch (e) {
        if (e.status === 404) {
          gone(id);
          break;
        }
        if (sessionLost(e)) break;
      }
      await sleep(delay, controller.signal);
      delay = Math.min(delay * 2, 15000);
    }
    if (streams.get(id) === controller) streams.delete(id);
    if (!controller.signal.aborted) {
      const next = polled.values().next();
      if (!next.done) {
        polled.delete(next.value);
        follow(next.value);
      }
    }
  }

  async function poll() {
    pollTimer = null;
    for (const id of [...polled]) {
      try {
        if (apply(await api.getJob(id))) polled.delete(id);
      } catch (e) {
        if (e.status === 404) {
          polled.delete(id);
          gone(id);
        } else if (sessionLost(e)) {
          return;
        }
      }
    }
    if (polled.size && !pollTimer) pollTimer = setTimeout(poll, POLL_MS);
  }

  return {
    watch(id) {
      if (streams.has(id) || polled.has(id)) return;
      if (streams.size < MAX_STREAMS) {
        follow(id);
      } else {
        polled.add(id);
        if (!pollTimer) pollTimer = setTimeout(poll, POLL_MS);
      }
    },
    stop(id) {
      streams.get(id)?.abort();
      streams.delete(id);
      polled.delete(id);
    },
    stopAll() {
      for (const controller of streams.values()) controller.abort();
      streams.clear();
      polled.clear();
      clearTimeout(pollTimer);
      pollTimer = null;
    },
  };
})();

// ---------------------------------------------------------------------------------------------
// Uploads

function qualityFields() {
  const [name, value] = $('quality').value.split(':');
  return { [name]: value };
}

function addFiles(files) {
  if (!files.length) return;
  askNotificationPermission();
  const fields = qualityFields();
  const options = fields.bitrate ? { bitrate: Number(fields.bitrate) } : { quality: fields.quality };
  for (const file of files) {
    localCount += 1;
    const item = {
      key: `local-${localCount}`,
      name: file.name,
      size: file.size,
      job: null,
      live: true,
      upload: { state: 'waiting', file, fields, options, loaded: 0, total: 0, rate: 0 },
    };
    items.set(item.key, item);
    createRow(item, true);
    if (file.size === 0) {
      item.upload.state = 'failed';
      item.upload.error = { code: 'empty_input' };
    } else {
      uploadQueue.push(item);
    }
    render(item);
  }
  announce(files.length === 1 ? `Uploading ${files[0].name}.` : `Uploading ${files.length} files.`);
  pumpUploads();
}

function pumpUploads() {
  while (activeUploads < MAX_UPLOADS && uploadQueue.length) startUpload(uploadQueue.shift());
}

async function startUpload(item) {
  const upload = item.upload;
  activeUploads += 1;
  Object.assign(upload, { state: 'sending', loaded: 0, total: 0, rate: 0, error: null });
  let sample = { time: performance.now(), loaded: 0 };
  render(item);
  try {
    upload.handle = api.upload(upload.file, upload.fields, (loaded, total) => {
      const now = performance.now();
      const seconds = (now - sample.time) / 1000;
      if (seconds >= 0.25) {
        // Bytes per second of the file, smoothed so the time left does not jump about.
        const rate = (((loaded - sample.loaded) / total) * item.size) / seconds;
        upload.rate = upload.rate ? 0.7 * upload.rate + 0.3 * rate : rate;
        sample = { time: now, loaded };
      }
      upload.loaded = loaded;
      upload.total = total;
      if (loaded >= total) upload.state = 'finishing';
      render(item);
    });
    const job = await upload.handle.promise;
    upload.state = 'done';
    upload.loaded = upload.total = 1;
    upload.handle = null;
    items.delete(item.key);
    item.key = job.id;
    items.set(job.id, item);
    announce(`${item.name} uploaded. Converting it now.`);
    updateJob(item, job);
  } catch (e) {
    upload.handle = null;
    upload.state = 'failed';
    upload.error = e;
    // Rows cleared by signing out are gone already: nothing to show or say.
    if (items.get(item.key) === item && !sessionLost(e)) {
      render(item);
      announce(`${item.name}: ${fmt.errorSentence(e.code, e.message)}`);
    }
  } finally {
    activeUploads -= 1;
    pumpUploads();
  }
}

function onCancelUpload(item) {
  const upload = item.upload;
  if (upload.handle) {
    upload.handle.abort();  // the upload's promise fails with "aborted" and renders the row
    return;
  }
  const queued = uploadQueue.indexOf(item);
  if (queued >= 0) uploadQueue.splice(queued, 1);
  upload.state = 'failed';
  upload.error = { code: 'aborted' };
  render(item);
  announce(`${item.name}: upload cancelled.`);
}

function onRetry(item) {
  item.actionError = '';
  item.upload.state = 'waiting';
  item.upload.error = null;
  uploadQueue.push(item);
  render(item);
  pumpUploads();
}

// ---------------------------------------------------------------------------------------------
// Row actions

async function onDownload(item) {
  const button = part(item, '.download');
  item.downloading = true;
  item.actionError = '';
  button.disabled = true;
  button.textContent = 'Downloading…';
  button.setAttribute('aria-label', `Downloading the MP3 of ${item.name}`);
  try {
    const name = await api.downloadMp3(item.job);
    announce(`Downloaded ${name}.`);
  } catch (e) {
    if (sessionLost(e)) return;
    item.actionError = `The download did not work. ${fmt.errorSentence(e.code, e.message)}`;
  } finally {
    item.downloading = false;
    button.disabled = false;
    render(item);
  }
}

async function onDelete(item) {
  if (!item.job) {
    removeItem(item);
    return;
  }
  const running = !TERMINAL.has(item.job.status);
  const question = running
    ? `Stop converting “${item.name}” and delete it?`
    : `Delete “${item.name}” and its MP3? This cannot be undone.`;
  if (!window.confirm(question)) return;
  try {
    watcher.stop(item.key);
    await api.deleteJob(item.key);
    removeItem(item);
    announce(`Deleted ${item.name}.`);
  } catch (e) {
    if (sessionLost(e)) return;
    if (e.status === 404) {
      removeItem(item);
      return;
    }
    item.actionError = `It could not be deleted. ${fmt.errorSentence(e.code, e.message)}`;
    render(item);
  }
}

// ---------------------------------------------------------------------------------------------
// Notification settings: Web Push to this browser, and e-mail

// Registered with its own folder as scope, which needs no Service-Worker-Allowed header: push
// reaches a registration of any scope, and the worker handles no fetches (see sw.js).
const WORKER_URL = '/assets/sw.js';
const WORKER_SCOPE = '/assets/';
const PUSH_HINT = 'Your browser shows them on this device.';

function pushSupported() {
  return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
}

// Why push cannot be switched on in this browser, or ''.
function pushUnavailable() {
  if (!pushSupported()) return 'This browser cannot show notifications while the page is closed.';
  if (Notification.permission === 'denied') {
    return 'Notifications are blocked for this site. Allow them in your browser’s site settings to turn this on.';
  }
  return '';
}

// The subscription this user made in this browser, {id, endpoint}, remembered per user so the
// switch can delete it on the server later (the server gives no way to look it up).
function pushKey() {
  return `vmp3.push.${api.currentSession()?.username}`;
}

function savedPush() {
  try {
    return JSON.parse(localStorage.getItem(pushKey()));
  } catch {
    return null;
  }
}

function savePush(value) {
  try {
    if (value) localStorage.setItem(pushKey(), JSON.stringify(value));
    else localStorage.removeItem(pushKey());
  } catch {
    // Storage refused: the switch shows off after a reload; the server drops the subscription
    // once the browser's push service reports it gone.
  }
}

// A switch at work keeps its focus (a disabled one would lose it) but ignores clicks.
function setSwitchBusy(input, busy) {
  if (busy) input.setAttribute('aria-busy', 'true');
  else input.removeAttribute('aria-busy');
}

function isSwitchBusy(input) {
  return input.getAttribute('aria-busy') === 'true';
}

// Shows the push switch as this browser and this user's saved subscription allow.
async function showPushState() {
  const input = $('push-switch');
  const why = pushUnavailable();
  $('push-hint').textContent = why || PUSH_HINT;
  if (why) {
    input.checked = false;
    input.disabled = true;
    return;
  }
  let subscription = null;
  try {
    const registration = await navigator.serviceWorker.getRegistration(WORKER_SCOPE);
    subscription = await registration?.pushManager.getSubscription();
  } catch {
    // No registration to read: the switch shows off.
  }
  if (isSwitchBusy(input)) return;  // the person switched meanwhile
  const saved = savedPush();
  input.checked = Boolean(saved && subscription && subscription.endpoint === saved.endpoint);
  input.disabled = false;
}

// Resolves once the registration has an active worker, which pushManager.subscribe() needs.
// (navigator.serviceWorker.ready would wait forever: the page is outside the worker's scope.)
function activeWorker(registration) {
  if (registration.active) return Promise.resolve(registration.active);
  const worker = registration.installing || registration.waiting;
  return new Promise((resolve, reject) => {
    worker.addEventListener('statechange', () => {
      if (worker.state === 'activated') resolve(worker);
      if (worker.state === 'redundant') reject(new DOMException('The service worker did not start.', 'InvalidStateError'));
    });
  });
}

function sameBytes(buffer, bytes) {
  if (!buffer) return false;
  const a = new Uint8Array(buffer);
  return a.length === bytes.length && a.every((byte, i) => byte === bytes[i]);
}

class PushRefused extends Error {}

async function turnPushOn() {
  const permission = await Notification.requestPermission();
  if (permission === 'denied') throw new PushRefused('');  // the hint explains it
  if (permission !== 'granted') throw new PushRefused('You did not allow notifications, so they stay off.');
  const registration = await navigator.serviceWorker.register(WORKER_URL, { scope: WORKER_SCOPE });
  await activeWorker(registration);
  const key = await api.vapidPublicKey();
  let subscription = await registration.pushManager.getSubscription();
  if (subscription && !sameBytes(subscription.options.applicationServerKey, key)) {
    await subscription.unsubscribe();  // made for another server key: useless now
    subscription = null;
  }
  subscription ||= await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  const saved = await api.addPushSubscription(subscription.toJSON());
  savePush({ id: saved.id, endpoint: subscription.endpoint });
}

async function turnPushOff() {
  const saved = savedPush();
  if (saved) {
    try {
      await api.removePushSubscription(saved.id);
    } catch (e) {
      if (e.status !== 404) throw e;  // 404: the server forgot it already
    }
    savePush(null);
  }
  const registration = await navigator.serviceWorker.getRegistration(WORKER_SCOPE);
  const subscription = await registration?.pushManager.getSubscription();
  // The server sends nothing more; a browser that cannot unsubscribe now only keeps an unused
  // subscription, which the next switch-on reuses.
  await subscription?.unsubscribe().catch(() => {});
}

function pushErrorText(e, on) {
  if (e instanceof PushRefused) return e.message;
  if (e instanceof api.ApiError) return fmt.errorSentence(e.code, e.message);
  // The browser's own failures (DOMException): AbortError is its push service out of reach.
  const what = on ? 'turned on' : 'turned off';
  if (on && e?.name === 'AbortError') {
    return `Notifications could not be turned on: your browser could not subscribe to its push service (${e.message}). Private windows cannot get them; in a normal window, please try again later.`;
  }
  return `Notifications could not be ${what}: ${fmt.sentence(e?.message || 'your browser refused')}`;
}

async function onPushChange() {
  const input = $('push-switch');
  const on = input.checked;
  showError($('push-error'), '');
  setSwitchBusy(input, true);
  try {
    if (on) await turnPushOn();
    else await turnPushOff();
    announce(on ? 'You will be notified when your files are ready.' : 'Notifications are off.');
  } catch (e) {
    if (sessionLost(e)) return;
    input.checked = !on;
    showError($('push-error'), pushErrorText(e, on));
  } finally {
    setSwitchBusy(input, false);
    const why = pushUnavailable();
    if (why) {
      // Blocked just now (or before): the hint says why and how to change it.
      $('push-hint').textContent = why;
      input.checked = false;
      input.disabled = true;
    }
  }
}

async function loadEmailSetting() {
  const input = $('email-switch');
  input.disabled = true;
  try {
    const settings = await api.getNotificationSettings();
    showError($('email-error'), '');
    input.checked = Boolean(settings.email);
    input.disabled = false;
  } catch (e) {
    if (sessionLost(e)) return;
    showError($('email-error'), `Your e-mail setting could not be loaded. ${fmt.errorSentence(e.code, e.message)}`);
  }
}

async function onEmailChange() {
  const input = $('email-switch');
  const on = input.checked;
  showError($('email-error'), '');
  setSwitchBusy(input, true);
  try {
    const settings = await api.setEmailNotifications(on);
    input.checked = Boolean(settings.email);
    announce(on ? 'You will get an e-mail when a conversion ends.' : 'No more e-mails about conversions.');
  } catch (e) {
    if (sessionLost(e)) return;
    input.checked = !on;
    // A 409 says why (no address on the account, or no mail relay on the server): its words.
    showError($('email-error'), fmt.errorSentence(e.code, e.message));
  } finally {
    setSwitchBusy(input, false);
  }
}

function showNotificationSettings() {
  showError($('push-error'), '');
  showError($('email-error'), '');
  showPushState();
  loadEmailSetting();
}

function setUpNotificationSettings() {
  for (const [input, onChange] of [[$('push-switch'), onPushChange], [$('email-switch'), onEmailChange]]) {
    input.addEventListener('click', (e) => {
      if (isSwitchBusy(input)) e.preventDefault();
    });
    input.addEventListener('change', onChange);
  }
}

// ---------------------------------------------------------------------------------------------
// Wiring

function setUpDropZone() {
  const zone = $('drop-zone');
  const input = $('file-input');
  $('choose-files').addEventListener('click', () => input.click());
  zone.addEventListener('click', (e) => {
    if (e.target === zone || !e.target.closest('button')) input.click();
  });
  input.addEventListener('change', () => {
    addFiles([...input.files]);
    input.value = '';
  });
  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
  let depth = 0;
  // The whole page accepts a drop, so a near miss never opens the file in the tab instead.
  document.addEventListener('dragenter', (e) => {
    if (!hasFiles(e)) return;
    depth += 1;
    zone.classList.add('dragging');
  });
  document.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.classList.remove('dragging');
  });
  document.addEventListener('dragover', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = $('signed-in').hidden ? 'none' : 'copy';
  });
  document.addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    zone.classList.remove('dragging');
    if (!$('signed-in').hidden) addFiles([...e.dataTransfer.files]);
  });
}

function start() {
  $('sign-in-form').addEventListener('submit', onSignIn);
  $('register-form').addEventListener('submit', onRegister);
  $('sign-out').addEventListener('click', () => {
    const busy = [...items.values()].some((i) => i.upload && ['waiting', 'sending', 'finishing'].includes(i.upload.state));
    if (busy && !window.confirm('Uploads are still running. Sign out and stop them?')) return;
    endSession('You have signed out.');
  });
  $('refresh').addEventListener('click', () => loadJobs(true));
  $('more').addEventListener('click', () => loadJobs(false));
  // The chosen quality is remembered (it is not sensitive); storage may be refused.
  try {
    const saved = localStorage.getItem('vmp3.quality');
    if (saved && [...$('quality').options].some((o) => o.value === saved)) $('quality').value = saved;
  } catch {
    // Keep the default.
  }
  $('quality').addEventListener('change', () => {
    try {
      localStorage.setItem('vmp3.quality', $('quality').value);
    } catch {
      // Not remembered.
    }
  });
  setUpDropZone();
  setUpNotificationSettings();
  window.addEventListener('beforeunload', (e) => {
    if ([...items.values()].some((i) => i.upload?.handle)) e.preventDefault();
  });

  const session = api.currentSession();
  if (session) showSignedIn(session, false);
  else showSignedOut();
}

start();
