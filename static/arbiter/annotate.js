// Time-on-item and the vote guard for the annotator page (the keys are in annotate-keys.js: each
// key clicks the matching submit button, so the form posts exactly as a click would).
//
// No vote the annotator did not mean: for GUARD_MS after an item appears (page load or htmx swap)
// its buttons are disabled and clicks and keys are dropped, so the second click of a double click,
// or a key pressed twice, cannot land on the item that replaced the one voted on; once a vote is
// sent, nothing more is sent from that item; a held key (auto-repeat, `event.repeat`) never votes.
// The server checks the item token each vote carries as well (a second tab, no JavaScript).
(function () {
  "use strict";
  var GUARD_MS = 800;
  var shownAt = performance.now();
  var sent = false;

  function form() { return document.querySelector(".vote-form"); }
  // The campaign's guidelines not yet acknowledged (feedback/_campaign_bar.html): no vote until they are.
  function guidelinesUnread() { return !!document.querySelector('#guidelines[data-acknowledged="false"]'); }
  function guarded() { return sent || guidelinesUnread() || performance.now() - shownAt < GUARD_MS; }
  // Submit buttons only: a type=button control (highlight differences) never sends anything.
  var SUBMITS = "button:not([type=button])";
  function setButtons(target, disabled) {
    var buttons = target.querySelectorAll(SUBMITS);
    for (var i = 0; i < buttons.length; i++) buttons[i].disabled = disabled;
  }

  function itemShown() {
    shownAt = performance.now();
    sent = false;
    var current = form();
    if (!current) return;
    current.classList.add("guarded");
    setButtons(current, true);
    setTimeout(function () {
      if (!current.isConnected) return;
      current.classList.remove("guarded");
      setButtons(current, guidelinesUnread());
    }, GUARD_MS);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", itemShown);
  else itemShown();
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "item") itemShown();
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    // No answer to swap (network error, 5xx): the same item stays, so let the annotator try again.
    if (sent && !event.detail.successful && !(event.detail.xhr && event.detail.xhr.status >= 400 && event.detail.xhr.status < 500)) {
      sent = false;
    }
    // A refusal said in place (#vote-refusal: session expired, role lost) leaves the item on screen: it may be sent again.
    if (event.detail.xhr && event.detail.xhr.getResponseHeader("HX-Retarget") === "#vote-refusal") sent = false;
  });

  function drop(event) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
  // Capture phase on the document: runs before htmx's own listener on the form.
  document.addEventListener("click", function (event) {
    var button = event.target && event.target.closest ? event.target.closest(".vote-form " + SUBMITS) : null;
    if (button && guarded()) drop(event);
  }, true);
  document.addEventListener("submit", function (event) {
    if (!event.target.classList || !event.target.classList.contains("vote-form")) return;
    if (sent) { drop(event); return; }
    sent = true;
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

// Nothing typed is lost: what the annotator typed or picked for an item (reason, better response,
// strength, aspects) is copied to sessionStorage under the item's token as they type and when they
// vote; it is put back when that item is shown again in this tab (after logging in again, when the
// session expired mid-item), and dropped once a vote or skip for it is stored. A refusal the server
// answers in place (#vote-refusal: session expired, role lost) leaves the form as it is.
(function () {
  "use strict";
  var PREFIX = "arbiter:draft:";
  var FIELDS = ["rationale", "demonstration", "strength", "helpfulness", "harmlessness", "honesty"];
  var pendingItem = null;

  function voteForm() { return document.querySelector(".vote-form"); }
  function itemOf(form) {
    var input = form && form.querySelector("input[name=item]");
    return input ? input.value : "";
  }
  function storage() {
    try { return window.sessionStorage; } catch (error) { return null; }  // blocked storage: no drafts
  }

  function draftRead(form) {
    var values = {};
    var any = false;
    FIELDS.forEach(function (name) {
      var fields = form.querySelectorAll('[name="' + name + '"]');
      for (var i = 0; i < fields.length; i++) {
        var field = fields[i];
        if (field.type === "radio" && !field.checked) continue;
        values[name] = field.value;
        if (field.value) any = true;
      }
    });
    return any ? values : null;
  }

  function draftSave(form) {
    var store = storage();
    var item = itemOf(form);
    if (!store || !item) return;
    var values = draftRead(form);
    try {
      if (values) store.setItem(PREFIX + item, JSON.stringify(values));
      else store.removeItem(PREFIX + item);
    } catch (error) { /* quota: nothing more to do */ }
  }

  function draftRestore() {
    var form = voteForm();
    var store = storage();
    if (!form || !store) return;
    var saved = store.getItem(PREFIX + itemOf(form));
    if (saved) {
      var values;
      try { values = JSON.parse(saved); } catch (error) { values = null; }
      if (values) {
        FIELDS.forEach(function (name) {
          var value = values[name];
          if (!value) return;
          var fields = form.querySelectorAll('[name="' + name + '"]');
          for (var i = 0; i < fields.length; i++) {
            var field = fields[i];
            if (field.type === "radio") field.checked = field.value === value;
            else if (!field.value) field.value = value;  // what the server put back wins
          }
          if (name === "demonstration" && fields.length) {
            var details = fields[0].closest("details");
            if (details) details.open = true;
          }
        });
      }
    }
    draftSave(form);  // what the server kept after a refusal is now saved under this item too
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draftRestore);
  else draftRestore();
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "item") draftRestore();
  });
  function onEdit(event) {
    var form = event.target && event.target.closest ? event.target.closest(".vote-form") : null;
    if (form) draftSave(form);
  }
  document.addEventListener("input", onEdit);
  document.addEventListener("change", onEdit);
  document.addEventListener("submit", function (event) {
    if (event.target.classList && event.target.classList.contains("vote-form")) draftSave(event.target);
  }, true);
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail.elt && event.detail.elt.closest ? event.detail.elt.closest(".vote-form") : null;
    pendingItem = form ? itemOf(form) : null;
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    // 200: the vote (or skip) was stored and the next item came back; any refusal is 4xx.
    var store = storage();
    if (pendingItem && store && event.detail.xhr && event.detail.xhr.status === 200) store.removeItem(PREFIX + pendingItem);
    pendingItem = null;
  });
})();

