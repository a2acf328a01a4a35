/* Shared helpers for the Wardwise pages: JSON config, API calls with the CSRF token, relative
   times and a websocket that reconnects. No framework; loaded before each page's script. */
"use strict";

const Wardwise = (() => {
  function config(id) {
    return JSON.parse(document.getElementById(id).textContent);
  }

  function cookie(name) {
    const match = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
    return match ? decodeURIComponent(match.slice(name.length + 1)) : "";
  }

  async function api(url, options = {}) {
    const init = { credentials: "same-origin", headers: { Accept: "application/json" }, ...options };
    if (init.body !== undefined) {
      init.headers = { ...init.headers, "Content-Type": "application/json", "X-CSRFToken": cookie("csrftoken") };
      init.body = JSON.stringify(init.body);
    }
    const response = await fetch(url, init);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      const detail = data && (data.detail || JSON.stringify(data));
      const error = new Error(detail || `request failed (${response.status})`);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (_, key) => encodeURIComponent(values[key]));
  }

  function ago(iso, now = Date.now()) {
    if (!iso) return "never";
    const s = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000));
    if (s < 45) return "just now";
    const m = Math.round(s / 60);
    if (m < 60) return `${m} min ago`;
    const h = Math.round(m / 60);
    if (h < 48) return `${h} h ago`;
    return `${Math.round(h / 24)} days ago`;
  }

  function refreshRelativeTimes(root = document) {
    root.querySelectorAll("time[data-relative]").forEach((el) => {
      el.textContent = ago(el.getAttribute("datetime"));
    });
  }
  setInterval(refreshRelativeTimes, 30000);
  document.addEventListener("DOMContentLoaded", () => refreshRelativeTimes());

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /* A websocket that reconnects with backoff. 4401 (signed out) sends the page to sign-in;
     4403/4404 stop trying. `onState` gets "connecting" | "live" | "offline". */
  function socket(path, { onMessage, onState }) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let ws = null;
    let delay = 1000;
    let stopped = false;
    function open() {
      onState("connecting");
      ws = new WebSocket(`${scheme}//${location.host}${path}`);
      ws.addEventListener("open", () => { delay = 1000; onState("live"); });
      ws.addEventListener("message", (event) => onMessage(JSON.parse(event.data)));
      ws.addEventListener("close", (event) => {
        if (event.code === 4401) { location.assign(`/accounts/login/?next=${encodeURIComponent(location.pathname)}`); return; }
        if (event.code === 4403 || event.code === 4404 || stopped) { onState("offline"); return; }
        onState("offline");
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 15000);
      });
    }
    open();
    return { close() { stopped = true; if (ws) ws.close(); } };
  }

  function liveState(node) {
    const labels = { connecting: "Connecting…", live: "Live", offline: "Offline, retrying" };
    return (state) => { node.dataset.state = state; node.textContent = labels[state]; };
  }

  return { config, api, fill, ago, el, socket, liveState, refreshRelativeTimes };
})();
