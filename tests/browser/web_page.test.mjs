// The web page end to end: the real `vmp3 serve` (VMP3_BINARY) and headless Chromium, driven the
// way a person would use it. Screenshots of each step go to VMP3_SCREENSHOT_DIR
// (default build/browser-screenshots).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import {
  ApiClient, chromiumPath, makeLongAudio, makeVideo, missingPrerequisite, probe, screenshotter,
  startServer, startThrottle, tempDir, waitFor, writeText,
} from './support.mjs';

const missing = await missingPrerequisite();
if (missing) console.log(`browser tests skipped: ${missing}`);

const VIDEO_SECONDS = 20;
const PASSWORD = 'correct horse battery';

describe('the web page', { skip: missing || false, timeout: 240000 }, () => {
  let work;
  let server;
  let throttle;  // the pages reach the server through it
  let browser;
  let shot;
  let video;
  let videoSize;
  let blocker;
  const problems = [];  // page errors and console errors: the page must have none
  // Console errors a test expects: Chromium logs every failed request as one.
  const expectedErrors = [/status of 401/];  // a refused sign-in

  async function newUserPage(viewport = { width: 1100, height: 900 }) {
    const context = await browser.newContext({ viewport, acceptDownloads: true });
    // Every value a progress bar is given, with its label and the state of its row: what a
    // person would have seen, frame by frame.
    await context.addInitScript(() => {
      window.progressLog = [];
      const value = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, 'value');
      Object.defineProperty(HTMLProgressElement.prototype, 'value', {
        ...value,
        set(v) {
          window.progressLog.push({
            label: this.getAttribute('aria-label'), value: v, status: this.closest('li')?.dataset.status,
          });
          value.set.call(this, v);
        },
      });
    });
    // The page's service worker must log no errors either.
    context.on('serviceworker', (worker) => worker.on('console', (message) => {
      if (message.type() === 'error') problems.push(`service worker: ${message.text()}`);
    }));
    const page = await context.newPage();
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' && !expectedErrors.some((e) => e.test(message.text()))) {
        problems.push(message.text());
      }
    });
    await page.goto(throttle.url);
    return page;
  }

  async function register(page, username, email = '') {
    await page.getByRole('heading', { name: 'Create an account' }).waitFor();
    const form = page.locator('#register-form');
    await form.getByLabel('Username').fill(username);
    await form.getByLabel('Password').fill(PASSWORD);
    if (email) await form.getByLabel('Email').fill(email);
    await form.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('heading', { name: 'Convert videos to MP3' }).waitFor();
  }

  const row = (page, name) => page.locator('li.job', { has: page.getByRole('heading', { name, exact: true }) });

  before(async () => {
    const { chromium } = await import('playwright-core');
    work = await tempDir('vmp3-browser-');
    video = path.join(work, 'holiday clip.mp4');
    [videoSize] = await Promise.all([
      makeVideo(video, VIDEO_SECONDS),
      makeLongAudio((blocker = path.join(work, 'four hours.flac')), 4 * 3600),
    ]);
    server = await startServer(path.join(work, 'data'));
    throttle = await startThrottle(server.url);
    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update',
             '--disable-sync', '--no-first-run', '--disable-gpu'],
    });
    shot = await screenshotter();
  });

  after(async () => {
    await browser?.close();
    await throttle?.close();
    await server?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  let alice;

  it('registers, signs out, refuses a wrong password and signs in', async () => {
    alice = await newUserPage();
    await shot(alice, 'signed-out');
    await register(alice, 'alice');
    await assert.doesNotReject(alice.getByText('Signed in as alice', { exact: true }).waitFor());
    await alice.getByRole('button', { name: 'Sign out' }).click();
    await alice.getByText('You have signed out.').waitFor();

    const form = alice.locator('#sign-in-form');
    await form.getByLabel('Username').fill('alice');
    await form.getByLabel('Password').fill('not the password');
    await form.getByRole('button', { name: 'Sign in' }).click();
    await form.getByRole('alert').filter({ hasText: 'Wrong username or password.' }).waitFor();
    await shot(alice, 'wrong-password');

    await form.getByLabel('Password').fill(PASSWORD);
    await form.getByRole('button', { name: 'Sign in' }).click();
    await alice.getByRole('heading', { name: 'Convert videos to MP3' }).waitFor();
    await alice.getByText('Nothing here yet').waitFor();
    await shot(alice, 'signed-in-empty');
  });

  it('uploads a video with moving bars and downloads an MP3 of the same length', async () => {
    // One converter thread, kept busy by someone else's four-hour file until this upload is
    // queued and followed, so the conversion is seen from its start (a 20 s clip converts in
    // a fraction of a second).
    const other = new ApiClient(server.url);
    await other.signUp('busy-neighbour', PASSWORD);
    const blockerJob = await other.upload(blocker);
    await waitFor(async () => (await other.call('GET', `/v1/jobs/${blockerJob.id}`)).status === 'converting',
                  'the long job to start converting');

    // About four seconds of upload, so its progress can be watched. Chromium's own emulation
    // paces what the page sees (the bytes themselves reach the server at once), which is all
    // the bars need; a file this small would vanish into socket buffers behind the proxy.
    const cdp = await alice.context().newCDPSession(alice);
    const uploadThroughput = async (bytesPerSecond) =>
      cdp.send('Network.emulateNetworkConditions', {
        offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond,
      });
    await cdp.send('Network.enable');
    await uploadThroughput(Math.round(videoSize / 4));

    // Notifications, recorded instead of shown.
    await alice.evaluate(() => {
      window.notes = { asked: 0, shown: [] };
      window.Notification = class {
        static permission = 'default';
        static requestPermission() {
          window.notes.asked += 1;
          window.Notification.permission = 'granted';
          return Promise.resolve('granted');
        }
        constructor(title, options) {
          window.notes.shown.push({ title, body: options.body });
        }
        close() {}
      };
    });

    await alice.getByLabel('MP3 quality').selectOption({ label: '128 kbps, constant (smallest)' });
    const chooser = alice.waitForEvent('filechooser');
    await alice.getByRole('button', { name: 'Choose files' }).click();
    await (await chooser).setFiles(video);

    const job = row(alice, 'holiday clip.mp4');
    await waitFor(async () => (await job.locator('.upload-bar progress').evaluate((p) => p.value)) > 0.3,
                  'the upload bar to pass 30%');
    assert.match(await job.locator('.upload-bar .bar-detail').textContent(), /of 1\.\d MB · .*\/s · \d+ s left/);
    await shot(alice, 'uploading');

    await waitFor(async () => (await job.getAttribute('data-status')) === 'queued', 'the job to be queued', 60000);
    await uploadThroughput(-1);
    await cdp.detach();
    assert.equal((await other.call('GET', `/v1/jobs/${blockerJob.id}`)).status, 'converting',
                 'the long job ended too early to keep the converter busy');
    await job.getByText('Waiting for a free converter…').waitFor();
    await shot(alice, 'queued');
    await new Promise((resolve) => setTimeout(resolve, 500));  // the event stream connects
    await other.call('DELETE', `/v1/jobs/${blockerJob.id}`);

    await waitFor(async () => (await job.getAttribute('data-status')) === 'done', 'the conversion', 60000);
    const log = await alice.evaluate(() => window.progressLog);
    const bar = (label) => log.filter((entry) => entry.label === label);
    const upload = bar('Upload of holiday clip.mp4');
    const sending = upload.filter((e) => e.status === 'upload-sending').map((e) => e.value);
    assert.ok(sending.filter((v) => v > 0 && v < 1).length >= 3, `upload bar values: ${sending}`);
    assert.ok(sending.every((v, i) => i === 0 || v >= sending[i - 1]), `upload bar went back: ${sending}`);
    assert.equal(upload.at(-1).value, 1);
    const conversion = bar('Conversion of holiday clip.mp4');
    const converting = conversion.filter((e) => e.status === 'converting').map((e) => e.value);
    assert.ok(converting.filter((v) => v > 0 && v < 1).length >= 3, `conversion bar values: ${converting}`);
    assert.ok(converting.every((v, i) => i === 0 || v >= converting[i - 1]), `conversion bar went back: ${converting}`);
    assert.equal(conversion.at(-1).value, 1);
    await job.getByText('Ready', { exact: true }).waitFor();
    assert.equal(await job.locator('progress:visible').count(), 0, 'an ended job shows no bars');
    // Asked on the first upload; nothing shown while the page is in view.
    assert.deepEqual(await alice.evaluate(() => window.notes), { asked: 1, shown: [] });
    await shot(alice, 'done');

    const downloadButton = job.getByRole('button', { name: /^Download the MP3 of holiday clip\.mp4/ });
    assert.match(await downloadButton.textContent(), /Download MP3 \d+(\.\d)? KB · 0:20/);
    const downloading = alice.waitForEvent('download');
    await downloadButton.click();
    const download = await downloading;
    assert.equal(download.suggestedFilename(), 'holiday clip.mp3');
    const saved = path.join(work, 'downloaded.mp3');
    await download.saveAs(saved);
    const info = await probe(saved);
    assert.equal(info.streams.length, 1);
    assert.equal(info.streams[0].codec_name, 'mp3');
    const seconds = Number(info.format.duration);
    assert.ok(Math.abs(seconds - VIDEO_SECONDS) <= 0.1, `MP3 lasts ${seconds} s`);
    assert.ok(Math.abs(Number(info.format.bit_rate) - 128000) < 2000, `bit rate ${info.format.bit_rate}`);
    assert.equal((await readFile(saved)).subarray(0, 3).toString('latin1'), 'ID3');
  });

  it('explains in words why a file that is not media failed', async () => {
    const notes = await writeText(path.join(work, 'notes.mp4'), 'These are my notes, not a video.\n'.repeat(50));
    // The person looks at another tab meanwhile.
    await alice.evaluate(() => Object.defineProperty(document, 'hidden', { configurable: true, get: () => true }));
    const chooser = alice.waitForEvent('filechooser');
    await alice.getByRole('button', { name: 'Choose files' }).click();
    await (await chooser).setFiles(notes);
    const job = row(alice, 'notes.mp4');
    await waitFor(async () => (await job.getAttribute('data-status')) === 'failed', 'the job to fail', 60000);
    await job.getByText('This file is not a video or audio file we can read.').waitFor();
    await job.getByText('Failed', { exact: true }).waitFor();
    assert.deepEqual(await alice.evaluate(() => window.notes.shown), [
      { title: 'A conversion did not work', body: 'notes.mp4: This file is not a video or audio file we can read.' },
    ]);
    await alice.evaluate(() => delete document.hidden);
    await shot(alice, 'not-media');
  });

  it('cancels an upload in flight', async () => {
    // Big enough that socket buffers cannot take it all, and really held back by the proxy: the
    // server must see a broken upload and make no job of it.
    const big = path.join(work, 'big video.mp4');
    await writeText(big, randomBytes(64 << 20));
    throttle.setRate(1 << 20);
    const chooser = alice.waitForEvent('filechooser');
    await alice.getByRole('button', { name: 'Choose files' }).click();
    await (await chooser).setFiles(big);
    const job = row(alice, 'big video.mp4');
    await waitFor(async () => (await job.locator('.upload-bar progress').evaluate((p) => p.value)) > 0,
                  'the upload to start');
    await job.getByRole('button', { name: 'Cancel the upload of big video.mp4' }).click();
    await job.getByText('Upload cancelled.').waitFor();
    throttle.setRate(0);
    await shot(alice, 'upload-cancelled');
    // Removed from the page; the server never saw a job for it.
    await job.getByRole('button', { name: 'Remove big video.mp4' }).click();
    await job.waitFor({ state: 'detached' });
  });

  it('keeps the list across a reload', async () => {
    await alice.reload();
    await alice.getByText('Signed in as alice', { exact: true }).waitFor();
    await row(alice, 'holiday clip.mp4').getByText('Ready', { exact: true }).waitFor();
    await row(alice, 'notes.mp4').getByText('This file is not a video or audio file we can read.').waitFor();
    assert.equal(await alice.locator('li.job').count(), 2);
    await shot(alice, 'after-reload');
  });

  it('shows a second user none of the first user\'s files', async () => {
    const bob = await newUserPage({ width: 390, height: 844 });
    await register(bob, 'bob');
    await bob.getByText('Nothing here yet').waitFor();
    assert.equal(await bob.locator('li.job').count(), 0);
    await shot(bob, 'second-user-phone');
    await bob.context().close();
  });

  it('deletes a file, and it stays deleted', async () => {
    alice.once('dialog', (dialog) => dialog.accept());
    await row(alice, 'notes.mp4').getByRole('button', { name: 'Delete notes.mp4' }).click();
    await row(alice, 'notes.mp4').waitFor({ state: 'detached' });
    await alice.reload();
    await row(alice, 'holiday clip.mp4').waitFor();
    assert.equal(await alice.locator('li.job').count(), 1);
  });

  it('fits a phone screen', async () => {
    await alice.setViewportSize({ width: 390, height: 844 });
    const overflow = await alice.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than the screen`);
    await shot(alice, 'phone');
  });

  const PUSH_SWITCH = 'Notify me when my files are ready, even if this tab is closed';
  const EMAIL_SWITCH = 'E-mail me when a conversion ends';

  it('explains why e-mail notifications cannot be turned on', async () => {
    // The test server has no mail relay (no --smtp-url): the switch is refused with a 409, whose
    // detail the page shows. Chromium logs that response as an error.
    expectedErrors.push(/status of 409/);
    const refusal = 'This service sends no e-mail (its operator set no mail relay).';
    for (const [username, email] of [['carol', 'carol@example.com'], ['dave', '']]) {
      const page = await newUserPage();
      await register(page, username, email);
      const push = page.getByRole('switch', { name: PUSH_SWITCH });
      const mail = page.getByRole('switch', { name: EMAIL_SWITCH });
      await page.getByRole('heading', { name: 'Notifications' }).waitFor();
      await waitFor(() => mail.isEnabled(), 'the e-mail setting to load');
      assert.equal(await mail.isChecked(), false);
      assert.equal(await push.isVisible(), true);
      // By keyboard: Tab reaches the switch after the push switch, Space flips it.
      await push.focus();
      await page.keyboard.press('Tab');
      assert.equal(await mail.evaluate((e) => e === document.activeElement), true, 'Tab reaches the e-mail switch');
      await page.keyboard.press('Space');
      const error = page.locator('#email-error');
      await error.getByText(refusal, { exact: true }).waitFor();
      assert.equal(await error.getAttribute('role'), 'alert');
      assert.equal(await mail.isChecked(), false, 'the refused switch turns back off');
      assert.equal(await mail.evaluate((e) => e === document.activeElement), true, 'the switch keeps the focus');
      // Not turned on behind the page's back either.
      const settings = await page.evaluate(async () => {
        const { token } = JSON.parse(sessionStorage.getItem('vmp3.session'));
        const response = await fetch('/v1/account/notifications', { headers: { Authorization: `Bearer ${token}` } });
        return response.json();
      });
      assert.equal(settings.email, false);
      await shot(page, `notifications-${username}`);
      await page.context().close();
    }
  });

  it('registers the service worker; push, refused in a private window, turns back off', async () => {
    // Playwright's browser contexts are off the record, and Chromium refuses the Push API there
    // (pushManager.subscribe fails with AbortError "Registration failed - permission denied", and
    // logs why), whatever the permission says: that is what is deterministic here. A persistent
    // profile would try Google's push service instead, which this machine cannot reach. So
    // the page must say so and turn the switch back off, having registered nothing.
    expectedErrors.push(/does not support the Push API in incognito/);
    const page = await newUserPage();
    await page.context().grantPermissions(['notifications'], { origin: throttle.url });
    await register(page, 'erin');
    const push = page.getByRole('switch', { name: PUSH_SWITCH });
    await waitFor(() => push.isEnabled(), 'the push switch to be usable');
    assert.equal(await push.isChecked(), false);
    assert.equal(await page.locator('#push-hint').textContent(), 'Your browser shows them on this device.');
    const posts = [];
    page.on('request', (r) => {
      if (new URL(r.url()).pathname.startsWith('/v1/push/subscriptions')) posts.push(`${r.method()} ${r.url()}`);
    });
    await push.focus();
    await page.keyboard.press('Space');
    const error = page.locator('#push-error');
    await error.getByText(/^Notifications could not be turned on: your browser could not subscribe to its push service \(Registration failed - permission denied\)\. Private windows cannot get them/).waitFor();
    assert.equal(await error.getAttribute('role'), 'alert');
    assert.equal(await push.isChecked(), false, 'the switch turns back off');
    assert.equal(await push.isEnabled(), true, 'permission is granted: the switch stays usable');
    assert.deepEqual(posts, [], 'no subscription was sent to the server');
    await shot(page, 'notifications-push-refused');

    // The worker got registered and activated on the way, with its own folder as scope.
    const registration = await page.evaluate(async () => {
      const r = await navigator.serviceWorker.getRegistration('/assets/');
      return r && { scope: r.scope, script: r.active?.scriptURL, state: r.active?.state };
    });
    assert.deepEqual(registration,
                     { scope: `${throttle.url}/assets/`, script: `${throttle.url}/assets/sw.js`, state: 'activated' });

    // Push messages as the service sends them, handed to the worker by Chromium's DevTools
    // protocol (the way a push service would): one notification per job, the newer replacing
    // the older.
    const cdp = await page.context().newCDPSession(page);
    const registrations = [];
    cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => registrations.push(...e.registrations));
    await cdp.send('ServiceWorker.enable');
    const { registrationId } = await waitFor(
      () => registrations.find((r) => r.scopeURL === `${throttle.url}/assets/` && !r.isDeleted), 'the registration');
    const deliver = (message) => cdp.send('ServiceWorker.deliverPushMessage',
                                         { origin: throttle.url, registrationId, data: JSON.stringify(message) });
    const shown = () => page.evaluate(async () => {
      const r = await navigator.serviceWorker.getRegistration('/assets/');
      const notes = await r.getNotifications();
      return notes.map((n) => ({ title: n.title, body: n.body, tag: n.tag, icon: n.icon, url: n.data.url }))
        .sort((a, b) => a.tag.localeCompare(b.tag));
    });
    const message = (jobId, type, title, body) => ({ type, job_id: jobId, title, body, url: `${throttle.url}/` });
    // One at a time, and again if not shown within 5 s, as a push service delivers them (at least
    // once): Chromium may drop a message handed over while the worker is still starting or busy
    // with the previous one (seen under a loaded machine). Showing one again is harmless: it
    // replaces its own notification (same tag), which is what the page relies on.
    const bodies = async () => (await shown()).map((n) => n.body);
    const deliverUntil = async (msg, check, what) => {
      for (let attempt = 1; ; attempt += 1) {
        await deliver(msg);
        try {
          return await waitFor(check, what, 5000);
        } catch (error) {
          if (attempt === 4) throw error;
        }
      }
    };
    await deliverUntil(message('job-a', 'job.failed', 'A conversion did not work', 'a.mp4: the file is damaged.'),
                       async () => (await bodies()).length === 1, 'the first notification');
    await deliverUntil(message('job-b', 'job.done', 'Your MP3 is ready', 'b.mp4'),
                       async () => (await bodies()).length === 2, 'the second notification');
    await deliverUntil(message('job-a', 'job.done', 'Your MP3 is ready', 'a.mp4'),
                       async () => (await bodies())[0] === 'a.mp4', 'the newer notification of job-a');
    const icon = `${throttle.url}/assets/icon.svg`;
    assert.deepEqual(await shown(), [
      { title: 'Your MP3 is ready', body: 'a.mp4', tag: 'job-a', icon, url: `${throttle.url}/` },
      { title: 'Your MP3 is ready', body: 'b.mp4', tag: 'job-b', icon, url: `${throttle.url}/` },
    ]);
    await cdp.detach();
    await page.context().close();
  });

  it('disables the push switch, saying why, once notifications are blocked', async () => {
    // No permission granted to this context: headless Chromium, having no one to ask, answers
    // Notification.requestPermission() with "denied", as a person's "Block" would.
    const page = await newUserPage();
    await register(page, 'frank');
    const push = page.getByRole('switch', { name: PUSH_SWITCH });
    await waitFor(() => push.isEnabled(), 'the push switch to be usable');
    assert.equal(await page.evaluate(() => Notification.permission), 'default');
    const blocked = 'Notifications are blocked for this site. Allow them in your browser’s site settings to turn this on.';
    await push.click();
    await page.locator('#push-hint').getByText(blocked, { exact: true }).waitFor();
    assert.equal(await page.evaluate(() => Notification.permission), 'denied');
    assert.equal(await push.isDisabled(), true);
    assert.equal(await push.isChecked(), false);
    assert.equal(await page.locator('#push-error').isHidden(), true, 'the hint says it all');
    assert.equal(await page.evaluate(() => navigator.serviceWorker.getRegistration('/assets/')), undefined,
                 'nothing registered without permission');
    // Still blocked on the next visit: disabled from the start, with the reason.
    await page.reload();
    await page.locator('#push-hint').getByText(blocked, { exact: true }).waitFor();
    await waitFor(() => page.getByRole('switch', { name: EMAIL_SWITCH }).isEnabled(), 'the e-mail switch');
    assert.equal(await push.isDisabled(), true);
    await shot(page, 'notifications-push-blocked');
    await page.context().close();
  });

  it('logged no errors', () => {
    assert.deepEqual(problems, []);
  });
});
