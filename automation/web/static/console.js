// 督办工作台: two small enhancements; every page works without them.
// 1. Running jobs: poll /api/jobs, move the progress bar, reload the page when the job ends (and every
//    data-refresh seconds meanwhile on 总览 and 回收, whose numbers change as files come in).
// 2. The 回收 drop zone: files dropped on it go into the file field and the form is sent.
(function () {
  "use strict";
  function watchJobs() {
    var boxes = document.querySelectorAll('[data-job][data-state="running"]');
    if (!boxes.length) { return; }
    var started = Date.now();
    function poll() {
      fetch("/api/jobs", {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { return r.json(); })
        .then(function (jobs) {
          var reload = false;
          boxes.forEach(function (box) {
            var job = jobs[box.getAttribute("data-job")];
            if (!job || String(job.id) !== box.getAttribute("data-id") || job.state !== "running") { reload = true; return; }
            var bar = box.querySelector("progress"), text = box.querySelector(".job-text");
            if (bar && job.total) { bar.max = job.total; bar.value = job.done; }
            if (text) { text.textContent = (job.total ? job.done + " / " + job.total : "准备中…") + " " + (job.step || ""); }
          });
          var every = Number(boxes[0].getAttribute("data-refresh") || 0);
          if (every && Date.now() - started > every * 1000) { reload = true; }
          if (reload) { window.location.reload(); } else { window.setTimeout(poll, 1000); }
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    }
    window.setTimeout(poll, 800);
  }
  function dropZone() {
    var form = document.getElementById("upload"), input = document.getElementById("files");
    if (!form || !input) { return; }
    ["dragenter", "dragover"].forEach(function (n) {
      form.addEventListener(n, function (e) { e.preventDefault(); form.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (n) {
      form.addEventListener(n, function (e) { e.preventDefault(); form.classList.remove("over"); });
    });
    form.addEventListener("drop", function (e) {
      if (!e.dataTransfer || !e.dataTransfer.files.length) { return; }
      input.files = e.dataTransfer.files;
      form.submit();
    });
  }
  document.addEventListener("DOMContentLoaded", function () { watchJobs(); dropZone(); });
})();
