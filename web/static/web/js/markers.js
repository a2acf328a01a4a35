/* Equipment markers drawn on Leaflet's canvas: the shape says the type, the colour and a glyph
   say the status (so colour is never the only cue). One canvas for thousands of markers. */
"use strict";

const Markers = (() => {
  const SHAPES = ["circle", "square", "diamond", "triangle", "hexagon", "triangle-down", "pentagon", "star", "plus"];
  const STATUS = {
    available: { color: "#1a7f37", glyph: "solid" },
    "in-use": { color: "#0550ae", glyph: "dot" },
    "needs-cleaning": { color: "#9a6700", glyph: "slash" },
    maintenance: { color: "#6e40c9", glyph: "cross" },
    retired: { color: "#6e40c9", glyph: "cross" },
  };
  const MISSING = { color: "#57606a", glyph: "hollow" };

  /* `quality` (honest location): a marker whose room is not confirmed ("uncertain" or
     "stale") keeps its status look, faded, inside a dashed ring. */
  function style(status, presence, quality) {
    if (presence === "missing") return MISSING;
    const look = STATUS[status] || MISSING;
    return quality && quality !== "confirmed" ? { ...look, uncertain: true } : look;
  }

  function polygon(ctx, x, y, r, sides, rotation) {
    ctx.moveTo(x + r * Math.cos(rotation), y + r * Math.sin(rotation));
    for (let i = 1; i <= sides; i++) {
      const a = rotation + (i * 2 * Math.PI) / sides;
      ctx.lineTo(x + r * Math.cos(a), y + r * Math.sin(a));
    }
    ctx.closePath();
  }

  function outline(ctx, shape, x, y, r) {
    ctx.beginPath();
    switch (shape) {
      case "square": ctx.rect(x - r * 0.85, y - r * 0.85, r * 1.7, r * 1.7); break;
      case "diamond": polygon(ctx, x, y, r * 1.15, 4, -Math.PI / 2); break;
      case "triangle": polygon(ctx, x, y + r * 0.2, r * 1.2, 3, -Math.PI / 2); break;
      case "triangle-down": polygon(ctx, x, y - r * 0.2, r * 1.2, 3, Math.PI / 2); break;
      case "hexagon": polygon(ctx, x, y, r * 1.05, 6, 0); break;
      case "pentagon": polygon(ctx, x, y, r * 1.1, 5, -Math.PI / 2); break;
      case "star":
        for (let i = 0; i < 10; i++) {
          const a = -Math.PI / 2 + (i * Math.PI) / 5;
          const k = i % 2 ? r * 0.6 : r * 1.3;
          if (i) ctx.lineTo(x + k * Math.cos(a), y + k * Math.sin(a));
          else ctx.moveTo(x + k * Math.cos(a), y + k * Math.sin(a));
        }
        ctx.closePath();
        break;
      case "plus": {
        const a = r * 0.45;
        const b = r * 1.1;
        ctx.moveTo(x - a, y - b); ctx.lineTo(x + a, y - b); ctx.lineTo(x + a, y - a); ctx.lineTo(x + b, y - a);
        ctx.lineTo(x + b, y + a); ctx.lineTo(x + a, y + a); ctx.lineTo(x + a, y + b); ctx.lineTo(x - a, y + b);
        ctx.lineTo(x - a, y + a); ctx.lineTo(x - b, y + a); ctx.lineTo(x - b, y - a); ctx.lineTo(x - a, y - a);
        ctx.closePath();
        break;
      }
      default: ctx.arc(x, y, r, 0, Math.PI * 2);
    }
  }

  /* Draw one marker; shared by the map's canvas and the legend's little canvases. */
  function draw(ctx, shape, look, x, y, r, selected) {
    if (look.uncertain) ctx.globalAlpha = 0.45;
    outline(ctx, shape, x, y, r);
    ctx.lineWidth = selected ? 3 : 1.5;
    if (look.glyph === "hollow") {
      ctx.fillStyle = "#ffffff";
      ctx.fill();
      ctx.setLineDash([3, 2]);
      ctx.strokeStyle = look.color;
      ctx.lineWidth = 2;
      ctx.stroke();
      ctx.setLineDash([]);
    } else {
      ctx.fillStyle = look.color;
      ctx.fill();
      ctx.strokeStyle = "#ffffff";
      ctx.stroke();
      ctx.strokeStyle = "#ffffff";
      ctx.fillStyle = "#ffffff";
      ctx.lineWidth = 1.8;
      if (look.glyph === "dot") {
        ctx.beginPath(); ctx.arc(x, y, r * 0.35, 0, Math.PI * 2); ctx.fill();
      } else if (look.glyph === "slash") {
        ctx.beginPath(); ctx.moveTo(x - r * 0.5, y + r * 0.5); ctx.lineTo(x + r * 0.5, y - r * 0.5); ctx.stroke();
      } else if (look.glyph === "cross") {
        ctx.beginPath();
        ctx.moveTo(x - r * 0.45, y - r * 0.45); ctx.lineTo(x + r * 0.45, y + r * 0.45);
        ctx.moveTo(x + r * 0.45, y - r * 0.45); ctx.lineTo(x - r * 0.45, y + r * 0.45);
        ctx.stroke();
      }
    }
    if (look.uncertain) {
      ctx.globalAlpha = 1;
      ctx.beginPath();
      ctx.arc(x, y, r + 3, 0, Math.PI * 2);
      ctx.setLineDash([2, 2]);
      ctx.strokeStyle = "#16202a";
      ctx.lineWidth = 1.5;
      ctx.stroke();
      ctx.setLineDash([]);
    }
    if (selected) {
      ctx.beginPath();
      ctx.arc(x, y, r + 5, 0, Math.PI * 2);
      ctx.strokeStyle = "#16202a";
      ctx.lineWidth = 2.5;
      ctx.stroke();
    }
  }

  /* A CircleMarker that the canvas renderer draws with `draw` (hit-testing stays circular). */
  const AssetMarker = L.CircleMarker.extend({
    options: { shape: "circle", look: STATUS.available, selected: false, radius: 7 },
    _updatePath() {
      if (!this._renderer._drawing || this._empty()) return;
      const p = this._point;
      draw(this._renderer._ctx, this.options.shape, this.options.look, p.x, p.y, this._radius, this.options.selected);
    },
  });

  function legendSwatch(shape, look) {
    const canvas = document.createElement("canvas");
    const ratio = window.devicePixelRatio || 1;
    canvas.width = canvas.height = 22 * ratio;
    canvas.style.width = canvas.style.height = "22px";
    canvas.setAttribute("aria-hidden", "true");
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    draw(ctx, shape, look, 11, 11, 7, false);
    return canvas;
  }

  function shapeFor(types) {
    const map = {};
    types.forEach((t, i) => { map[t.slug] = SHAPES[i % SHAPES.length]; });
    return (slug) => map[slug] || "circle";
  }

  return { AssetMarker, STATUS, MISSING, style, shapeFor, legendSwatch };
})();
