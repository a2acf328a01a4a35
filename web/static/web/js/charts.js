/* Temperature charts (Chart.js from the pinned npm package): the last 24 hours of a sensor,
   downsampled by the API, with its limits drawn as dashed lines. */
"use strict";

const SensorCharts = (() => {
  const DAY_MS = 24 * 3600 * 1000;

  function hhmm(ms) {
    const d = new Date(ms);
    return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  }

  async function series(urlTemplate, serial, bucketS = 900) {
    const now = new Date();
    const query = new URLSearchParams({
      from: new Date(now.getTime() - DAY_MS).toISOString(),
      to: now.toISOString(),
      bucket_s: String(bucketS),
    });
    const buckets = await Wardwise.api(`${Wardwise.fill(urlTemplate, { serial })}?${query}`);
    return buckets
      .filter((b) => b.temperature_mean_c !== null)
      .map((b) => ({ x: new Date(b.ts).getTime(), y: b.temperature_mean_c, min: b.temperature_min_c, max: b.temperature_max_c }));
  }

  function limitLine(points, value, label, color) {
    if (value === null || value === undefined || !points.length) return null;
    return {
      label, data: [{ x: Date.now() - DAY_MS, y: value }, { x: Date.now(), y: value }],
      borderColor: color, borderDash: [5, 4], borderWidth: 1.5, pointRadius: 0, fill: false,
    };
  }

  /* Draw (or redraw) the chart in `canvas`; `profile` gives the limits. */
  function draw(canvas, points, profile, label) {
    const datasets = [
      {
        label, data: points, borderColor: "#0a6e8a", backgroundColor: "rgba(10,110,138,0.12)",
        borderWidth: 2, pointRadius: 0, fill: false, tension: 0.2,
      },
      limitLine(points, profile && profile.temperature_max_c, "Upper limit", "#b3261e"),
      limitLine(points, profile && profile.temperature_min_c, "Lower limit", "#0550ae"),
    ].filter(Boolean);
    const existing = Chart.getChart(canvas);
    if (existing) {
      existing.data.datasets = datasets;
      existing.update("none");
      return existing;
    }
    return new Chart(canvas, {
      type: "line",
      data: { datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        parsing: true,
        plugins: { legend: { display: false }, tooltip: { callbacks: { title: (items) => hhmm(items[0].parsed.x) } } },
        scales: {
          x: { type: "linear", min: Date.now() - DAY_MS, max: Date.now(), ticks: { maxTicksLimit: 7, callback: (v) => hhmm(v) } },
          y: { title: { display: true, text: "°C" } },
        },
      },
    });
  }

  /* A text summary of the chart for screen readers (canvas charts are invisible to them). */
  function describe(points, unit = "°C") {
    if (!points.length) return "No readings in the last 24 hours.";
    const values = points.map((p) => p.y);
    const low = Math.min(...points.map((p) => (p.min ?? p.y)));
    const high = Math.max(...points.map((p) => (p.max ?? p.y)));
    return `Last 24 hours: lowest ${low.toFixed(1)} ${unit}, highest ${high.toFixed(1)} ${unit}, latest ${values[values.length - 1].toFixed(1)} ${unit}.`;
  }

  return { series, draw, describe };
})();
