// The import job page: polls the job's JSON status until it is done or failed, and shows it.
(function () {
  "use strict";
  const root = document.getElementById("import-job");
  if (!root || root.dataset.finished === "true") return;
  const statusUrl = root.dataset.statusUrl;
  const statusText = document.getElementById("job-status");
  const bytesText = document.getElementById("job-bytes");
  const bar = document.getElementById("job-bar");
  const errorText = document.getElementById("job-error");
  const result = document.getElementById("job-result");
  // Words in the user's language, from the page (templates/annotate/import_job.html).
  const statusWords = JSON.parse(document.getElementById("job-status-words").textContent);
  const bytesOf = root.dataset.bytesOf;
  let delay = 1000;

  function fill(text, values) {
    return text.replace(/%\((\w+)\)s/g, (_, name) => String(values[name]));
  }

  function size(bytes) {
    const units = [root.dataset.bytesUnit, "KB", "MB", "GB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return (unit ? value.toFixed(1) : String(value)) + " " + units[unit];
  }

  function show(job) {
    root.dataset.status = job.status;
    statusText.textContent = statusWords[job.status] || job.status;
    const percent = Math.round(100 * job.progress);
    bar.style.width = percent + "%";
    bar.parentElement.setAttribute("aria-valuenow", String(percent));
    if (job.bytes_total) bytesText.textContent = fill(bytesOf, { done: size(job.bytes_done), total: size(job.bytes_total) });
    if (job.status === "failed") {
      errorText.textContent = job.error;
      errorText.hidden = false;
    }
    if (job.status === "done") {
      for (const cell of result.querySelectorAll("[data-total]")) {
        const value = job.result[cell.dataset.total];
        cell.textContent = value === undefined || value === null ? "–" : String(value);
      }
      result.hidden = false;
    }
  }

  function poll() {
    fetch(statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((response) => {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then((job) => {
        show(job);
        delay = 1000;
        if (job.status !== "done" && job.status !== "failed") setTimeout(poll, delay);
      })
      .catch(() => {
        // A hiccup (restart, network): keep trying, more slowly.
        delay = Math.min(delay * 2, 15000);
        setTimeout(poll, delay);
      });
  }

  setTimeout(poll, delay);
})();
