// settlewatch console: the only script. Pages work without it; with it, a file upload shows its
// progress. The form is sent as it would be (same fields, same CSRF token); the page the
// console answers with (the file's page, or the list with the reason) replaces this one.
"use strict";
for (const form of document.querySelectorAll("form[data-progress]")) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const bar = document.getElementById(form.dataset.progress);
    const request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.upload.addEventListener("progress", (progress) => {
      if (progress.lengthComputable) {
        bar.hidden = false;
        bar.value = Math.round((100 * progress.loaded) / progress.total);
      }
    });
    request.addEventListener("load", () => {
      if (request.responseURL && request.responseURL !== form.action) {
        window.location.assign(request.responseURL);
      } else {
        document.open();
        document.write(request.responseText);
        document.close();
      }
    });
    request.send(new FormData(form));
    form.querySelector("button[type=submit]").disabled = true;
  });
}
