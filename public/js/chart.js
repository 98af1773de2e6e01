/**
 * A small per-scene bar chart as inline SVG (no chart library): mean brightness and motion energy
 * for each scene, with a legend. Colours come from the stylesheet through classes.
 * @module chart
 */

import { el, svg } from "./dom.js";

const WIDTH = 600;
const HEIGHT = 180;
const PAD = { top: 12, right: 8, bottom: 26, left: 8 };

/**
 * Build the chart.
 * @param {Array<{index: number, brightness: number, motion: number, faces: number|null}>} scenes
 * @returns {HTMLElement} a `figure` holding the SVG and its legend.
 */
export function sceneChart(scenes) {
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const band = plotW / scenes.length;
  const bar = Math.min(28, band * 0.36);
  const maxMotion = Math.max(1, ...scenes.map((s) => s.motion));
  const chart = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart", role: "img",
    "aria-label": `Brightness and motion for ${scenes.length} scenes`,
    preserveAspectRatio: "none",
  });
  chart.append(svg("line", {
    class: "chart-axis", x1: PAD.left, x2: WIDTH - PAD.right, y1: PAD.top + plotH, y2: PAD.top + plotH,
  }));
  scenes.forEach((scene, i) => {
    const center = PAD.left + band * (i + 0.5);
    const series = [
      ["brightness", scene.brightness / 255, `brightness ${scene.brightness.toFixed(0)} of 255`],
      ["motion", scene.motion / maxMotion, `motion ${scene.motion.toFixed(1)}`],
    ];
    series.forEach(([name, share, text], k) => {
      const h = Math.max(1, Math.min(1, share) * plotH);
      chart.append(svg("rect", {
        class: `chart-bar chart-bar--${name}`, x: (center - bar - 1 + k * (bar + 2)).toFixed(1),
        y: (PAD.top + plotH - h).toFixed(1), width: bar.toFixed(1), height: h.toFixed(1), rx: 2,
      }, [svg("title", {}, [`Scene ${scene.index + 1}: ${text}`])]));
    });
    chart.append(svg("text", { class: "chart-label", x: center.toFixed(1), y: HEIGHT - 8, "text-anchor": "middle" },
      [String(scene.index + 1)]));
  });
  const legend = el("figcaption", { className: "legend" }, [
    el("span", { className: "legend-item legend-item--brightness", text: "Brightness (0–255)" }),
    el("span", { className: "legend-item legend-item--motion", text: `Motion (max ${maxMotion.toFixed(1)})` }),
  ]);
  return el("figure", { className: "chart-figure" }, [chart, legend]);
}
