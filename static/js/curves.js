// The learning curves: accuracy and loss of the selected job (plus any ticked for comparison)
// drawn with uPlot, Chollet's smoothing (an exponential moving average), marker shapes and
// dashes per run, the selected job's best epoch (a dashed vertical line drawn by a uPlot plugin,
// and its label under each chart), captions for empty charts, and following the panel's width.
// uPlot is a classic script (vendor/uplot/) that index.html loads first: window.uPlot.
// Emits nothing. Handles: job-selected and compare-changed (rebuild the charts for the new set
// of runs), run-updated (new points for a run).

import { on } from './bus.js';
import { $, jobLabel, shortId } from './dom.js';
import { state, runFor } from './state.js';
import { bestEpochMark } from './training.js';

const uPlot = window.uPlot;

// For every run (the selected job first, then compared
// ones) four series: training raw, training smoothed (dots, as Chollet's 'bo'), validation raw,
// validation smoothed (lines, as his 'b'). So data[1] is the selected job's raw training values
// and data[2] their smoothed version. Raw series are faint, smoothed ones bold; runs differ by
// colour AND marker shape AND line dash, so they can be told apart without colour.

const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9']; // Okabe–Ito
const SHAPES = ['circle', 'square', 'triangle', 'diamond', 'cross'];
const SHAPES_GLYPH = { circle: '●', square: '■', triangle: '▲', diamond: '◆', cross: '✚' };
const DASHES = [[], [10, 5], [3, 4], [12, 4, 3, 4], [6, 3]];

function rgba(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/** Chollet's smooth_curve: an exponential moving average, the first point unchanged. Missing
 * points stay missing and do not reset the average. */
export function smooth(points, factor) {
  let prev = null;
  return points.map((p) => {
    if (p == null) return null;
    prev = prev == null ? p : prev * factor + p * (1 - factor);
    return prev;
  });
}

/** uPlot points path builder drawing the given marker shape instead of its round default. */
function shapePoints(shape) {
  return (u, si, i0, i1) => {
    const s = u.series[si];
    const r = (s.points.size / 2) * (window.devicePixelRatio || 1);
    const path = new Path2D();
    const xs = u.data[0];
    const ys = u.data[si];
    for (let i = i0; i <= i1; i++) {
      if (ys[i] == null) continue;
      const x = u.valToPos(xs[i], 'x', true);
      const y = u.valToPos(ys[i], s.scale, true);
      if (shape === 'square') path.rect(x - r, y - r, 2 * r, 2 * r);
      else if (shape === 'triangle') {
        path.moveTo(x, y - r * 1.2);
        path.lineTo(x + r * 1.1, y + r * 0.8);
        path.lineTo(x - r * 1.1, y + r * 0.8);
        path.closePath();
      } else if (shape === 'diamond') {
        path.moveTo(x, y - r * 1.3);
        path.lineTo(x + r * 1.1, y);
        path.lineTo(x, y + r * 1.3);
        path.lineTo(x - r * 1.1, y);
        path.closePath();
      } else if (shape === 'cross') {
        const t = r * 0.4;
        path.rect(x - r, y - t, 2 * r, 2 * t);
        path.rect(x - t, y - r, 2 * t, 2 * r);
      } else {
        path.moveTo(x + r, y);
        path.arc(x, y, r, 0, 2 * Math.PI);
      }
    }
    return { stroke: path, fill: path };
  };
}

const BEST_EPOCH_COLOR = '#3a3f4b';

/** uPlot plugin: a dashed vertical line at the run's best epoch, with "best N" at its top. It
 * reads the run at every draw, so the line moves as epochs arrive (setData redraws). The epoch
 * drawn is left on the chart's root as data-marked-epoch (empty when none), for tests. */
function bestEpochPlugin(run) {
  const draw = (u) => {
    const mark = run ? bestEpochMark(run) : null;
    const { left, top, width, height } = u.bbox;
    const x = mark ? Math.round(u.valToPos(mark.epoch, 'x', true)) : NaN;
    const shown = Number.isFinite(x) && x >= left - 1 && x <= left + width + 1;
    u.root.dataset.markedEpoch = shown ? String(mark.epoch) : '';
    if (!shown) return;
    const px = window.devicePixelRatio || 1;
    const ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = BEST_EPOCH_COLOR;
    ctx.fillStyle = BEST_EPOCH_COLOR;
    ctx.lineWidth = 1.5 * px;
    ctx.setLineDash([5 * px, 4 * px]);
    ctx.beginPath();
    ctx.moveTo(x, top);
    ctx.lineTo(x, top + height);
    ctx.stroke();
    ctx.font = `600 ${11 * px}px system-ui, sans-serif`;
    ctx.textAlign = 'left'; // uPlot leaves the axes' alignment set
    ctx.textBaseline = 'top';
    const text = `best ${mark.epoch}`;
    const textWidth = ctx.measureText(text).width;
    // Right of the line, or left of it where the plot ends.
    const textX = x + 4 * px + textWidth <= left + width ? x + 4 * px : x - 4 * px - textWidth;
    ctx.fillText(text, textX, top + 3 * px);
    ctx.restore();
  };
  return { hooks: { draw: [draw] } };
}

function chartRuns() {
  const ids = [];
  if (state.selected) ids.push(state.selected);
  for (const id of state.compare) if (!ids.includes(id)) ids.push(id);
  return ids.map((id) => ({ id, run: runFor(id) }));
}

function seriesFor(runs) {
  return runs.flatMap(({ id }, i) => {
    const color = PALETTE[i % PALETTE.length];
    const shape = SHAPES[i % SHAPES.length];
    const dash = DASHES[i % DASHES.length];
    // With one run the legend needs no run names; with several, each names its job and shape.
    const tag = runs.length > 1 ? `${SHAPES_GLYPH[shape]} ${shortId(id)} · ` : '';
    const dots = (alpha, size, filled) => ({
      paths: () => null,
      points: { show: true, size, width: 1.5, stroke: rgba(color, alpha), fill: filled ? rgba(color, alpha) : '#fff', paths: shapePoints(shape) },
      stroke: rgba(color, alpha),
      width: 0,
    });
    const value = (u, v) => (v == null ? '—' : v.toFixed(3));
    return [
      { label: `${tag}training (raw)`, value, ...dots(0.45, 5, false) },
      { label: `${tag}training (smoothed)`, value, ...dots(1, 7, true) },
      { label: `${tag}validation (raw)`, value, stroke: rgba(color, 0.4), width: 1, dash, points: { show: false } },
      { label: `${tag}validation (smoothed)`, value, stroke: color, width: 2.5, dash, points: { show: false } },
    ];
  });
}

function chartData(metric, runs) {
  const xs = [...new Set(runs.flatMap(({ run }) => [...run.epochs.keys()]))].sort((a, b) => a - b);
  const data = [xs];
  for (const { run } of runs) {
    for (const key of [metric, `val_${metric}`]) {
      const raw = xs.map((x) => {
        const v = run.epochs.get(x)?.[key];
        return typeof v === 'number' ? v : null;
      });
      data.push(raw, smooth(raw, state.smoothing));
    }
  }
  return data;
}

function chartSize(el) {
  // Measured on the figure, which stays laid out while the chart itself is folded away.
  const width = Math.max(260, Math.floor(el.parentElement.clientWidth));
  return { width, height: width < 500 ? 220 : 280 };
}

export function rebuildCharts() {
  const runs = chartRuns();
  state.chartKey = runs.map((r) => r.id).join(',');
  for (const metric of ['acc', 'loss']) {
    const el = document.getElementById(`chart-${metric}`);
    state.charts[metric]?.destroy();
    el.replaceChildren();
    const opts = {
      ...chartSize(el),
      scales: { x: { time: false } },
      axes: [
        { label: 'epoch', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500], values: (u, vals) => vals.map((v) => String(v)) },
        { label: metric === 'acc' ? 'accuracy' : 'loss', size: 56, values: (u, vals) => vals.map((v) => v.toFixed(2)) },
      ],
      series: [{ label: 'epoch', value: (u, v) => (v == null ? '—' : String(v)) }, ...seriesFor(runs)],
      cursor: { drag: { x: true, y: false } },
      plugins: [bestEpochPlugin(runs[0]?.run)], // the selected job's (listed first)
    };
    state.charts[metric] = new uPlot(opts, chartData(metric, runs), el);
  }
  captionCharts(runs);
  labelBestEpoch(runs);
}

