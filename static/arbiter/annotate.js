// Keyboard shortcuts and time-on-item for the annotator page. Works with or without htmx:
// each key clicks the matching submit button, so the form posts exactly as a click would.
(function () {
  "use strict";
  var shownAt = performance.now();

  function resetTimer() { shownAt = performance.now(); }
  document.addEventListener("htmx:afterSwap", resetTimer);

  document.addEventListener("submit", function (event) {
    var timer = event.target.querySelector("input[data-role=timer]");
    if (timer) timer.value = String(Math.round(performance.now() - shownAt));
  }, true);
  document.addEventListener("htmx:configRequest", function (event) {
    // htmx 2 passes the form data as a FormData proxy: reading a name works, `in` does not.
    var parameters = event.detail.parameters;
    if (parameters && parameters.ms_on_item !== undefined) {
      parameters.ms_on_item = String(Math.round(performance.now() - shownAt));
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    var target = event.target;
    if (target && (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type === "text"))) return;
    var key = event.key.toLowerCase();
    var button = document.querySelector('.vote-form button[data-key="' + key + '"]');
    if (!button || button.disabled) return;
    event.preventDefault();
    button.click();
  });
})();

// 4xx answers carry a readable message and are swapped in (htmx-config in base.html); a 5xx or a
// network failure has no page to show, so say so instead of doing nothing.
(function () {
  "use strict";
  function show(visible) {
    var banner = document.getElementById("connection-error");
    if (banner) banner.hidden = !visible;
  }
  document.addEventListener("htmx:responseError", function () { show(true); });
  document.addEventListener("htmx:sendError", function () { show(true); });
  document.addEventListener("htmx:afterSwap", function () { show(false); });
})();
