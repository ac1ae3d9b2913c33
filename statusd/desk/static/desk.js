// The desk page works without this file; with it, presets fill the form at once and
// each channel's delivery state updates live.
"use strict";
(function () {
  function fillPreset(select) {
    var option = select.selectedOptions[0];
    if (!option || !option.value) { return; }
    var form = select.form;
    var level = form.querySelector('input[name="level"][value="' + option.dataset.level + '"]');
    if (level) { level.checked = true; }
    Object.keys(option.dataset).forEach(function (key) {
      if (key.indexOf("message") !== 0 || key === "message") { return; }
      var lang = key.slice("message".length).toLowerCase();
      var box = form.querySelector('textarea[name="message_' + lang + '"]');
      if (box) { box.value = option.dataset[key]; }
    });
  }
  function editing() {
    return Array.prototype.some.call(document.querySelectorAll("textarea, input:not([type=hidden])"),
      function (field) {
        return field.type === "radio" ? field.checked !== field.defaultChecked : field.value !== field.defaultValue;
      }) || Array.prototype.some.call(document.querySelectorAll("select"), function (select) {
        var chosen = Array.prototype.findIndex.call(select.options, function (o) { return o.defaultSelected; });
        return select.selectedIndex !== Math.max(chosen, 0);
      });
  }
  function poll() {
    var marks = document.querySelectorAll("[data-delivery]");
    var cards = document.querySelectorAll("section[data-last]");
    if (!cards.length || document.querySelector(".preview")) { return; }  // never lose a form being written
    fetch("/desk/state.json" + location.search, { credentials: "same-origin", cache: "no-store" })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (body) {
        if (!body) { return; }
        var changed = Array.prototype.some.call(cards, function (card) {
          return body.sites[card.id.slice("site-".length)] !== card.dataset.last;
        });
        if (changed && !editing()) { location.reload(); return; }  // a new update: show its deliveries
        marks.forEach(function (mark) {
          var state = body.deliveries[mark.dataset.delivery];
          if (!state) { return; }
          mark.textContent = state.label;
          mark.className = "state state-" + state.state;
        });
      })
      .catch(function () { /* the next poll tries again */ });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("select[data-presets]").forEach(function (select) {
      select.addEventListener("change", function () { fillPreset(select); });
    });
    setInterval(poll, 1000);
  });
})();
