/* statusd status page: "Notify me" (Web Push) for one site at a time. Loaded only when the
   daemon offers push. The sites followed are remembered in this browser only (localStorage);
   the server keeps the push subscription, the choices and the day, nothing else. */
(() => {
"use strict";
const D = document, words = D.getElementById("follow-words");
const boxes = D.querySelectorAll("details[data-follow-site]");
if (!words || !boxes.length || !window.fetch) return;
const MINE = "statusd-follow";
const supported = "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

const mine = () => {
  try { return JSON.parse(localStorage.getItem(MINE) || "{}") || {}; } catch (err) { return {}; }
};
const remember = (site, choice) => {
  const all = mine();
  if (choice) all[site] = choice; else delete all[site];
  try { localStorage.setItem(MINE, JSON.stringify(all)); } catch (err) { /* private mode: fine */ }
  return all;
};
const say = (box, key) => { box.querySelector("[data-follow-message]").textContent = words.dataset[key] || ""; };
const shown = (box, on) => { box.querySelector("[data-follow-stop]").hidden = !on; };

const bytes = text => {
  const b64 = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(b64), c => c.charCodeAt(0));
};
const post = (path, body) => fetch(path, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  credentials: "omit", cache: "no-store",
});

// A browser that cannot reach its push service may never answer: give up after a while.
const within = (promise, ms) => Promise.race([promise, new Promise((_, no) => setTimeout(
  () => no(Object.assign(new Error("no answer from the push service"), { name: "AbortError" })), ms))]);

const subscription = async () => {
  const offer = await fetch("push/config.json", { credentials: "omit" });
  if (!offer.ok) throw new Error("no offer");
  const key = (await offer.json()).key;
  const registration = await navigator.serviceWorker.register("sw.js", { scope: "./" });
  await navigator.serviceWorker.ready;
  return (await registration.pushManager.getSubscription())
    || registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes(key) });
};

const start = async (box, form) => {
  if (!supported) return say(box, "unsupported");
  const permission = await Notification.requestPermission();
  if (permission !== "granted") return say(box, "denied");
  let sub;
  try {
    sub = await within(subscription(), 20000);
  } catch (err) {
    // Chromium without a push service answers AbortError ("push service not available").
    return say(box, err && err.name === "NotAllowedError" ? "denied" : "unsupported");
  }
  const choice = { kinds: form.elements.kinds.value, language: form.elements.language.value };
  const answer = await post("push/subscribe", { ...sub.toJSON(), site: box.dataset.followSite, ...choice })
    .catch(() => null);
  if (!answer || !answer.ok) return say(box, "failed");
  remember(box.dataset.followSite, choice);
  shown(box, true);
  say(box, "on");
};

const stop = async box => {
  const registration = supported && await navigator.serviceWorker.getRegistration("./");
  const sub = registration && await registration.pushManager.getSubscription();
  if (sub) {
    const answer = await post("push/unsubscribe", { endpoint: sub.endpoint, site: box.dataset.followSite })
      .catch(() => null);
    if (!answer || !answer.ok) return say(box, "failed");
  }
  const left = remember(box.dataset.followSite, null);
  if (sub && !Object.keys(left).length) await sub.unsubscribe().catch(() => {});
  shown(box, false);
  say(box, "off");
};

for (const box of boxes) {
  const form = box.querySelector("form"), site = box.dataset.followSite;
  box.hidden = false;
  const choice = mine()[site];
  if (choice) {
    shown(box, true);
    if (form.elements.language.querySelector(`option[value="${CSS.escape(choice.language)}"]`)) {
      form.elements.language.value = choice.language;
    }
    form.elements.kinds.value = choice.kinds === "all" ? "all" : "status";
  }
  if (location.hash === "#follow-" + site) box.open = true;
  form.addEventListener("submit", event => {
    event.preventDefault();
    const button = box.querySelector("[data-follow-start]");
    button.disabled = true;
    start(box, form).catch(() => say(box, "failed")).finally(() => { button.disabled = false; });
  });
  box.querySelector("[data-follow-stop]").addEventListener("click", () => {
    stop(box).catch(() => say(box, "failed"));
  });
}
})();
