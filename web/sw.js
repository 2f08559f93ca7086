// The page's service worker: shows the service's push messages as notifications, also when no
// tab of the page is open. It is registered with scope /assets/ (its own folder, so the server
// needs no Service-Worker-Allowed header): push reaches a registration of any scope, and this
// worker handles no fetches, so it need not control the page.
//
// A push message is JSON: {"type": "job.done"|"job.failed"|…, "job_id", "title", "body", "url"}.

const ICON = '/assets/icon.svg';

self.addEventListener('install', () => {
  // Nothing to cache: take over from an older version at once.
  self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

function messageOf(data) {
  if (!data) return {};
  try {
    const message = data.json();
    return message && typeof message === 'object' ? message : {};
  } catch {
    return { body: data.text() };  // not JSON: show the text as it came
  }
}

// Only pages of the web: anything else in `url` falls back to the page itself.
function safeUrl(url) {
  try {
    const target = new URL(url || '/', self.location.origin);
    if (target.protocol === 'https:' || target.protocol === 'http:') return target.href;
  } catch {
    // Not a URL.
  }
  return new URL('/', self.location.origin).href;
}

self.addEventListener('push', (event) => {
  const message = messageOf(event.data);
  // The tag is the job, so a newer message about a job replaces the older one (and the page's own
  // in-tab notification, which uses the same tag); renotify alerts again when it does.
  const tag = typeof message.job_id === 'string' && message.job_id ? message.job_id : 'vmp3';
  event.waitUntil(
    self.registration.showNotification(String(message.title || 'vmp3'), {
      body: String(message.body || ''),
      tag,
      renotify: true,
      icon: ICON,
      data: { url: safeUrl(message.url) },
    }),
  );
});

// A click focuses a tab that shows the page (the one at `url` first), or opens `url`.
self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const target = new URL(event.notification.data?.url || safeUrl('/'));
  event.waitUntil(
    (async () => {
      // The page is outside this worker's scope: includeUncontrolled finds its tabs anyway.
      const tabs = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
      const samePage = (tab) => {
        const url = new URL(tab.url);
        return url.origin === target.origin && url.pathname === target.pathname;
      };
      const tab = tabs.find((t) => t.url === target.href) || tabs.find(samePage);
      if (tab) {
        try {
          await tab.focus();
          return;
        } catch {
          // Focus refused (the browser decides): open a new tab instead.
        }
      }
      await self.clients.openWindow(target.href);
    })(),
  );
});
