// Keyboard shortcuts of the annotator page, read from the page itself: every control in #item with
// a data-key attribute is bound to that key, so a campaign that renders fewer questions (no
// strength, other aspects, no rationale) simply has fewer keys. What a key does depends on the control:
//   submit button: clicked (votes, skips, undoes: the form posts exactly as a click would; the vote
//     guard in annotate.js drops clicks while the item is new or once a vote was sent);
//   radio: picked, or, when it is already picked, the group goes back to "—" (strength, aspects);
//   text box: focused (r: the reason); <summary>: its <details> opens and its first control is focused;
//   type=button: clicked (show the whole prompt, highlight differences, this list of keys).
// Never while typing in a text box (Esc leaves it, back to the vote controls; in the Flag list's note,
// back to the list's reasons: a second Esc closes the list), never on auto-repeat,
// never with Ctrl/Alt/Meta, and never while a dialog is open. After each swap of the item, focus goes
// back to the vote controls. `?` opens the list of keys (#keys-help), built from the same attributes;
// a key handled by another script (g: guidelines) is listed from data-help-key.
(function () {
  "use strict";

  function isTyping(el) {
    if (!el || !el.tagName) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    return el.tagName === "INPUT" && !/^(radio|checkbox|button|submit|reset|range|color|file|image)$/.test(el.type);
  }
  function item() { return document.getElementById("item"); }
  function help() { return document.getElementById("keys-help"); }
  function openFlagMenu() { return document.querySelector("#item .flag-menu[open]"); }

  function focusVoteControls() {
    var bar = document.querySelector("#item .vote-bar");
    if (bar) bar.focus({ preventScroll: true });
  }

  function keyed(scope) {  // the keyed controls on screen (a hidden one, such as an unneeded toggle, has no key)
    if (!scope) return [];
    return Array.prototype.slice.call(scope.querySelectorAll("[data-key]")).filter(function (el) {
      return !el.closest("[hidden]");
    });
  }
  function control(key) {
    var all = keyed(item());
    for (var i = 0; i < all.length; i++) if (all[i].getAttribute("data-key") === key) return all[i];
    return null;
  }

  function openDetailsAround(el) {
    var details = el.closest("details");
    if (details && !details.open) details.open = true;
  }

  function pickRadio(radio) {
    var group = radio.form ? radio.form.querySelectorAll('input[type=radio][name="' + radio.name + '"]') : [radio];
    var target = radio;
    if (radio.checked) {  // pressed again: back to "—"
      target = null;
      for (var i = 0; i < group.length; i++) if (group[i].value === "") target = group[i];
      if (!target) return;
    }
    target.checked = true;
    openDetailsAround(target);
    target.dispatchEvent(new Event("change", { bubbles: true }));  // the draft in sessionStorage follows
  }

  function activate(el) {
    var tag = el.tagName;
    if (tag === "INPUT" && el.type === "radio") { pickRadio(el); return; }
    if (tag === "TEXTAREA" || tag === "INPUT") { openDetailsAround(el); el.focus(); return; }
    if (tag === "SUMMARY") {
      var details = el.parentElement;
      details.open = true;
      var first = details.querySelector("button:not([disabled]), textarea, input:not([type=hidden])");
      if (first) first.focus();
      return;
    }
    if (!el.disabled) el.click();
  }

  // --- the list of keys (?) ---------------------------------------------------------------------
  // One row per control, except that a radio group (strength, each aspect) is one row with its
  // keys in order; votes first, then strength and aspects, skip/flag/undo, the text boxes, the rest.
  function textOf(node) {
    var copy = node.cloneNode(true);
    var drop = copy.querySelectorAll("kbd, textarea, .hint");
    for (var i = 0; i < drop.length; i++) drop[i].remove();
    return copy.textContent.replace(/\s+/g, " ").trim();
  }
  function words(el) {
    if (el.getAttribute("data-key-label")) return el.getAttribute("data-key-label");
    if (el.tagName === "TEXTAREA") return "Type in the box: " + textOf(el.closest("label") || el);
    if (el.type === "radio") return textOf(el.closest("label") || el);
    return textOf(el);
  }
  function rank(el) {
    if (el.name === "choice") return 0;
    if (el.type === "radio") return el.name === "strength" ? 1 : 2;
    if (el.type === "submit" || (el.tagName === "SUMMARY" && el.closest(".flag-menu"))) return 3;
    if (el.tagName === "TEXTAREA" || el.tagName === "SUMMARY") return 4;
    return 5;
  }
  function helpRows() {
    var rows = [];
    var groups = {};
    keyed(item()).forEach(function (el, index) {
      if (el.type === "radio") {
        var group = groups[el.name];
        if (!group) {
          var legend = el.closest("fieldset") && el.closest("fieldset").querySelector("legend");
          group = groups[el.name] = { keys: [], options: [], title: legend ? textOf(legend) : el.name, rank: rank(el), at: index };
          rows.push(group);
        }
        group.keys.push(el.getAttribute("data-key"));
        group.options.push(words(el));
        return;
      }
      rows.push({ keys: [el.getAttribute("data-key")], text: words(el), rank: rank(el), at: index });
    });
    var elsewhere = document.querySelectorAll("[data-help-key]");
    for (var i = 0; i < elsewhere.length; i++) {
      rows.push({ keys: [elsewhere[i].getAttribute("data-help-key")], text: words(elsewhere[i]), rank: 5, at: 1000 + i });
    }
    rows.forEach(function (row) { if (row.options) row.text = row.title + " " + row.options.join(" / "); });
    rows.sort(function (a, b) { return a.rank - b.rank || a.at - b.at; });
    rows.push({ keys: ["Esc"], text: "Leave a text box (back to the vote controls); close the Flag list or this list" });
    return rows;
  }
  function helpOpen() {
    var dialog = help();
    if (!dialog || dialog.open) return;
    var list = dialog.querySelector("[data-role=keys-list]");
    list.replaceChildren();
    helpRows().forEach(function (row) {
      var tr = document.createElement("tr");
      var keys = document.createElement("td");
      row.keys.forEach(function (key, n) {
        if (n) keys.appendChild(document.createTextNode(" "));
        var kbd = document.createElement("kbd");
        kbd.textContent = key;
        keys.appendChild(kbd);
      });
      var what = document.createElement("td");
      what.textContent = row.text;
      tr.appendChild(keys);
      tr.appendChild(what);
      list.appendChild(tr);
    });
    dialog.showModal();
  }
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest(".keys-help-open")) helpOpen();
  });
  // A click outside the open Flag list closes it (as Esc does).
  document.addEventListener("click", function (event) {
    var menu = openFlagMenu();
    if (menu && event.target.closest && !event.target.closest(".flag-menu")) menu.open = false;
  });
  document.addEventListener("close", function (event) {
    if (event.target === help()) focusVoteControls();
  }, true);

  // --- the Flag list: arrows move between reasons --------------------------------------------
  function flagArrows(event, menu) {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    var reasons = Array.prototype.slice.call(menu.querySelectorAll(".flag-reason"));
    var at = reasons.indexOf(document.activeElement);
    var next = event.key === "ArrowDown" ? at + 1 : (at < 0 ? reasons.length : at) - 1;
    if (next < 0 || next >= reasons.length) return;
    event.preventDefault();
    reasons[next].focus();
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var dialog = help();
    if (dialog && dialog.open) {
      if (event.key === "?") { event.preventDefault(); dialog.close(); }
      return;  // Esc: the dialog's own cancel
    }
    if (document.querySelector("dialog[open]")) return;  // another dialog (guidelines) has the keys
    var target = event.target;
    var inItem = target && target.closest && target.closest("#item");
    if (event.key === "Escape") {
      var menu = openFlagMenu();
      if (menu && isTyping(target) && menu.contains(target)) {  // Esc in the note leaves the note, not the list
        event.preventDefault();
        var reason = menu.querySelector('.flag-reason[value="other"]');
        target.blur();  // the reasons are disabled for a moment after an item arrives: then the list's summary
        (reason && !reason.disabled ? reason : menu.querySelector("summary")).focus();
        return;
      }
      if (menu) { event.preventDefault(); menu.open = false; focusVoteControls(); return; }
      if (isTyping(target) && inItem) { event.preventDefault(); target.blur(); focusVoteControls(); }
      return;
    }
    // Enter on a radio would submit the form with its first button (Left is better): never.
    if (event.key === "Enter" && target.type === "radio" && inItem) { event.preventDefault(); return; }
    if (event.repeat || isTyping(target)) return;
    var open = openFlagMenu();
    if (open) { flagArrows(event, open); return; }  // digits must not vote while a reason is being chosen
    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (key === "?") { event.preventDefault(); helpOpen(); return; }
    var el = control(key);
    if (!el) return;
    event.preventDefault();
    activate(el);
  });

  // Focus on the vote controls when an item appears (unless the annotator is already somewhere).
  function itemShown(always) {
    var menu = openFlagMenu();  // a flag refused (other without a note): back to the note
    var note = menu && menu.querySelector("textarea");
    if (note) { note.focus(); return; }
    var active = document.activeElement;
    if (always || !active || active === document.body || !active.isConnected) focusVoteControls();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { itemShown(false); });
  else itemShown(false);
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "item") itemShown(true);
  });
})();
