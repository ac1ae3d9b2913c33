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
  function poll() {
    var marks = document.querySelectorAll("[data-delivery]");
    if (!marks.length) { return; }
    fetch("/desk/state.json" + location.search, { credentials: "same-origin", cache: "no-store" })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (body) {
        if (!body) { return; }
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
