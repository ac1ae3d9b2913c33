/* statusd banner: <script src="…/banner.js" data-site="main" data-lang="fr" async> or
   <statusd-banner site="main" lang="fr">. No dependencies, cookies or eval; "hide" lasts
   for the tab (sessionStorage). Colours: --statusd-{open,notice,alert,emergency}-{bg,fg,border}. */
(() => {
"use strict";
const TAG = "statusd-banner", S = document.currentScript;
let HOME = location.origin;
try { HOME = new URL(S.src).origin; } catch (e) { /* an inline copy */ }
if (!window.customElements || !window.fetch) return;
const SEV = { open: 0, busy: 1, limited: 2, closed: 3, emergency: 4 };
// The level words by SEV, then: until, updated, status page, hide, show, planned, from.
const W = {
  en: "Open|Busy|Limited service|Closed|Emergency|Until {}|Updated: {}|Status page|Hide|Show status: {}|Planned: {}|From {}",
  fr: "Ouvert|Forte affluence|Service limité|Fermé|Urgence|Jusqu’à {}|Mis à jour : {}|Page d’état du service|Masquer|Afficher l’état : {}|Prévu : {}|À partir de {}",
  sv: "Öppet|Mycket folk|Begränsad service|Stängt|Nödläge|Till {}|Uppdaterad: {}|Statussida|Dölj|Visa status: {}|Planerat: {}|Från {}"
};
const O = "M12 3a9 9 0 1 0 .01 0"; // a circle: check, clock, info, no entry, warning
const ICON = ["M5 12l5 5 9-10", O + "M12 7v5l3 3", O + "M12 11v6M12 7.5v.5", O + "M7 12h10", "M12 3L2 21h20zM12 10v5M12 18v.5"];
const cv = (n, d) => `var(--statusd-${n},${d})`;
const tone = (cls, n, bg, fg, bd) => `${cls}{--bg:${cv(n + "-bg", bg)};--fg:${cv(n + "-fg", fg)};--bd:${cv(n + "-border", bd)}}`;
const CSS = `:host{display:block;font-family:${cv("font", "inherit")};line-height:1.45}:host([hidden]){display:none}
.b{display:flex;flex-wrap:wrap;align-items:flex-start;gap:.5em 1em;background:var(--bg);color:var(--fg)}
.on{padding:.75em 1em;border:2px solid var(--bd);border-left-width:.5em;border-radius:${cv("radius", 0)};animation:statusd-in .3s ease-out}
.b:not(.on) .v,.x .m{display:none}
${tone(".s0", "open", "#e8f5ec", "#0c3a1c", "#2e7d47")}${tone(".s1,.s2", "notice", "#fff4ce", "#3b2f00", "#8a6d00")}
${tone(".s3", "alert", "#a4161a", "#fff", "#5c0b0d")}${tone(".s4", "emergency", "#1b1b1b", "#fff", "#ffd400")}
svg{display:block;width:1.6em;height:1.6em;fill:none;stroke:currentColor;stroke-width:2.2;stroke-linecap:round;stroke-linejoin:round}
.m{flex:1 1 14em;min-width:0;overflow-wrap:anywhere}p,ul{margin:0}ul{padding-left:1.2em}.meta{font-size:.9em;margin-top:.25em}a{color:inherit}
:focus-visible{outline:3px solid;outline-offset:2px}
button{font:inherit;color:inherit;background:none;border:2px solid;border-radius:.3em;padding:.3em .8em;min-height:44px;cursor:pointer}
@keyframes statusd-in{from{opacity:0;transform:translateY(-.3em)}}@media (prefers-reduced-motion:reduce){.on{animation:none}}`;
let sheet;

const el = (tag, text, cls) => {
  const n = document.createElement(tag);
  n.textContent = text || "";
  if (cls) n.className = cls;
  return n;
};
const say = (text, arg) => text.replace("{}", arg);
const sev = level => SEV[level] ?? 2; // an unknown level reads as a notice
const warn = e => { try { console.warn(TAG, e); } catch (x) { /* no console */ } };
// [text, its language]: the one asked for, else the first given.
const pick = (map, lang) => {
  if (typeof map === "string") return [map, ""];
  const k = map?.[lang] ? lang : Object.keys(map || {}).find(x => map[x]);
  return k ? [map[k], k] : ["", ""];
};
// A time in the site's zone: the hour today, with the weekday and date otherwise.
const when = (iso, timeZone, lang) => {
  try {
    const d = new Date(iso), o = { hour: "2-digit", minute: "2-digit", timeZone };
    const day = x => x.toLocaleDateString("en-CA", { timeZone });
    if (day(d) !== day(new Date())) Object.assign(o, { weekday: "long", day: "numeric", month: "long" });
    return iso ? new Intl.DateTimeFormat(lang || undefined, o).format(d) : "";
  } catch (e) { return ""; }
};

// What one banner shows of a site, and a key that changes only when those facts change.
const view = (snap, id, lang, showOpen) => {
  const site = snap.sites?.[id];
  if (!site) return { key: "" };
  const list = Object.entries(site.services || {}).filter(([, s]) => s.level !== "open");
  const planned = site.level === "open" && sev(site.planned?.level) > 2 ? site.planned : null;
  const worst = Math.max(sev(site.level), planned ? 2 : 0, ...list.map(([, s]) => sev(s.level)));
  if (!worst && !showOpen) return { key: "" };
  const since = [site.updated_at || site.since, ...list.map(([, s]) => s.since)].filter(Boolean).sort().pop();
  const key = JSON.stringify([site.level, site.message, site.until, planned, list.map(([k, s]) => [k, s.level, s.message, s.until])]);
  return { site, worst, list, planned, since, key };
};

// One connection per daemon, shared by the banners of the page.
const hubs = {};
const hub = origin => hubs[origin] || (hubs[origin] = connect(origin));
const connect = origin => {
  const h = { subs: new Set(), last: null, gen: 0 };
  let es, fails = 0, back = 5e3, timer;
  const deliver = snap => {
    const g = Date.parse(snap?.generated_at) || 0;
    if (!snap?.sites || g < h.gen) return; // a poll that lost the race to a newer event
    h.gen = g;
    h.last = snap;
    h.subs.forEach(f => { try { f(snap); } catch (e) { warn(e); } });
  };
  // "no-cache": the browser revalidates with If-None-Match itself, without a CORS preflight.
  const poll = () => fetch(origin + "/status.json", { cache: "no-cache", credentials: "omit" })
    .then(r => r.ok ? r.json() : null).then(deliver, () => {});
  const live = () => {
    if (!window.EventSource) return fallback();
    es = new EventSource(origin + "/events");
    es.addEventListener("status", e => { try { deliver(JSON.parse(e.data)); } catch (x) { warn(x); } });
    es.onopen = () => { if (fails) poll(); fails = 0; back = 5e3; }; // catch up after a restart
    es.onerror = () => { if (es.readyState === 2 || ++fails > 4) fallback(); };
  };
  const fallback = () => { // poll every 15 s; try the stream again later, less and less often
    es?.close();
    fails = 0;
    poll();
    const every = setInterval(poll, 15e3);
    clearTimeout(timer);
    timer = setTimeout(() => { clearInterval(every); live(); }, back);
    back = Math.min(back * 2, 3e5);
  };
  poll();
  live();
  return h;
};

const attr = (n, k, v) => { n.setAttribute(k, v); return n; };

class Banner extends HTMLElement {
  connectedCallback() {
    try {
      if (this.h) return;
      const root = this.shadowRoot || this.attachShadow({ mode: "open" });
      this.origin = (this.getAttribute("origin") || HOME).replace(/\/+$/, "");
      this.site = this.getAttribute("site");
      this.lang0 = this.getAttribute("lang") || document.documentElement.lang;
      this.w = (W[this.lang0.slice(0, 2).toLowerCase()] || W.en).split("|");
      if (!root.firstChild) this.build(root);
      this.f = snap => this.render(snap);
      this.h = hub(this.origin);
      this.h.subs.add(this.f);
      if (this.h.last) this.render(this.h.last);
    } catch (e) { warn(e); }
  }
  disconnectedCallback() { this.h?.subs.delete(this.f); this.h = null; }
  build(root) {
    try { // a constructed sheet is no inline style: CSP style-src 'self' lets it through
      if (!sheet) (sheet = new CSSStyleSheet()).replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch (e) { root.append(el("style", CSS)); } // older browsers, where CSP allows it
    this.box = attr(el("div", "", "b"), "part", "banner");
    this.icon = attr(el("span", "", "v"), "aria-hidden", "true");
    this.main = el("div", "", "m");
    this.main.id = "m";
    this.status = attr(el("div"), "role", "status"); // there, and empty, before any notice
    this.meta = el("p", "", "meta v");
    this.btn = attr(el("button", "", "v"), "aria-controls", "m");
    this.btn.type = "button";
    this.btn.onclick = () => this.toggle();
    this.main.append(this.status, this.meta);
    this.box.append(this.icon, this.main, this.btn);
    root.append(this.box);
  }
  render(snap) {
    const s = snap.sites?.[this.site];
    const open = this.hasAttribute("show-open") || !!(snap.banner_when_open || s?.banner_when_open);
    const v = view(snap, this.site, this.lang0, open);
    if (!s && !this.warned) this.warned = warn("no site " + this.site) || 1;
    if (v.key === this.key) return; // a heartbeat or the same facts: nothing moves
    this.stamp = this.key === undefined ? v.since || snap.generated_at : snap.generated_at;
    this.key = v.key;
    this.v = v;
    let hidden = false;
    try { hidden = sessionStorage.getItem(this.store()) === v.key; } catch (e) { /* blocked */ }
    const reveal = this.x && !hidden;
    this.collapse(hidden);
    if (reveal) setTimeout(() => this.fill(), 150); // the region shows before it speaks
    else this.fill();
  }
  store() { return `${TAG}:${this.origin}|${this.site}`; }
  fill() {
    const { v, w, lang0: lang } = this, site = v.site, tz = site?.timezone;
    this.alert?.remove();
    this.alert = null;
    for (const n of [this.status, this.meta, this.icon]) n.textContent = "";
    this.box.className = "b" + (v.key ? " on s" + v.worst : "") + (this.x ? " x" : "");
    if (!v.key) return;
    // An alert for closures and emergencies only: it speaks as it is inserted.
    const live = v.worst > 2 ? this.alert = attr(el("div"), "role", "alert") : this.status;
    live.append(el("p")).append(el("strong", `${pick(site.name, lang)[0]} — ${this.word(site.level)}`));
    this.line(live, site.message, site.until, tz);
    const p = v.planned;
    if (p) {
      live.append(el("p", `${say(w[10], this.word(p.level))} — ${say(w[11], when(p.from, tz, lang))}`));
      this.line(live, p.message, p.until, tz);
    }
    if (v.list.length) {
      const ul = live.appendChild(el("ul"));
      for (const [, s] of v.list) {
        const li = ul.appendChild(el("li"));
        li.append(el("strong", `${pick(s.name, lang)[0]} — ${this.word(s.level)}`));
        this.line(li, s.message, s.until, tz, " ");
      }
    }
    if (this.alert) this.main.insertBefore(this.alert, this.meta);
    const svg = attr(document.createElementNS("http://www.w3.org/2000/svg", "svg"), "viewBox", "0 0 24 24");
    svg.append(attr(document.createElementNS(svg.namespaceURI, "path"), "d", ICON[v.worst]));
    this.icon.append(svg);
    const at = when(this.stamp, tz, lang);
    if (at) this.meta.append(say(w[6], at) + " · ");
    const a = this.meta.appendChild(el("a", w[7]));
    a.href = /^https?:\/\//i.test(site.url) ? site.url : this.origin + "/";
    this.label();
  }
  line(parent, message, until, tz, sep) { // a message and its "until", in one paragraph
    const [text, lang] = pick(message, this.lang0), t = when(until, tz, this.lang0);
    const parts = [text, t && say(this.w[5], t) + "."].filter(Boolean);
    if (!parts.length) return;
    const n = parent.appendChild(el(sep ? "span" : "p", (sep || "") + parts.join(" ")));
    if (lang && lang !== this.lang0) n.lang = lang; // a fallback language is read as such
  }
  word(level) { return SEV[level] === undefined ? level : this.w[SEV[level]]; }
  get x() { return this.box.classList.contains("x"); }
  collapse(on) {
    this.box.classList.toggle("x", on);
    this.label();
  }
  label() { this.btn.textContent = this.x ? say(this.w[9], this.w[this.v.worst]) : this.w[8]; }
  toggle() { // SC 2.2.2: hidden until the facts change, or until shown again
    const x = !this.x;
    try {
      if (x) sessionStorage.setItem(this.store(), this.key);
      else sessionStorage.removeItem(this.store());
    } catch (e) { /* storage blocked: hidden on this page only */ }
    this.collapse(x);
  }
}

try {
  if (!customElements.get(TAG)) customElements.define(TAG, Banner);
  const site = S?.getAttribute("data-site");
  if (!site) return;
  const node = attr(attr(document.createElement(TAG), "site", site), "origin", HOME);
  if (S.dataset.lang) node.lang = S.dataset.lang;
  if (S.hasAttribute("data-show-open")) node.setAttribute("show-open", "");
  const place = () => { // after the script; at the top of the body when the script is in <head>
    const p = S.parentNode;
    if (p && p !== document.head && p !== document.documentElement) p.insertBefore(node, S.nextSibling);
    else if (document.body) document.body.prepend(node);
    else document.addEventListener("DOMContentLoaded", place);
  };
  place();
} catch (e) { warn(e); }
})();
