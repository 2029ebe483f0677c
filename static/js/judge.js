// The judging page: keyboard-first grading. Every action is sent at once with an idempotency key;
// actions not yet acknowledged by the server wait in localStorage and are re-sent (same key) on the
// next load, so closing the tab or losing the network loses nothing and a retry stores one grade.
(function () {
  "use strict";
  const root = document.getElementById("workbench");
  if (!root) return;
  const task = JSON.parse(document.getElementById("task-data").textContent);
  const api = root.dataset.api; // /api/tasks/<id>/
  const pendingKey = "rs-pending-" + root.dataset.task;
  const cards = Array.from(document.querySelectorAll(".candidate"));
  const byId = new Map(task.candidates.map((c) => [String(c.id), c]));
  const message = document.getElementById("message");
  const saveState = document.getElementById("save-state");
  let focus = 0;
  let focusStartedAt = performance.now();
  let inFlight = 0;

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "k" + Date.now().toString(36) + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  }

  function csrf() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function say(text) { message.textContent = text || ""; }

  // Interface text in the user's language (the view renders it: annotate/judging/pages.py).
  const uiText = JSON.parse(document.getElementById("judge-text").textContent);
  function t(key, values) {
    return (uiText[key] || key).replace(/%\((\w+)\)s/g, (_, name) => String((values || {})[name]));
  }

  function setSaveState() {
    const pending = loadPending().length;
    saveState.classList.toggle("pending", pending > 0 && navigator.onLine);
    saveState.classList.toggle("offline", pending > 0 && !navigator.onLine);
    saveState.classList.toggle("failed", pending > 0 && lastFailure !== null);
    if (!pending) lastFailure = null;
    saveState.textContent = !pending ? t("saved")
      : !navigator.onLine ? t("offline", { n: pending })
      : lastFailure !== null ? t("not_saved", { why: lastFailure, n: pending })
      : t("saving", { n: pending });
  }

  // A 5xx, a timeout or a dropped connection says nothing about the action itself: it stays
  // queued and is re-sent with the same idempotency key. Only a definite refusal (other 4xx)
  // drops it, with the server's reason on screen.
  function retryable(status) { return status === 0 || status === 408 || status === 429 || status >= 500; }
  let lastFailure = null;
  let retryDelay = 1000;
  let retryTimer = null;
  function scheduleRetry() {
    if (retryTimer !== null) return;
    retryTimer = setTimeout(() => { retryTimer = null; flushPending(); }, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 30000);
  }

  function loadPending() {
    try { return JSON.parse(localStorage.getItem(pendingKey) || "[]"); } catch (e) { return []; }
  }
  function storePending(list) {
    if (list.length) localStorage.setItem(pendingKey, JSON.stringify(list));
    else localStorage.removeItem(pendingKey);
  }

  async function post(path, body) {
    const response = await fetch(api + path, {
      method: "POST", credentials: "same-origin", keepalive: true,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf(), "Accept": "application/json" },
      body: JSON.stringify(body || {}),
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { ok: response.ok, status: response.status, data: data };
  }

  // Send one queued action: acknowledged or refused (4xx) leaves the queue; anything else
  // (network failure, 5xx) stays queued and is retried with backoff.
  async function send(action) {
    inFlight += 1;
    try {
      let result;
      try {
        result = await post(action.path, action.body);
      } catch (error) {
        result = { ok: false, status: 0, data: null };
      }
      if (retryable(result.status)) {
        lastFailure = result.status ? "HTTP " + result.status : t("no_connection");
        scheduleRetry();
        return result;
      }
      removePending(action.body.idempotency_key);
      lastFailure = null;
      retryDelay = 1000;
      if (!result.ok) {
        say((result.data && result.data.detail) || t("refused", { status: result.status }));
        if (result.status === 409 && action.path === "judgments/") refreshFromServer();
        return result;
      }
      if (result.data && result.data.judgment) applyJudgment(result.data.judgment);
      if (result.data && result.data.progress) { Object.assign(progress, result.data.progress); renderProgress(progress); }
      return result;
    } finally {
      inFlight -= 1;
      setSaveState();
    }
  }

  // Actions go out one after another, in the order the annotator made them: "undo the last
  // grade" must mean the last one typed, not the last one that happened to reach the server.
  let chain = Promise.resolve();
  function enqueue(path, body) {
    body.idempotency_key = uuid();
    const action = { path: path, body: body };
    const list = loadPending();
    list.push(action);
    storePending(list);
    setSaveState();
    if (lastFailure !== null) {
      // Earlier actions are waiting for a retry: this one queues behind them, so the server
      // sees them in the order they were made.
      scheduleRetry();
      return Promise.resolve({ ok: false, status: 0, data: null });
    }
    const result = chain.then(() => send(action));
    chain = result.catch(() => null);
    return result;
  }

  function removePending(key) {
    storePending(loadPending().filter((a) => a.body.idempotency_key !== key));
  }

  // Re-send what the server has not acknowledged (same keys), in order, on the same chain.
  function flushPending() {
    const result = chain.then(async () => {
      for (const action of loadPending()) {
        const sent = await send(action);
        if (retryable(sent.status)) break; // still failing: keep the order, the retry timer comes back
      }
    });
    chain = result.catch(() => null);
    return result;
  }

  async function refreshFromServer() {
    const response = await fetch(api, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const fresh = await response.json();
    fresh.candidates.forEach((c) => applyJudgment(Object.assign({ candidate: c.id }, c)));
    Object.assign(progress, fresh.progress);
    renderProgress(progress);
  }

  function applyJudgment(state) {
    const data = byId.get(String(state.candidate));
    if (!data) return;
    const wasOpen = isOpenData(data);
    Object.assign(data, { grade: state.grade, skipped: state.skipped, skip_reason: state.skip_reason,
                          flagged: state.flagged, note: state.note });
    countChange(wasOpen, isOpenData(data));
    renderCard(cards.find((c) => c.dataset.id === String(state.candidate)));
  }

  // Saving a grade returns no progress figures (the hot path stays lean): the page keeps count.
  const progress = JSON.parse(JSON.stringify(task.progress));
  function countChange(wasOpen, nowOpen) {
    if (wasOpen === nowOpen) return;
    const step = wasOpen ? 1 : -1;
    progress.today.done += step;
    progress.overall.done += step;
    progress.task.done = cards.filter((c, i) => !isOpen(i)).length;
    renderProgress(progress);
  }
  function isOpenData(d) { return (d.grade === null || d.grade === undefined) && !d.skipped; }

  function renderCard(card) {
    const data = byId.get(card.dataset.id);
    if (data.grade === null || data.grade === undefined) card.removeAttribute("data-grade");
    else card.dataset.grade = data.grade;
    card.classList.toggle("skipped", !!data.skipped);
    card.querySelectorAll(".grade").forEach((b) => b.classList.toggle("selected", String(data.grade) === b.dataset.grade));
    card.querySelector(".badge.flag").hidden = !data.flagged;
    const skip = card.querySelector(".badge.skip");
    skip.hidden = !data.skipped;
    skip.textContent = data.skipped ? t("skipped_because", { reason: data.skip_reason }) : t("skipped");
    const note = card.querySelector(".badge.note-badge");
    note.hidden = !data.note;
    note.title = data.note || "";
  }

  function renderProgress(progress) {
    [["task", progress.task], ["today", progress.today], ["overall", progress.overall]].forEach(([name, p]) => {
      const share = p.assigned ? Math.min(100, (100 * p.done) / p.assigned) : 0;
      document.getElementById("progress-" + name).style.width = share.toFixed(1) + "%";
      document.getElementById("progress-" + name + "-text").textContent = p.done + " / " + p.assigned;
    });
  }

  function setFocus(index) {
    if (!cards.length) return;
    focus = Math.max(0, Math.min(cards.length - 1, index));
    cards.forEach((c, i) => c.classList.toggle("focused", i === focus));
    cards[focus].focus({ preventScroll: true });
    cards[focus].scrollIntoView({ block: "nearest" });
    focusStartedAt = performance.now();
  }

  // Seconds spent on the focused candidate since it got focus (or since its last action).
  function secondsOnFocused() {
    const seconds = (performance.now() - focusStartedAt) / 1000;
    focusStartedAt = performance.now();
    return Math.round(seconds * 100) / 100;
  }

  function focusedData() { return byId.get(cards[focus].dataset.id); }

  function grade(value) {
    const data = focusedData();
    const wasOpen = isOpenData(data);
    Object.assign(data, { grade: value, skipped: false, skip_reason: "" });
    countChange(wasOpen, false);
    renderCard(cards[focus]);
    say("");
    enqueue("judgments/", { candidate: data.id, grade: value, seconds_spent: secondsOnFocused() });
    setFocus(nextOpen(focus));
  }

  function nextOpen(from) {
    for (let i = from + 1; i < cards.length; i++) if (isOpen(i)) return i;
    return Math.min(from + 1, cards.length - 1);
  }
  function isOpen(i) { return isOpenData(byId.get(cards[i].dataset.id)); }

  function askText(label, initial) {
    const dialog = document.getElementById("text-dialog");
    const input = document.getElementById("text-input");
    document.getElementById("text-label").textContent = label;
    input.value = initial || "";
    dialog.returnValue = "";
    dialog.showModal();
    input.focus();
    return new Promise((resolve) => {
      dialog.addEventListener("close", function onClose() {
        dialog.removeEventListener("close", onClose);
        resolve(dialog.returnValue === "ok" ? input.value : null);
        setFocus(focus);
      });
    });
  }

  async function skip() {
    const data = focusedData();
    const reason = await askText(t("why_skip"), "");
    if (reason === null) return;
    if (!reason.trim()) { say(t("skip_needs_reason")); return; }
    const wasOpen = isOpenData(data);
    Object.assign(data, { grade: null, skipped: true, skip_reason: reason.trim() });
    countChange(wasOpen, false);
    renderCard(cards[focus]);
    enqueue("judgments/", { candidate: data.id, grade: null, skipped: true, skip_reason: reason.trim(),
                            seconds_spent: secondsOnFocused() });
    setFocus(nextOpen(focus));
  }

  function needsGradeFirst(data) {
    if ((data.grade === null || data.grade === undefined) && !data.skipped) {
      say(t("grade_first"));
      return true;
    }
    return false;
  }

  function flag() {
    const data = focusedData();
    if (needsGradeFirst(data)) return;
    data.flagged = !data.flagged;
    renderCard(cards[focus]);
    enqueue("annotations/", { candidate: data.id, flagged: data.flagged });
  }

  async function note() {
    const data = focusedData();
    if (needsGradeFirst(data)) return;
    const text = await askText(t("note"), data.note);
    if (text === null) return;
    data.note = text;
    renderCard(cards[focus]);
    enqueue("annotations/", { candidate: data.id, note: text });
  }

  async function undo() {
    const result = await enqueue("undo/", {});
    if (result.ok && result.data && result.data.judgment) {
      const index = cards.findIndex((c) => c.dataset.id === String(result.data.judgment.candidate));
      if (index >= 0) setFocus(index);
      say(t("undone"));
    } else if (result.ok) {
      say(t("nothing_to_undo"));
    }
  }

  // A finished query asks before the next one replaces it: the annotator may want to read the
  // last document again, and an Enter pressed twice must not skip a query unseen.
  let finished = false;
  function askForTheNext() {
    finished = true;
    const dialog = document.getElementById("next-dialog");
    dialog.addEventListener("close", () => {
      if (dialog.returnValue === "next") window.location.reload();
      else say(t("finished_next"));
    }, { once: true });
    dialog.showModal();
    document.getElementById("next-ok").focus();
  }

  async function finish() {
    if (finished) { window.location.reload(); return; }
    const open = cards.findIndex((c, i) => isOpen(i));
    if (open >= 0) {
      say(t("still_open", { n: cards.filter((c, i) => isOpen(i)).length }));
      setFocus(open);
      return;
    }
    await flushPending();
    if (loadPending().length) { say(t("not_saved_yet")); return; }
    const result = await post("finish/", {});
    if (result.ok) { askForTheNext(); return; }
    say((result.data && result.data.detail) || t("could_not_finish", { status: result.status }));
  }

  document.addEventListener("keydown", (event) => {
    if (event.target.closest && event.target.closest("dialog, input, textarea, select")) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key;
    const handled = true;
    if (["0", "1", "2", "3"].includes(key)) grade(Number(key));
    else if (key === "j" || key === "ArrowDown") setFocus(focus + 1);
    else if (key === "k" || key === "ArrowUp") setFocus(focus - 1);
    else if (key === "s") skip();
    else if (key === "f") flag();
    else if (key === "n") note();
    else if (key === "u") undo();
    else if (key === "?") document.getElementById("help-dialog").showModal();
    else if (key === "Enter") finish();
    else return;
    if (handled) event.preventDefault();
  });

  cards.forEach((card, index) => {
    card.addEventListener("click", (event) => {
      if (index !== focus) setFocus(index);
      const button = event.target.closest(".grade");
      if (button) grade(Number(button.dataset.grade));
    });
  });
  document.getElementById("finish").addEventListener("click", finish);
  window.addEventListener("online", flushPending);
  window.addEventListener("offline", setSaveState);

  cards.forEach(renderCard);
  renderProgress(progress);
  const firstOpen = cards.findIndex((c, i) => isOpen(i));
  setFocus(firstOpen >= 0 ? firstOpen : 0);
  setSaveState();
  flushPending();
})();
