/* statusd service worker: shows a site's Web Push notification and opens the status page at
   that site on a click. Self-hosted, no import, no cache, nothing stored. Its scope is the
   status page's directory (served as ./sw.js beside the page). */
"use strict";

self.addEventListener("push", event => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (err) {
    data = { body: event.data ? event.data.text() : "" };
  }
  const tag = data.tag || data.site || "status";
  const body = String(data.body || "");
  event.waitUntil(self.registration.getNotifications({ tag }).then(shown => {
    // The same text again (a resend after a crash) replaces the notification quietly;
    // a new one for the site replaces it and alerts.
    const same = shown.some(n => n.body === body);
    return self.registration.showNotification(String(data.title || ""), {
      body, tag, lang: data.lang || "", renotify: shown.length > 0 && !same,
      requireInteraction: data.level === "emergency", data: { site: data.site || "" },
    });
  }));
});

self.addEventListener("notificationclick", event => {
  event.notification.close();
  const site = event.notification.data && event.notification.data.site;
  const url = new URL(self.registration.scope);
  if (site) url.hash = "site-" + site;
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(open => {
    for (const client of open) {
      if (client.url.split("#")[0] === url.href.split("#")[0] && "focus" in client) {
        return client.navigate(url.href).then(c => (c || client).focus());
      }
    }
    return self.clients.openWindow(url.href);
  }));
});
