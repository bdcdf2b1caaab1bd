// Reading aids of the annotator page: the whole prompt on request, the differences between two
// near-identical responses, and a warning before the item's lease runs out. Each is set up again
// when htmx swaps a new item in.
(function () {
  "use strict";

  // --- a long prompt: capped in a scroll box (CSS) until "Show the whole prompt" ------------------
  function promptSetUp(scope) {
    var prompt = scope.querySelector("#prompt");
    var toggle = scope.querySelector(".prompt-toggle");
    if (!prompt || !toggle) return;
    toggle.hidden = prompt.scrollHeight <= prompt.clientHeight + 2;
  }
  function promptToggle(toggle) {
    var prompt = document.getElementById(toggle.getAttribute("aria-controls"));
    var expanded = prompt.classList.toggle("expanded");
    toggle.setAttribute("aria-expanded", String(expanded));
    toggle.firstChild.textContent = expanded ? "Collapse the prompt " : "Show the whole prompt ";
  }

  // --- highlight differences: a word-level LCS over the rendered text, marked with <mark> ----------
  // Only text nodes are split and wrapped (textContent, createElement): no HTML from the texts is
  // ever parsed, so the rendered Markdown stays as safe as the server made it. Common leading and
  // trailing words are set aside first; what remains is compared only up to MAX_CELLS (words left
  // times words right), so a huge or very different pair is refused with a message, never frozen on.
  var MAX_CELLS = 4000000;

  function wordsOf(root) {
    var words = [];
    if (!root) return words;
    var walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    var node;
    while ((node = walker.nextNode())) {
      var pattern = /\S+/g;
      var match;
      while ((match = pattern.exec(node.data))) {
        words.push({ node: node, start: match.index, end: match.index + match[0].length, text: match[0] });
      }
    }
    return words;
  }

  // Indices of the words of `a` and of `b` outside a longest common subsequence; null if too big.
  function changedWords(a, b) {
    var start = 0;
    while (start < a.length && start < b.length && a[start].text === b[start].text) start++;
    var endA = a.length, endB = b.length;
    while (endA > start && endB > start && a[endA - 1].text === b[endB - 1].text) { endA--; endB--; }
    var n = endA - start, m = endB - start;
    if (n * m > MAX_CELLS) return null;
    var width = m + 1;
    var table = new Uint16Array((n + 1) * width);  // n, m <= 2000 when both are > 0: lengths fit
    for (var i = n - 1; i >= 0; i--) {
      for (var j = m - 1; j >= 0; j--) {
        table[i * width + j] = a[start + i].text === b[start + j].text
          ? table[(i + 1) * width + j + 1] + 1
          : Math.max(table[(i + 1) * width + j], table[i * width + j + 1]);
      }
    }
    var left = [], right = [];
    i = 0; j = 0;
    while (i < n && j < m) {
      if (a[start + i].text === b[start + j].text) { i++; j++; }
      else if (table[(i + 1) * width + j] >= table[i * width + j + 1]) left.push(start + i++);
      else right.push(start + j++);
    }
    while (i < n) left.push(start + i++);
    while (j < m) right.push(start + j++);
    return [left, right];
  }

  function mark(words, indices) {
    var changed = new Set(indices);
    var byNode = new Map();
    words.forEach(function (word, index) {
      if (!byNode.has(word.node)) byNode.set(word.node, []);
      byNode.get(word.node).push({ word: word, changed: changed.has(index) });
    });
    byNode.forEach(function (entries, node) {
      if (!entries.some(function (e) { return e.changed; })) return;
      var fragment = document.createDocumentFragment();
      var at = 0;
      for (var k = 0; k < entries.length; k++) {
        if (!entries[k].changed) continue;
        var first = entries[k].word;
        while (k + 1 < entries.length && entries[k + 1].changed) k++;  // a run of changed words: one mark
        var last = entries[k].word;
        fragment.appendChild(document.createTextNode(node.data.slice(at, first.start)));
        var highlight = document.createElement("mark");
        highlight.className = "diff";
        highlight.textContent = node.data.slice(first.start, last.end);
        fragment.appendChild(highlight);
        at = last.end;
      }
      fragment.appendChild(document.createTextNode(node.data.slice(at)));
      node.replaceWith(fragment);
    });
  }

  function unmark(root) {
    if (!root) return;
    var marks = root.querySelectorAll("mark.diff");
    for (var i = 0; i < marks.length; i++) marks[i].replaceWith(document.createTextNode(marks[i].textContent));
    root.normalize();
  }

  function plural(count, word) { return count + " " + word + (count === 1 ? "" : "s"); }

  function diffToggle(toggle) {
    var form = toggle.closest("form");
    var left = form.querySelector('[data-side="left"] .md');
    var right = form.querySelector('[data-side="right"] .md');
    var status = form.querySelector(".diff-status");
    if (toggle.getAttribute("aria-pressed") === "true") {
      unmark(left);
      unmark(right);
      toggle.setAttribute("aria-pressed", "false");
      status.textContent = "";
      return;
    }
    if (!left || !right) { status.textContent = "One response is empty: nothing to compare word by word."; return; }
    var a = wordsOf(left), b = wordsOf(right);
    var changed = changedWords(a, b);
    if (!changed) {
      status.textContent = "Too long or too different to highlight word by word (" + plural(a.length, "word") + " and " +
        plural(b.length, "word") + "); nothing was marked.";
      return;
    }
    mark(a, changed[0]);
    mark(b, changed[1]);
    toggle.setAttribute("aria-pressed", "true");
    status.textContent = changed[0].length + changed[1].length === 0
      ? "The responses are the same word for word."
      : "Changed words marked: " + changed[0].length + " on the left, " + changed[1].length + " on the right.";
  }

  // --- lease timer ---------------------------------------------------------------------------------
  // The page says how many seconds the lease had left when it was rendered (no clock skew with the
  // server); the warning shows in the last minute, or the last 20% of a lease shorter than 5 minutes.
  var leaseTimer = null;
  function clock(seconds) {
    var s = Math.max(0, Math.ceil(seconds));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }
  function leaseSetUp(scope) {
    if (leaseTimer) { clearInterval(leaseTimer); leaseTimer = null; }
    var warning = scope.querySelector(".lease-warning");
    if (!warning) return;
    var length = Number(warning.getAttribute("data-lease-length")) || 0;
    var deadline = performance.now() + Number(warning.getAttribute("data-lease-left")) * 1000;
    var warnAt = Math.min(60, 0.2 * length);
    function tick() {
      if (!warning.isConnected) { clearInterval(leaseTimer); leaseTimer = null; return; }
      var left = (deadline - performance.now()) / 1000;
      if (left > warnAt) { warning.hidden = true; return; }
      warning.hidden = false;
      warning.textContent = left > 0
        ? "Your hold on this item ends in " + clock(left) + ". Vote or skip before then: after that the item may go to " +
          "another annotator, and if it does, a vote from this page is refused (what you typed is kept)."
        : "Your hold on this item has run out. A vote is still saved unless another annotator has taken the item; " +
          "if it is refused, what you typed is kept and your next item is shown.";
    }
    tick();
    leaseTimer = setInterval(tick, 1000);
  }

  function itemShown() {
    var scope = document.getElementById("item");
    if (!scope) return;
    promptSetUp(scope);
    leaseSetUp(scope);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", itemShown);
  else itemShown();
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "item") itemShown();
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest(".prompt-toggle, .diff-toggle") : null;
    if (!button) return;
    if (button.classList.contains("prompt-toggle")) promptToggle(button);
    else diffToggle(button);
  });
})();
