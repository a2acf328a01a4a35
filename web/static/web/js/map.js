/* The nurse floor map: the plan from the zone polygons (Leaflet, non-geographic CRS: one map
   unit is one metre, y up), live markers from the floor websocket, find-nearest and search.
   Incoming updates are queued and applied once per animation frame, so a floor of 2,000
   moving markers costs one canvas redraw per frame, not one per message. */
"use strict";

(() => {
  const cfg = Wardwise.config("map-config");
  const params = new URLSearchParams(location.search);
  const typeNames = Object.fromEntries(cfg.types.map((t) => [t.slug, t.name]));
  const zoneById = new Map(cfg.zones.map((z) => [z.id, z]));
  const floorNames = new Map(cfg.buildings.flatMap((b) => b.floors.map((f) => [f.id, f.name])));
  const shapeOf = Markers.shapeFor(cfg.types);
  const $ = (id) => document.getElementById(id);

  const map = L.map("map", {
    crs: L.CRS.Simple,
    minZoom: -3,
    maxZoom: 5,
    zoomSnap: 0.25,
    attributionControl: false,
    keyboard: true,
  });
  const zoneRenderer = L.canvas({ padding: 0.2 });
  const markerRenderer = L.canvas({ padding: 0.2 });
  const planLayer = L.layerGroup().addTo(map);
  const accuracyLayer = L.layerGroup().addTo(map);
  const markerLayer = L.layerGroup().addTo(map);

  const state = {
    floorId: null,
    floor: null,
    assets: new Map(), // id -> {data, marker, circle}
    pending: new Map(),
    frame: 0,
    selected: null,
    focusAfterSnapshot: null,
    socket: null,
    showAccuracy: false,
    zoneLayers: new Map(), // zone id -> polygon
    route: new Set(), // zone ids of the walk to the chosen find-nearest result
    clockOffset: 0, // server clock minus this browser's, from the snapshot
  };

  const ZONE_FILL = {
    corridor: "#f7f9fb", lobby: "#f7f9fb", stairs: "#dfe5ea", elevator: "#dfe5ea",
    "nurse-station": "#e7f1f8", storage: "#f1efe6", "clean-utility": "#eef6ee",
    "soiled-utility": "#f6eeee", pharmacy: "#eeeaf6", "blood-bank": "#f6e9ee",
  };

  /* ---------- honest location ---------- */

  /* The server judges each position (confirmed, uncertain, stale: docs/ui.md); an asset that
     falls silent gets no message, so staleness is also judged here, on the server's clock. */
  function qualityOf(data) {
    if (data.presence === "missing") return "stale";
    const seen = Date.parse(data.last_seen || data.ts);
    const silentMs = Date.now() + state.clockOffset - seen;
    if (!Number.isNaN(seen) && silentMs > cfg.location.staleAfterS * 1000) return "stale";
    return data.quality || "uncertain";
  }

  const REASONS = {
    "not-heard": "not heard recently",
    "no-recent-estimate": "no recent position",
    "scanners-offline": "the room's scanners are offline",
    "no-zone": "not in a room",
    "confidence-unknown": "confidence not recorded",
    "low-confidence": "weak evidence for the room",
    "few-scanners": "heard by too few scanners",
    "poor-accuracy": "position too imprecise",
  };

  function clock(iso) {
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return "an unknown time";
    const time = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (Date.now() - when.getTime() < 20 * 3600 * 1000) return time;
    return `${when.toLocaleDateString([], { day: "numeric", month: "short" })} ${time}`;
  }

  function percent(p) {
    return p === null || p === undefined ? "unknown" : `${Math.round(p * 100)} %`;
  }

  /* "last confirmed in N1 at 10:02 (confidence 40 %)": what is shown instead of a room the
     evidence no longer supports. The confidence is the current estimate's. */
  function lastConfirmed(data, floorId) {
    const confirmedZone = zoneById.get(data.last_confirmed_zone_id);
    const otherFloor = confirmedZone && confirmedZone.floor_id !== floorId ? floorNames.get(confirmedZone.floor_id) : null;
    const where = data.last_confirmed_zone
      ? `last confirmed in ${data.last_confirmed_zone}${otherFloor ? ", " + otherFloor : ""} at ${clock(data.last_confirmed_at)}`
      : "no room confirmed yet";
    return `${where} (confidence ${percent(data.zone_confidence)})`;
  }

  function whyUncertain(data, quality) {
    if (quality === "stale") return `not heard since ${clock(data.last_seen || data.ts)}`;
    const reasons = (data.quality_reasons || []).map((r) => REASONS[r]).filter(Boolean);
    return reasons.length ? reasons.join(", ") : "room not confirmed";
  }

  /* ---------- plan ---------- */

  async function loadFloor(floorId) {
    if (state.socket) state.socket.close();
    state.floorId = Number(floorId);
    state.assets.clear();
    state.pending.clear();
    state.selected = null;
    markerLayer.clearLayers();
    accuracyLayer.clearLayers();
    planLayer.clearLayers();
    state.zoneLayers.clear();
    $("floor-picker").value = String(state.floorId);
    const url = new URL(location.href);
    url.searchParams.set("floor", state.floorId);
    history.replaceState(null, "", url);
    const floor = await Wardwise.api(Wardwise.fill(cfg.urls.floor, { id: state.floorId }));
    state.floor = floor;
    drawPlan(floor);
    highlightRoute();
    state.socket = Wardwise.socket(Wardwise.fill(cfg.urls.socket, { id: state.floorId }), {
      onMessage: onMessage,
      onState: Wardwise.liveState($("live-state")),
    });
  }

  function drawPlan(floor) {
    const bounds = L.latLngBounds([0, 0], [floor.height_m, floor.width_m]);
    map.setMaxBounds(bounds.pad(0.5));
    map.fitBounds(bounds, { padding: [12, 12] });
    if (floor.plan_image && floor.plan_pixels_per_m) {
      const image = new Image();
      image.addEventListener("load", () => {
        const ppm = floor.plan_pixels_per_m;
        const ox = floor.plan_origin_x_px;
        const oy = floor.plan_origin_y_px;
        const corners = [[(oy - image.naturalHeight) / ppm, -ox / ppm], [oy / ppm, (image.naturalWidth - ox) / ppm]];
        L.imageOverlay(floor.plan_image, corners, { opacity: 0.55, alt: `Floor plan of ${floor.name}` }).addTo(planLayer).bringToBack();
      });
      image.src = floor.plan_image;
    }
    for (const zone of floor.zones) {
      const polygon = L.polygon(zone.polygon.map(([x, y]) => [y, x]), {
        renderer: zoneRenderer,
        color: "#6b7b8a",
        weight: 1,
        fillColor: ZONE_FILL[zone.kind] || "#ffffff",
        fillOpacity: 0.9,
        interactive: false,
      });
      polygon.bindTooltip(zone.name, { permanent: true, direction: "center", className: "room-label", interactive: false });
      polygon.addTo(planLayer);
      state.zoneLayers.set(zone.id, { polygon, fill: ZONE_FILL[zone.kind] || "#ffffff" });
    }
  }

  /* The zones of the walk to the chosen result, outlined so the nurse sees the way. */
  function highlightRoute() {
    for (const [id, { polygon, fill }] of state.zoneLayers) {
      const on = state.route.has(id);
      polygon.setStyle(on
        ? { fillColor: "#fff1b8", color: "#9a6700", weight: 3 }
        : { fillColor: fill, color: "#6b7b8a", weight: 1 });
    }
  }

  /* ---------- live markers ---------- */

  function onMessage(message) {
    if (message.type === "snapshot" && message.floor_id === state.floorId) {
      const serverNow = Date.parse(message.ts);
      if (!Number.isNaN(serverNow)) state.clockOffset = serverNow - Date.now();
      markerLayer.clearLayers();
      accuracyLayer.clearLayers();
      state.assets.clear();
      state.pending.clear();
      for (const asset of message.assets) upsert(asset);
      if (state.focusAfterSnapshot) {
        const id = state.focusAfterSnapshot;
        state.focusAfterSnapshot = null;
        if (state.assets.has(id)) select(id, true);
      }
    } else if (message.type === "updates" && message.floor_id === state.floorId) {
      for (const update of message.assets) {
        state.pending.set(update.asset_id, { ...(state.pending.get(update.asset_id) || {}), ...update });
      }
      if (!state.frame) state.frame = requestAnimationFrame(flush);
    }
  }

  function flush() {
    state.frame = 0;
    const batch = state.pending;
    state.pending = new Map();
    for (const [id, update] of batch) {
      if (update.floor_id !== undefined && update.floor_id !== state.floorId) {
        remove(id);
      } else if (state.assets.has(id)) {
        upsert({ ...state.assets.get(id).data, ...update });
      } else if (update.x !== undefined) {
        fetchAndAdd(id, update);
      }
    }
  }

  async function fetchAndAdd(id, update) {
    try {
      const asset = await Wardwise.api(`${cfg.urls.assets}${id}/`);
      if (state.floorId !== update.floor_id) return;
      upsert({ ...update, name: asset.name, type: asset.type, status: asset.status, battery_pct: asset.battery_pct, last_seen: update.last_seen || update.ts });
    } catch (e) {
      /* the asset vanished or we lost the session; the next snapshot corrects either */
    }
  }

  function upsert(data) {
    const id = data.asset_id;
    const latlng = [data.y, data.x];
    const quality = qualityOf(data);
    const look = Markers.style(data.status, data.presence, quality);
    let record = state.assets.get(id);
    if (!record) {
      const marker = new Markers.AssetMarker(latlng, {
        renderer: markerRenderer,
        radius: 7,
        shape: shapeOf(data.type),
        look: look,
        selected: id === state.selected,
      });
      marker.bindTooltip(() => `${record.data.name} · ${cfg.statusLabels[record.data.status] || record.data.status}${record.quality === "confirmed" ? "" : " · room not confirmed"}`);
      marker.on("click", () => select(id, false));
      marker.addTo(markerLayer);
      record = { data, marker, circle: null, quality };
      state.assets.set(id, record);
    } else {
      record.data = data;
      record.quality = quality;
      record.marker.options.look = look;
      record.marker.setLatLng(latlng);
    }
    syncAccuracy(record);
    if (id === state.selected) renderDetail(record.data);
  }

  /* Assets that fell silent turn stale without a message: look again every few seconds. */
  function recheckQuality() {
    for (const record of state.assets.values()) {
      const quality = qualityOf(record.data);
      if (quality === record.quality) continue;
      record.quality = quality;
      record.marker.options.look = Markers.style(record.data.status, record.data.presence, quality);
      record.marker.redraw();
      if (record.data.asset_id === state.selected) renderDetail(record.data);
    }
  }

  function remove(id) {
    const record = state.assets.get(id);
    if (!record) return;
    markerLayer.removeLayer(record.marker);
    if (record.circle) accuracyLayer.removeLayer(record.circle);
    state.assets.delete(id);
    if (state.selected === id) renderDetail({ ...record.data, zone: null, floor_left: true });
  }

  function syncAccuracy(record) {
    const wanted = state.showAccuracy || record.data.asset_id === state.selected;
    if (!wanted) {
      if (record.circle) { accuracyLayer.removeLayer(record.circle); record.circle = null; }
      return;
    }
    const latlng = [record.data.y, record.data.x];
    if (!record.circle) {
      record.circle = L.circle(latlng, {
        radius: record.data.accuracy_m || 1, renderer: markerRenderer, interactive: false,
        color: Markers.style(record.data.status, record.data.presence).color, weight: 1, fillOpacity: 0.08,
      }).addTo(accuracyLayer);
    } else {
      record.circle.setLatLng(latlng);
      record.circle.setRadius(record.data.accuracy_m || 1);
    }
  }

  /* ---------- selection and detail ---------- */

  function select(id, pan) {
    const previous = state.selected !== null ? state.assets.get(state.selected) : null;
    state.selected = id;
    if (previous) {
      previous.marker.options.selected = false;
      previous.marker.redraw();
      syncAccuracy(previous);
    }
    const record = state.assets.get(id);
    if (!record) return;
    record.marker.options.selected = true;
    record.marker.bringToFront();
    record.marker.redraw();
    syncAccuracy(record);
    if (pan) map.setView([record.data.y, record.data.x], Math.max(map.getZoom(), 2));
    renderDetail(record.data);
    loadDetailExtras(id);
  }

  function fact(dl, term, ...value) {
    dl.append(Wardwise.el("dt", { text: term }), Wardwise.el("dd", {}, ...value));
  }

  function renderDetail(data) {
    const panel = $("detail");
    panel.hidden = false;
    $("detail-title").textContent = data.name || `Asset ${data.asset_id}`;
    const dl = $("detail-facts");
    dl.replaceChildren();
    fact(dl, "Type", typeNames[data.type] || data.type || "—");
    fact(dl, "Status", Wardwise.el("span", { class: `status-badge status-${data.status}`, text: cfg.statusLabels[data.status] || data.status }));
    const floorName = state.floor ? state.floor.name : "";
    const quality = data.floor_left ? null : qualityOf(data);
    if (data.floor_left) {
      fact(dl, "Room", "left this floor");
    } else if (quality === "confirmed") {
      fact(dl, "Room", `${data.zone || "between rooms"}${floorName ? ", " + floorName : ""}`);
      fact(dl, "Location", `confirmed (confidence ${percent(data.zone_confidence)})`);
    } else {
      fact(dl, "Room", Wardwise.el("span", { class: "unconfirmed", text: lastConfirmed(data, state.floorId) }));
      const guess = data.zone ? ` · best guess now ${data.zone}` : "";
      fact(dl, "Location", `${quality === "stale" ? "stale" : "uncertain"}: ${whyUncertain(data, quality)}${guess}`);
    }
    const seen = data.last_seen || data.ts;
    fact(dl, "Last seen", Wardwise.el("time", { datetime: seen, "data-relative": true, text: Wardwise.ago(seen) }),
      data.presence === "missing" ? " (missing)" : "");
    fact(dl, "Accuracy", data.accuracy_m !== undefined && data.accuracy_m !== null ? `± ${data.accuracy_m.toFixed(1)} m` : "—");
    fact(dl, "Tag battery", data.battery_pct !== undefined && data.battery_pct !== null ? `${Math.round(data.battery_pct)} %` : "not reported");
    if (data.serial_number) fact(dl, "Serial number", data.serial_number);
    if (data.tag_id) fact(dl, "Tag", Wardwise.el("span", { class: "mono", text: data.tag_id }));
    $("detail-link").href = Wardwise.fill(cfg.urls.detail, { id: data.asset_id });
    const group = $("detail-statuses");
    group.replaceChildren(...cfg.statuses.map((s) => Wardwise.el("button", {
      type: "button",
      class: `btn${s.value === data.status ? " btn-current" : ""}`,
      "aria-pressed": s.value === data.status ? "true" : "false",
      text: s.label,
      onclick: () => setStatus(data.asset_id, s.value, s.label),
    })));
  }

  async function loadDetailExtras(id) {
    try {
      const asset = await Wardwise.api(`${cfg.urls.assets}${id}/`);
      const record = state.assets.get(id);
      if (!record || state.selected !== id) return;
      record.data = { ...record.data, serial_number: asset.serial_number, tag_id: asset.tag_id, battery_pct: asset.battery_pct };
      renderDetail(record.data);
    } catch (e) {
      /* the facts from the websocket stay on screen */
    }
  }

  async function setStatus(id, status, label) {
    const message = $("detail-message");
    try {
      const asset = await Wardwise.api(Wardwise.fill(cfg.urls.status, { id }), { method: "POST", body: { status } });
      const record = state.assets.get(id);
      if (record) upsert({ ...record.data, status: asset.status });
      message.textContent = `Marked “${label}”.`;
    } catch (e) {
      message.textContent = `Could not change the status: ${e.message}`;
    }
  }

  const narrow = window.matchMedia("(max-width: 800px)");

  function showAsset(id, floorId) {
    if (narrow.matches) $("map").scrollIntoView({ block: "start" });
    if (Number(floorId) !== state.floorId) {
      state.focusAfterSnapshot = id;
      loadFloor(floorId);
    } else if (state.assets.has(id)) {
      select(id, true);
    } else {
      state.focusAfterSnapshot = id;
    }
  }

  /* ---------- find nearest ---------- */

  const FROM_KEY = "wardwise.fromZone";

  function resultButton(rank, title, where, onclick) {
    return Wardwise.el("li", {}, Wardwise.el("button", { type: "button", class: "btn result", onclick },
      Wardwise.el("span", { class: "rank", "aria-hidden": "true", text: rank }),
      Wardwise.el("span", { class: "what", text: title }),
      Wardwise.el("span", { class: "where", text: where })));
  }

  function pressOnly(list, button) {
    list.querySelectorAll("button[aria-pressed]").forEach((b) => b.setAttribute("aria-pressed", "false"));
    button.setAttribute("aria-pressed", "true");
  }

  async function findNearest(event) {
    event.preventDefault();
    const type = $("find-type").value;
    const fromZone = $("find-from").value;
    localStorage.setItem(FROM_KEY, fromZone);
    const status = $("find-status");
    const list = $("find-results");
    status.textContent = "Searching…";
    list.replaceChildren();
    try {
      const query = new URLSearchParams({ type, from_zone: fromZone, limit: "5" });
      const data = await Wardwise.api(`${cfg.urls.nearest}?${query}`);
      const typeName = (typeNames[type] || type).toLowerCase();
      if (!data.results.length) {
        status.textContent = `No available ${typeName} is located right now.`;
        return;
      }
      const unsure = data.results.some((r) => r.quality !== "confirmed");
      status.textContent = `${data.results.length} available, nearest on foot from ${data.from_zone.name} first.`
        + (unsure ? " Equipment whose room is not confirmed comes after the rest." : "");
      data.results.forEach((r, i) => {
        const floors = r.floor_changes ? ` · ${r.floor_changes} floor change${r.floor_changes > 1 ? "s" : ""}` : "";
        const via = r.route.slice(1, -1).map((step) => step.zone);
        const walk = `${Math.round(r.walking_distance_m)} m walk${floors}${via.length ? " via " + via.join(", ") : ""}`;
        const where = r.quality === "confirmed"
          ? `${r.zone}, ${r.floor} · ${walk}`
          : `Room not confirmed: ${lastConfirmed(r, r.floor_id)} · best guess ${r.zone}, ${r.floor} · ${walk}`;
        const item = resultButton(i + 1, r.name, where, (e) => {
          pressOnly(list, e.currentTarget);
          state.route = new Set(r.route.map((step) => step.zone_id));
          highlightRoute();
          showAsset(r.asset_id, r.floor_id);
        });
        item.firstChild.setAttribute("aria-pressed", "false");
        item.firstChild.setAttribute("aria-label", `Show ${r.name} on the map: ${where}`);
        item.firstChild.dataset.assetId = r.asset_id;
        list.append(item);
      });
    } catch (e) {
      status.textContent = `Could not search: ${e.message}`;
    }
  }

  /* ---------- search ---------- */

  let searchTimer = 0;
  let searchSeq = 0;

  function onSearchInput() {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 250);
  }

  async function runSearch() {
    const q = $("search-input").value.trim();
    const list = $("search-results");
    const status = $("search-status");
    if (q.length < 2) { list.replaceChildren(); status.textContent = ""; return; }
    const seq = ++searchSeq;
    try {
      const data = await Wardwise.api(`${cfg.urls.assets}?${new URLSearchParams({ search: q, limit: "20" })}`);
      if (seq !== searchSeq) return;
      const items = data.results || data;
      status.textContent = items.length ? `${data.count ?? items.length} found` : "Nothing matches.";
      list.replaceChildren(...items.map((a) => {
        const loc = a.location;
        let where = "never located";
        if (loc && loc.quality === "confirmed") where = `${loc.zone || "between rooms"}, ${loc.floor} · seen ${Wardwise.ago(loc.last_seen)}`;
        else if (loc) where = `Room not confirmed: ${lastConfirmed(loc, loc.floor_id)} · ${loc.floor} · seen ${Wardwise.ago(loc.last_seen)}`;
        const label = `${a.name} · ${a.type_name} · ${cfg.statusLabels[a.status] || a.status}`;
        return resultButton("›", label, where, () => {
          state.route = new Set();
          highlightRoute();
          if (loc && loc.floor_id) showAsset(a.id, loc.floor_id);
          else location.assign(Wardwise.fill(cfg.urls.detail, { id: a.id }));
        });
      }));
    } catch (e) {
      status.textContent = `Could not search: ${e.message}`;
    }
  }

  /* ---------- legend and toggles ---------- */

  function drawLegend() {
    const legend = $("legend");
    const neutral = { color: "#33414e", glyph: "solid" };
    legend.append(Wardwise.el("h3", { text: "Type (shape)" }));
    for (const t of cfg.types) {
      legend.append(Wardwise.el("span", { class: "legend-item" }, Markers.legendSwatch(shapeOf(t.slug), neutral), t.name));
    }
    legend.append(Wardwise.el("h3", { text: "Status (colour and mark)" }));
    for (const [status, look] of Object.entries(Markers.STATUS)) {
      if (status === "retired") continue;
      legend.append(Wardwise.el("span", { class: "legend-item" }, Markers.legendSwatch("circle", look), cfg.statusLabels[status]));
    }
    legend.append(Wardwise.el("span", { class: "legend-item" }, Markers.legendSwatch("circle", Markers.style("available", "present", "uncertain")), "Room not confirmed (faded, dashed ring)"));
    legend.append(Wardwise.el("span", { class: "legend-item" }, Markers.legendSwatch("circle", Markers.MISSING), "Missing (not heard)"));
  }

  function updateLabels() {
    const on = $("toggle-labels").checked && map.getZoom() >= 1.5;
    $("map").classList.toggle("hide-labels", !on);
  }

  /* ---------- start ---------- */

  window.wardwiseMap = {
    /* Read-only view for the browser tests and the screenshot script. */
    marker(id) {
      const record = state.assets.get(Number(id));
      return record ? { ...record.data } : null;
    },
    count() { return state.assets.size; },
    quality(id) {
      const record = state.assets.get(Number(id));
      return record ? record.quality : null;
    },
    unconfirmed() {
      return [...state.assets.values()].filter((r) => r.quality !== "confirmed").map((r) => r.data.asset_id);
    },
    floorId() { return state.floorId; },
    receive: onMessage,
  };

  drawLegend();
  if (narrow.matches) document.querySelector(".legend").open = false;
  $("find-form").addEventListener("submit", findNearest);
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); runSearch(); });
  $("search-input").addEventListener("input", onSearchInput);
  $("floor-picker").addEventListener("change", (e) => loadFloor(e.target.value));
  $("toggle-accuracy").addEventListener("change", (e) => {
    state.showAccuracy = e.target.checked;
    for (const record of state.assets.values()) syncAccuracy(record);
  });
  $("toggle-labels").addEventListener("change", updateLabels);
  setInterval(recheckQuality, 5000);
  map.on("zoomend", updateLabels);

  const fromZone = params.get("from_zone") || localStorage.getItem(FROM_KEY);
  if (fromZone && document.querySelector(`#find-from option[value="${CSS.escape(fromZone)}"]`)) $("find-from").value = fromZone;
  if (params.get("type")) $("find-type").value = params.get("type");
  const firstFloor = cfg.buildings.flatMap((b) => b.floors)[0];
  const startFloor = params.get("floor") || (firstFloor && firstFloor.id);
  if (params.get("asset")) state.focusAfterSnapshot = Number(params.get("asset"));
  if (startFloor) loadFloor(startFloor).then(updateLabels);
  else $("live-state").textContent = "No floors loaded";
})();
