/* The sensor overview: every sensor with its newest value, status and last 24 hours. */
"use strict";

(() => {
  const cfg = Wardwise.config("sensors-config");
  const { el } = Wardwise;
  const STATUS_TEXT = { ok: "In range", alert: "Alert open", offline: "Offline", "never-heard": "Never heard", inactive: "Inactive" };

  function range(profile) {
    const lo = profile.temperature_min_c;
    const hi = profile.temperature_max_c;
    if (lo === null && hi === null) return "no temperature limits";
    return `${lo ?? "…"} to ${hi ?? "…"} °C`;
  }

  async function load() {
    const summary = document.getElementById("sensor-summary");
    const list = document.getElementById("sensors");
    try {
      const data = await Wardwise.api(`${cfg.urls.sensors}?limit=500`);
      const sensors = data.results || data;
      const alerting = sensors.filter((s) => s.status !== "ok").length;
      summary.textContent = `${sensors.length} sensors, ${alerting} need attention.`;
      const cards = sensors.map((s) => {
        const latest = s.latest || {};
        const value = latest.temperature_c !== null && latest.temperature_c !== undefined ? `${latest.temperature_c.toFixed(1)} °C` : "—";
        const canvas = el("canvas", { role: "img", "aria-label": `Temperature of ${s.serial} over the last 24 hours` });
        const described = el("p", { class: "visually-hidden", text: "Loading chart…" });
        const card = el("li", { class: "sensor-card", "data-serial": s.serial },
          el("h2", { text: s.serial }),
          el("p", { class: "muted", text: `${s.contents || s.kind} · ${s.zone}, ${s.floor}` }),
          el("div", { class: "sensor-now" },
            el("span", { class: "value", text: value }),
            el("span", { class: `sensor-status s-${s.status}`, text: STATUS_TEXT[s.status] || s.status }),
            el("span", { class: "muted", text: `range ${range(s.profile)}` })),
          el("p", { class: "muted" }, "Last reading ",
            el("time", { datetime: latest.ts || "", "data-relative": true, text: Wardwise.ago(latest.ts) })),
          el("div", { class: "chart-box" }, canvas),
          described);
        SensorCharts.series(cfg.urls.readings, s.serial).then((points) => {
          SensorCharts.draw(canvas, points, s.profile, s.serial);
          described.textContent = SensorCharts.describe(points);
        }).catch(() => { described.textContent = "Chart unavailable."; });
        return card;
      });
      list.replaceChildren(...cards);
    } catch (e) {
      summary.textContent = `Could not load the sensors: ${e.message}`;
    }
  }

  load();
  setInterval(load, 5 * 60 * 1000);
})();