export function updateCharts() {
  const runs = chartRuns();
  if (runs.map((r) => r.id).join(',') !== state.chartKey || !state.charts.acc) return rebuildCharts();
  state.charts.acc.setData(chartData('acc', runs));
  state.charts.loss.setData(chartData('loss', runs));
  captionCharts(runs);
  labelBestEpoch(runs);
}

/** Under each chart, the key to its dashed line: "best epoch 4 (registered)", of the selected
 * job when others are compared; hidden when there is no best epoch. */
function labelBestEpoch(runs) {
  const mark = runs[0] ? bestEpochMark(runs[0].run) : null;
  for (const metric of ['acc', 'loss']) {
    const el = $(`#best-epoch-${metric}`);
    el.hidden = !mark;
    el.dataset.epoch = mark ? String(mark.epoch) : '';
    const whose = runs.length > 1 ? `job ${shortId(runs[0].id)}: ` : '';
    el.querySelector('.best-epoch-text').textContent = mark ? `${whose}${mark.text}` : '';
  }
}

/** Say in words when a chart is empty, and why, instead of leaving a blank plot. */
function captionCharts(runs) {
  const any = runs.some(({ run }) => run.epochs.size > 0);
  const first = runs[0]?.run.job;
  let note = '';
  if (!runs.length) note = ' — select a job';
  else if (!any && first?.kind && !['train', 'fine_tune'].includes(first.kind)) note = ` — “${jobLabel(first)}” has no epochs`;
  else if (!any) note = ' — no epochs yet';
  for (const metric of ['acc', 'loss']) {
    $(`#caption-${metric}`).textContent = `${metric === 'acc' ? 'Accuracy' : 'Loss'}${note}`;
    // An empty plot is a big blank box: fold it away until there is something to draw.
    $(`#chart-${metric}`).closest('figure').classList.toggle('no-data', !any);
  }
}

/** uPlot draws on a canvas of a fixed size: follow the width of the panel. */
export function followChartWidth() {
  const resizer = new ResizeObserver(() => {
    cancelAnimationFrame(state.resizeFrame);
    // Deferred to the next frame so that resizing never happens inside the observer's callback
    // (which would log "ResizeObserver loop" errors).
    state.resizeFrame = requestAnimationFrame(() => {
      for (const metric of ['acc', 'loss']) {
        const chart = state.charts[metric];
        const el = document.getElementById(`chart-${metric}`);
        if (!chart) continue;
        const size = chartSize(el);
        if (size.width !== chart.width || size.height !== chart.height) chart.setSize(size);
      }
    });
  });
  resizer.observe($('#chart-acc').parentElement);
}

on('job-selected', () => rebuildCharts());
on('compare-changed', () => rebuildCharts());
on('run-updated', () => updateCharts());
