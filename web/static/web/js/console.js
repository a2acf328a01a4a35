/* The facilities alert console: open alerts live over ws/alerts/, each with its sensor's last
   24 hours; acknowledge and resolve through the alerts API. A new critical alert beeps
   (WebAudio, generated, no audio file), raises a browser notification and is announced to
   screen readers. */
"use strict";

(() => {
  const cfg = Wardwise.config("console-config");
  const { el } = Wardwise;
  const $ = (id) => document.getElementById(id);
  const RANK = { critical: 2, warning: 1, info: 0 };
  const LABEL = { critical: "Critical", warning: "Warning", info: "Info" };
  const alerts = new Map();
  const sensors = new Map();
  let audio = null;
  let firstSnapshot = true;

  /* ---------- sound and notifications ---------- */

  function beep() {
    if (!audio) return;
    if (audio.state === "suspended") audio.resume();
    const start = audio.currentTime + 0.05;
    for (let i = 0; i < 3; i++) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = "square";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, start + i * 0.3);
      gain.gain.exponentialRampToValueAtTime(0.2, start + i * 0.3 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + i * 0.3 + 0.18);
      osc.connect(gain).connect(audio.destination);
      osc.start(start + i * 0.3);
      osc.stop(start + i * 0.3 + 0.2);
    }
  }

  function enableAlerting() {
    const AudioContextClass = window.AudioContext || window.webkitAudioContext;
    if (AudioContextClass && !audio) audio = new AudioContextClass();
    if (audio && audio.state === "suspended") audio.resume();
    if ("Notification" in window && Notification.permission === "default") Notification.requestPermission();
    localStorage.setItem("wardwise.alerting", "on");
    $("enable-alerting").textContent = "Sound and notifications on";
    $("enable-alerting").setAttribute("aria-pressed", "true");
  }

  function raiseAlarm(alert) {
    const text = `New critical alert: ${alert.title}. ${alert.message || ""}`;
    $("alert-announcer").textContent = text;
    beep();
    if ("Notification" in window && Notification.permission === "granted") {
      new Notification("Critical alert", { body: `${alert.title}\n${alert.message || ""}`, tag: `alert-${alert.id}`, requireInteraction: true });
    }
  }

  /* ---------- rendering ---------- */

  function place(alert) {
    const sensor = sensors.get(alert.sensor);
    return sensor ? `${sensor.zone}, ${sensor.floor}` : "—";
  }

  function value(v, unit) {
    return v === null || v === undefined ? "—" : `${Number(v).toFixed(1)} ${unit || ""}`.trim();
  }

  function card(alert) {
    const canvas = el("canvas", { role: "img", "aria-label": `${alert.sensor || alert.title}: last 24 hours` });
    const chartText = el("p", { class: "visually-hidden", "data-chart-text": true });
    const actions = el("div", { class: "row" });
    if (alert.state === "open") {
      actions.append(el("button", { type: "button", class: "btn btn-primary", "data-action": "acknowledge", onclick: () => openStep(alert, "acknowledge") }, "Acknowledge"));
    }
    actions.append(el("button", { type: "button", class: "btn", "data-action": "resolve", onclick: () => openStep(alert, "resolve") }, "Resolve…"));
    const stateText = alert.state === "acknowledged"
      ? el("span", { class: "state-acknowledged", text: `Acknowledged by ${alert.acknowledged_by || "someone"}` })
      : el("span", { class: "muted", text: "Open, not acknowledged" });
    const node = el("li", { class: `alert-card sev-${alert.severity}`, "data-alert-id": alert.id, "aria-labelledby": `alert-title-${alert.id}` },
      el("div", { class: "alert-head" },
        el("span", { class: `severity severity-${alert.severity}`, text: LABEL[alert.severity] || alert.severity }),
        el("h2", { id: `alert-title-${alert.id}`, text: alert.title }),
        stateText),
      el("div", { class: "alert-value", "aria-label": `Current value ${value(alert.last_value, alert.unit)}` }, value(alert.last_value, alert.unit)),
      el("dl", { class: "alert-meta" },
        el("dt", { text: "What" }), el("dd", { text: alert.message || alert.kind }),
        el("dt", { text: "Sensor" }), el("dd", { text: alert.sensor || "—" }),
        el("dt", { text: "Place" }), el("dd", { text: place(alert) }),
        el("dt", { text: "Worst" }), el("dd", { text: value(alert.peak_value, alert.unit) }),
        el("dt", { text: "Since" }), el("dd", {}, el("time", { datetime: alert.started_at, "data-relative": true, text: Wardwise.ago(alert.started_at) }))),
      alert.sensor ? el("div", { class: "chart-box" }, canvas) : null,
      chartText,
      actions);
    return node;
  }

  function sorted() {
    return [...alerts.values()].sort((a, b) =>
      (RANK[b.severity] - RANK[a.severity]) || (a.state === "open" ? -1 : 0) - (b.state === "open" ? -1 : 0) || b.opened_at.localeCompare(a.opened_at));
  }

  function renderAll() {
    const list = $("alerts");
    const charts = new Map();
    list.querySelectorAll("canvas").forEach((c) => { const chart = Chart.getChart(c); if (chart) chart.destroy(); });
    list.replaceChildren(...sorted().map((a) => { const node = card(a); charts.set(a.id, node); return node; }));
    const open = [...alerts.values()];
    const critical = open.filter((a) => a.severity === "critical").length;
    $("alert-summary").textContent = open.length
      ? `${open.length} unresolved alert${open.length > 1 ? "s" : ""}, ${critical} critical.`
      : "No open alerts. Every monitored fridge and freezer is in range.";
    for (const [id, node] of charts) drawChart(alerts.get(id), node);
  }

  const seriesCache = new Map();

  async function drawChart(alert, node) {
    if (!alert.sensor) return;
    const canvas = node.querySelector("canvas");
    const text = node.querySelector("[data-chart-text]");
    try {
      let cached = seriesCache.get(alert.sensor);
      if (!cached || Date.now() - cached.at > 60000) {
        cached = { at: Date.now(), points: await SensorCharts.series(cfg.urls.readings, alert.sensor, 600) };
        seriesCache.set(alert.sensor, cached);
      }
      if (!canvas.isConnected) return;
      const sensor = sensors.get(alert.sensor);
      SensorCharts.draw(canvas, cached.points, sensor && sensor.profile, alert.sensor);
      text.textContent = SensorCharts.describe(cached.points, alert.unit || "°C");
    } catch (e) {
      text.textContent = "Chart unavailable.";
    }
  }

  /* ---------- live ---------- */

  function onMessage(message) {
    if (message.type === "snapshot") {
      alerts.clear();
      for (const alert of message.alerts) alerts.set(alert.id, alert);
      firstSnapshot = false;
      renderAll();
      return;
    }
    if (message.type !== "alert") return;
    const alert = message.alert;
    const before = alerts.get(alert.id);
    if (alert.state === "resolved") {
      alerts.delete(alert.id);
      $("alert-announcer").textContent = `Resolved: ${alert.title}.`;
    } else {
      alerts.set(alert.id, alert);
      const becameCritical = alert.severity === "critical" && (!before || before.severity !== "critical");
      if (becameCritical && !firstSnapshot) raiseAlarm(alert);
      else if (!before) $("alert-announcer").textContent = `New ${alert.severity} alert: ${alert.title}.`;
    }
    seriesCache.delete(alert.sensor);
    renderAll();
    const node = document.querySelector(`[data-alert-id="${alert.id}"]`);
    if (node && !before) node.classList.add("is-new");
  }

  /* ---------- acknowledge and resolve ---------- */

  let step = null;

  function openStep(alert, action) {
    step = { alert, action };
    const ack = action === "acknowledge";
    $("step-title").textContent = ack ? "Acknowledge alert" : "Resolve alert";
    $("step-alert").textContent = `${alert.title}: ${alert.message || alert.kind}`;
    $("step-label").textContent = ack ? "Comment (optional)" : "Corrective action taken (required)";
    $("step-text").value = "";
    $("step-text").required = !ack;
    $("step-confirm").textContent = ack ? "Acknowledge" : "Resolve";
    $("step-error").hidden = true;
    $("step-dialog").showModal();
    $("step-text").focus();
  }

  async function confirmStep(event) {
    event.preventDefault();
    if (!step) return;
    const text = $("step-text").value.trim();
    const ack = step.action === "acknowledge";
    if (!ack && !text) {
      $("step-error").textContent = "Say what was done before resolving.";
      $("step-error").hidden = false;
      return;
    }
    try {
      const url = Wardwise.fill(ack ? cfg.urls.acknowledge : cfg.urls.resolve, { id: step.alert.id });
      const updated = await Wardwise.api(url, { method: "POST", body: ack ? { comment: text } : { note: text } });
      $("step-dialog").close();
      onMessage({ type: "alert", event: step.action, alert: updated });
      step = null;
    } catch (e) {
      $("step-error").textContent = e.message;
      $("step-error").hidden = false;
    }
  }

  /* ---------- start ---------- */

  async function loadSensors() {
    try {
      const data = await Wardwise.api(`${cfg.urls.sensors}?limit=1000`);
      for (const s of data.results || data) sensors.set(s.serial, s);
    } catch (e) {
      /* places show "—" and charts use no limits */
    }
  }

  $("enable-alerting").addEventListener("click", enableAlerting);
  if (localStorage.getItem("wardwise.alerting") === "on") {
    document.addEventListener("click", enableAlerting, { once: true });
  }
  $("step-form").addEventListener("submit", confirmStep);
  $("step-cancel").addEventListener("click", () => { $("step-dialog").close(); step = null; });
  setInterval(() => { seriesCache.clear(); renderAll(); }, 5 * 60 * 1000);
  loadSensors().then(() => {
    Wardwise.socket(cfg.urls.socket, { onMessage, onState: Wardwise.liveState($("live-state")) });
  });
})();
