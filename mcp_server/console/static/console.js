// Progressive enhancement only: every action works without this file.
// A form marked data-progress shows its upload's progress in its <progress>; the server answers
// with a redirect (followed here, then shown) or with an error page whose alert is shown in place.
document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-progress]")) {
    form.addEventListener("submit", (event) => {
      const bar = form.querySelector("progress");
      if (!bar) return;
      event.preventDefault();
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) { bar.max = e.total; bar.value = e.loaded; }
      });
      xhr.addEventListener("load", () => {
        if (xhr.status < 400) { window.location.assign(xhr.responseURL); return; }
        const page = new DOMParser().parseFromString(xhr.responseText, "text/html");
        const said = page.querySelector("[role=alert]");
        const out = form.querySelector("[data-error]");
        if (out) out.textContent = said ? said.textContent : "The upload was refused (" + xhr.status + ").";
      });
      xhr.send(new FormData(form));
    });
  }
});
