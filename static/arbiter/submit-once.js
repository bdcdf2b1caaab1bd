// Forms marked data-submit-once send once: a second submit while the first is on its way (a
// double click on a confirm button) is dropped. The server refuses a repeat anyway (a deletion
// sent twice deletes once); this keeps the page on the first answer. A page brought back from
// the back-forward cache may submit again.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-submit-once")) return;
    if (form.dataset.submitted) {
      event.preventDefault();
      return;
    }
    form.dataset.submitted = "1";
  });
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    var forms = document.querySelectorAll("form[data-submit-once]");
    for (var i = 0; i < forms.length; i++) delete forms[i].dataset.submitted;
  });
})();
