/* statusd status page: live updates. The page works without this script; with it, each
   change (SSE /events, or polling status.json when the stream fails) refetches this page
   and swaps in the parts that changed, so the wording and times stay the server's own.
   Hooks (ids, data-*) are described in statusd/web/README.md. */
(() => {
"use strict";
const body = document.body, D = document;
if (!body || !window.fetch || !window.DOMParser) return;
const eventsUrl = body.dataset.eventsUrl || "events";
const statusUrl = body.dataset.statusUrl || "status.json";
// The parts swapped whole when their HTML differs; each has a stable id.
const PARTS = "main [data-site][id], #recent-updates";
let seen = 0, es = null, fails = 0, timer = 0, busy = null;

// A polite live region, in the page before any change, that names what changed.
const live = D.createElement("p");
live.className = "visually-hidden";
live.setAttribute("role", "status");
body.append(live);

const summary = section => {
  const name = section.querySelector("[data-field=name]");
  const level = section.querySelector("[data-field=level]");
  return [name, level].filter(Boolean).map(n => n.textContent.trim()).join(" — ");
};

const swap = fresh => {
  const said = [];
  for (const part of fresh.querySelectorAll(PARTS)) {
    const old = D.getElementById(part.id);
    if (!old || old.outerHTML === part.outerHTML) continue;
    const focused = old.contains(D.activeElement) && D.activeElement.id;
    old.replaceWith(D.importNode(part, true));
    if (focused) D.getElementById(focused)?.focus();
    if (part.dataset.site && summary(part) !== summary(old)) said.push(summary(part));
  }
  const stamp = fresh.querySelector("[data-field=generated-at]");
  const mine = D.querySelector("[data-field=generated-at]");
  if (stamp && mine) mine.replaceWith(D.importNode(stamp, true));
  // Only a change of a site's or service's level or message is announced, never a heartbeat.
  if (said.length) live.textContent = said.join(". ");
};

const stampOf = doc => Date.parse(doc.querySelector("[data-field=generated-at]")?.getAttribute("datetime")) || 0;

// Fetch this page again; an exported copy may lag a moment behind the event, so retry.
const refresh = async (wanted, tries = 5) => {
  const url = location.href.split("#")[0];
  const response = await fetch(url, { cache: "no-cache", credentials: "same-origin" });
  if (!response.ok) return;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  if (stampOf(fresh) < wanted && tries > 1) {
    setTimeout(() => refresh(wanted, tries - 1).catch(() => {}), 1000);
    return;
  }
  swap(fresh);
};

const onSnapshot = snap => {
  const at = Date.parse(snap && snap.generated_at) || 0;
  if (!snap || !snap.sites || at <= seen) return;
  seen = at;
  if (at <= stampOf(D)) return; // the page already shows this
  // Coalesce bursts: one refetch for several quick changes.
  clearTimeout(busy);
  busy = setTimeout(() => refresh(at).catch(() => {}), 100);
};

const poll = () => fetch(statusUrl, { cache: "no-cache" })
  .then(r => (r.ok ? r.json() : null)).then(onSnapshot).catch(() => {});

const connect = () => {
  if (!window.EventSource) return fallback();
  es = new EventSource(eventsUrl);
  es.addEventListener("status", e => {
    try { onSnapshot(JSON.parse(e.data)); } catch (err) { /* a broken event: wait for the next */ }
  });
  es.onopen = () => { if (fails) poll(); fails = 0; };
  es.onerror = () => { if (es.readyState === 2 || ++fails > 4) fallback(); };
};

const fallback = () => { // poll every 30 s; try the stream again after a minute
  if (es) es.close();
  es = null;
  fails = 0;
  poll();
  const every = setInterval(poll, 30000);
  clearTimeout(timer);
  timer = setTimeout(() => { clearInterval(every); connect(); }, 60000);
};

seen = stampOf(D);
connect();
})();
