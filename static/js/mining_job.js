// Polls the job's progress JSON every two seconds while it is pending or running.
(function () {
  const root = document.getElementById("mining-job");
  if (!root) return;
  const url = root.dataset.progressUrl;
  const field = (name) => root.querySelector(`[data-field="${name}"]`);
  // Status words in the user's language, from the page (templates/mining/job.html).
  const statusWords = JSON.parse(document.getElementById("job-status-words").textContent);

  function render(job) {
    field("status").textContent = statusWords[job.status] || job.status;
    field("queries_done").textContent = job.queries_done;
    field("queries_total").textContent = job.queries_total;
    field("candidates_added").textContent = job.candidates_added;
    field("eta").textContent = job.eta_seconds === null ? "—" : `${Math.round(job.eta_seconds)} s`;
    const bar = field("bar");
    bar.max = job.queries_total;
    bar.value = job.queries_done;
    const warnings = field("warnings");
    warnings.replaceChildren(...job.warnings.map((text) => {
      const item = document.createElement("li");
      item.textContent = text;
      return item;
    }));
    return job.status === "pending" || job.status === "running";
  }

  async function poll() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (response.ok && !render(await response.json())) return;
    } catch (error) {
      // the network blinked: try again on the next tick
    }
    setTimeout(poll, 2000);
  }

  if (root.dataset.status === "pending" || root.dataset.status === "running") setTimeout(poll, 2000);
})();
