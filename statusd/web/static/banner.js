/* <script src=".../banner.js" data-site="main" data-lang="fr" [data-follow] async> or
   <statusd-banner site="main" lang="fr" [follow]>. "Hide": sessionStorage. */
(() => {
"use strict";
const TAG = "statusd-banner", S = document.currentScript, D = document;
let HOME = location.origin;
try { HOME = new URL(S.src).origin; } catch {}
if (!window.customElements) return;
const SEV = { open: 0, busy: 1, limited: 2, closed: 3, emergency: 4 };
// Levels by SEV; until, updated, link, hide, show, follow.
const W = {
  en: "Open|Busy|Limited service|Closed|Emergency|Until {}|Updated: {}|Status page|Hide|Show: {}|Notify me",
  fr: "Ouvert|Affluence|Service réduit|Fermé|Urgence|Jusqu’à {}|Mis à jour : {}|Page d’état|Masquer|Afficher : {}|M’avertir",
  sv: "Öppet|Mycket folk|Begränsad service|Stängt|Nödläge|Till {}|Uppdaterad: {}|Statussida|Dölj|Visa: {}|Meddela mig"
};
const O = "M12 3a9 9 0 1 0 .01 0";
const ICON = ["M5 12l5 5 9-10", O + "M12 7v5l3 3", O + "M12 11v6M12 7.5v.5", O + "M7 12h10",
  "M12 3L2 21h20zM12 10v5M12 18v.5"];
const cv = (n, d) => `var(--statusd-${n},${d})`;
const tone = (c, n, bg, fg, bd) =>
  `.s${c}{--bg:${cv(n + "-bg", bg)};--fg:${cv(n + "-fg", fg)};--bd:${cv(n + "-border", bd)}}`;
const CSS = `:host{display:block;font-family:${cv("font", "inherit")};line-height:1.45}
:host([hidden]),.b:not(.on) .v,.x .m{display:none}
.b{display:flex;flex-wrap:wrap;align-items:start;gap:.5em 1em;background:var(--bg);color:var(--fg)}
.on{padding:.75em 1em;border:2px solid var(--bd);border-left-width:.5em;animation:in .3s}
${tone(0, "open", "#e8f5ec", "#0c3a1c", "#2e7d47")}${tone("1,.s2", "notice", "#fff4ce", "#3b2f00", "#8a6d00")}
${tone(3, "alert", "#a4161a", "#fff", "#5c0b0d")}${tone(4, "emergency", "#1b1b1b", "#fff", "#ffd400")}
svg{width:1.6em;height:1.6em;fill:none;stroke:currentColor;stroke-width:2.2;stroke-linecap:round}
.m{flex:1 1 14em;overflow-wrap:anywhere}p,ul{margin:0}ul{padding-left:1.2em}a{color:inherit}
.meta{font-size:.9em}:focus-visible{outline:3px solid;outline-offset:2px}
button{font:inherit;color:inherit;background:none;border:2px solid;border-radius:.3em;padding:.3em .8em;min-height:44px}
@keyframes in{from{opacity:0}}
@media (prefers-reduced-motion:reduce){.on{animation:none}}`;
let sheet;

const el = (tag, textContent = "", className = "") =>
  Object.assign(D.createElement(tag), { textContent, className });
const attr = (n, k, v) => (n.setAttribute(k, v), n);
const say = (text, arg) => text.replace("{}", arg);
const sev = level => SEV[level] ?? 2;
const warn = e => console.warn(TAG, e);
// [text, language]: the one asked for, else the first.
const pick = (map, lang) => {
  const k = map?.[lang] ? lang : Object.keys(map || {}).find(x => map[x]);
  return k ? [map[k], k] : ["", ""];
};
// In the site's zone; the date unless today.
const when = (iso, timeZone, lang) => {
  try {
    const d = new Date(iso), o = { timeStyle: "short", timeZone };
    const day = x => x.toLocaleDateString("en-CA", { timeZone });
    if (day(d) !== day(new Date())) o.dateStyle = "full";
    return iso ? new Intl.DateTimeFormat(lang || [], o).format(d) : "";
  } catch { return ""; }
};

// What a banner shows; null when all is open.
const view = (snap, id, showOpen) => {
  const site = snap.sites?.[id];
  if (!site) return null;
  const list = Object.entries(site.services || {}).filter(([, s]) => s.level !== "open");
  const worst = Math.max(sev(site.level), ...list.map(([, s]) => sev(s.level)));
  const since = [site.updated_at || site.since, ...list.map(([, s]) => s.since)].filter(Boolean).sort().pop();
  return worst || showOpen || snap.banner_when_open || site.banner_when_open ? { site, worst, list, since } : null;
};

// One connection per daemon.
const hubs = {}, hub = origin => hubs[origin] ||= connect(origin), connect = origin => {
  const h = { subs: new Set(), gen: 0 };
  let es, fails = 0, back = 5e3;
  const deliver = snap => {
    const g = Date.parse(snap?.generated_at) || 0;
    if (!snap?.sites || g < h.gen) return;
    h.gen = g;
    h.last = snap;
    h.subs.forEach(f => f(snap));
  };
  // The HTTP cache adds If-None-Match: no CORS preflight.
  const poll = () => fetch(origin + "/status.json", { cache: "no-cache", credentials: "omit" })
    .then(r => r.ok ? r.json() : null).then(deliver, () => {});
  const live = () => {
    es = new EventSource(origin + "/events");
    es.addEventListener("status", e => { try { deliver(JSON.parse(e.data)); } catch (x) { warn(x); } });
    es.onopen = () => { fails && poll(); fails = 0; back = 5e3; }; // catch up
    es.onerror = () => { if (es.readyState === 2 || ++fails > 4) fallback(); };
  };
  const fallback = () => { // poll; retry later
    es.close();
    fails = 0;
    poll();
    const every = setInterval(poll, 15e3);
    setTimeout(() => { clearInterval(every); live(); }, back);
    back = Math.min(back * 2, 3e5);
  };
  poll();
  live();
  return h;
};

class Banner extends HTMLElement {
  connectedCallback() {
    try {
      if (this.h) return;
      const root = this.shadowRoot || this.attachShadow({ mode: "open" });
      this.origin = (this.getAttribute("origin") || HOME).replace(/\/+$/, "");
      this.site = this.getAttribute("site");
      this.k = TAG + this.origin + this.site;
      this.l = this.getAttribute("lang") || D.documentElement.lang;
      this.w = (W[this.l.slice(0, 2)] || W.en).split("|");
      if (!root.firstChild) this.build(root);
      this.f = snap => { try { this.render(snap); } catch (e) { warn(e); } };
      this.h = hub(this.origin);
      this.h.subs.add(this.f);
      if (this.h.last) this.f(this.h.last);
    } catch (e) { warn(e); }
  }
  disconnectedCallback() { this.h?.subs.delete(this.f); this.h = null; }
  build(root) {
    try { // not inline: CSP-safe
      if (!sheet) (sheet = new CSSStyleSheet()).replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch { root.append(el("style", CSS)); }
    this.box = attr(el("div", "", "b"), "part", "banner");
    const svg = attr(D.createElementNS("http://www.w3.org/2000/svg", "svg"), "viewBox", "0 0 24 24");
    this.path = svg.appendChild(D.createElementNS(svg.namespaceURI, "path"));
    attr(attr(svg, "class", "v"), "aria-hidden", "true");
    this.main = el("div", "", "m");
    this.status = attr(el("div"), "role", "status"); // before any text
    this.meta = el("p", "", "meta v");
    this.btn = el("button", "", "v");
    this.btn.onclick = () => this.toggle();
    this.main.append(this.status, this.meta);
    this.box.append(svg, this.main, this.btn);
    root.append(this.box);
  }
  render(snap) {
    const v = view(snap, this.site, this.hasAttribute("show-open")), c = v && this.text(v);
    const key = v ? v.worst + c.textContent : "";
    if (key === this.key) return; // same text: nothing moves
    this.stamp = this.key === undefined ? v?.since || snap.generated_at : snap.generated_at;
    this.key = key;
    this.v = v;
    let hide = false;
    try { hide = sessionStorage[this.k] === key; } catch {}
    const later = this.x && !hide; // show it, then speak
    this.collapse(hide);
    clearTimeout(this.t);
    later ? this.t = setTimeout(() => this.fill(c), 150) : this.fill(c);
  }
  text({ site, list }) {
    const c = el("div"), l = this.l, tz = site.timezone;
    c.appendChild(el("p")).append(el("strong", `${pick(site.name, l)[0]} — ${this.word(site.level)}`));
    this.line(c, site.message, site.until, tz);
    if (list.length) {
      const ul = c.appendChild(el("ul"));
      for (const [, s] of list) {
        const li = ul.appendChild(el("li"));
        li.append(el("strong", `${pick(s.name, l)[0]} — ${this.word(s.level)}`));
        this.line(li, s.message, s.until, tz, " ");
      }
    }
    return c;
  }
  fill(c) {
    const { v, w } = this;
    this.alert?.remove();
    this.alert = null;
    this.status.textContent = this.meta.textContent = "";
    this.box.className = "b" + (v ? " on s" + v.worst : "") + (this.x ? " x" : "");
    if (!v) return;
    // role=alert when closed: read out as inserted.
    const live = v.worst > 2 ? this.alert = attr(el("div"), "role", "alert") : this.status;
    live.append(...c.childNodes);
    if (this.alert) this.main.insertBefore(this.alert, this.meta);
    attr(this.path, "d", ICON[v.worst]);
    const at = when(this.stamp, v.site.timezone, this.l);
    if (at) this.meta.append(say(w[6], at) + " · ");
    this.meta.appendChild(el("a", w[7])).href =
      /^https?:/i.test(v.site.url) ? v.site.url : this.origin + "/";
    if (this.hasAttribute("follow")) { // the page's Notify me form
      const e = encodeURIComponent;
      this.meta.append(" · ");
      this.meta.appendChild(el("a", w[10])).href = `${this.origin}/?lang=${e(this.l)}#follow-${e(this.site)}`;
    }
    this.collapse();
  }
  line(parent, message, until, tz, sep) {
    const [text, lang] = pick(message, this.l), t = when(until, tz, this.l);
    const parts = [text, t && say(this.w[5], t) + "."].filter(Boolean);
    if (!parts.length) return;
    const n = parent.appendChild(el(sep ? "span" : "p", (sep || "") + parts.join(" ")));
    if (lang && lang !== this.l) n.lang = lang;
  }
  word(level) { return this.w[SEV[level]] ?? level; }
  get x() { return this.box.classList.contains("x"); }
  collapse(x = this.x) {
    this.box.classList.toggle("x", x);
    this.btn.textContent = x ? say(this.w[9], this.w[this.v?.worst]) : this.w[8];
  }
  toggle() { // SC 2.2.2: hidden until the text changes
    const x = !this.x;
    try { sessionStorage[this.k] = x ? this.key : "-"; } catch {}
    this.collapse(x);
  }
}

try {
  if (!customElements.get(TAG)) customElements.define(TAG, Banner);
  const site = S?.dataset.site;
  if (!site) return;
  const node = attr(attr(D.createElement(TAG), "site", site), "origin", HOME);
  if (S.dataset.lang) node.lang = S.dataset.lang;
  for (const a of ["show-open", "follow"]) if (S.hasAttribute("data-" + a)) node.setAttribute(a, "");
  const place = () => {
    const p = S.parentNode;
    if (p && p !== D.head && p !== D.documentElement) p.insertBefore(node, S.nextSibling);
    else if (D.body) D.body.prepend(node);
    else D.addEventListener("DOMContentLoaded", place);
  };
  place();
} catch (e) { warn(e); }
})();