// The campaign's guidelines (feedback/_campaign_bar.html): the dialog opens by itself while the
// latest version is unread (first visit to a campaign, or a new version), and stays open until
// "I have read these" is posted (htmx swaps the item back in, votable); the key g or the
// "Guidelines" button opens it at any time. Without JavaScript the dialog is shown in the page
// (its `open` attribute) and the button is a link to the guidelines page.
(function () {
  "use strict";
  function dialog() { return document.getElementById("guidelines"); }
  function open() {
    var box = dialog();
    if (!box || typeof box.showModal !== "function") return false;
    if (box.open) box.close();
    box.showModal();
    return true;
  }
  function itemShown() {
    var box = dialog();
    if (box && box.getAttribute("data-acknowledged") === "false") open();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", itemShown);
  else itemShown();
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "item") itemShown();
  });
  document.addEventListener("cancel", function (event) {
    // Escape does not dismiss guidelines that are still to be acknowledged.
    var box = dialog();
    if (event.target === box && box.getAttribute("data-acknowledged") === "false") event.preventDefault();
  }, true);
  document.addEventListener("click", function (event) {
    var link = event.target && event.target.closest ? event.target.closest("[data-guidelines-open]") : null;
    if (link && open()) event.preventDefault();
  });
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    if (event.key.toLowerCase() !== "g") return;
    var target = event.target;
    if (target && (target.tagName === "TEXTAREA" || target.tagName === "SELECT" || (target.tagName === "INPUT" && target.type === "text"))) return;
    if (open()) event.preventDefault();
  });
})();
