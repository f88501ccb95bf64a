/**
 * Memory: one bar per worker on a canvas, the height its memory as a share of its own
 * limit (so workers of different sizes compare), the stored results solid and the rest
 * of the process lighter; the line at the top is the limit.
 */
import { WORKER_FIELD as F, type WorkerRow } from '../feed-protocol.js';
import { CanvasBox } from './canvas-box.js';
import { formatBytes } from './format.js';
import type { DashboardModel } from './model.js';
import { compareNames } from './task-stream-view.js';

const AXIS = 16;

function colorFor(fraction: number): string {
  return fraction >= 0.8 ? '#d62728' : fraction >= 0.6 ? '#ff7f0e' : '#1f77b4';
}

export class MemoryView {
  readonly #box: CanvasBox;
  readonly #summary: HTMLElement;
  #version = -1;
  #sorted: readonly WorkerRow[] = [];
  #size = '';

  constructor(canvas: HTMLCanvasElement, summary: HTMLElement, onResize: () => void) {
    this.#box = new CanvasBox(canvas, 200, 100, onResize);
    this.#summary = summary;
  }

  render(m: DashboardModel): void {
    const canvas = this.#box.canvas;
    const { cssWidth: cssW, cssHeight: cssH, dpr } = this.#box.fit();
    const size = `${cssW}x${cssH}x${dpr}`;
    // Worker memory changes with the worker list (about once a second): redraw only then.
    if (this.#version === m.workersVersion && size === this.#size) return;
    this.#version = m.workersVersion;
    this.#size = size;
    const ctx = canvas.getContext('2d');
    if (ctx === null) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    this.#sorted = [...m.workers].sort((a, b) => compareNames(a[F.name], b[F.name]));
    const ws = this.#sorted;
    const n = ws.length;
    const labels = n > 0 && n <= 24;
    const plotH = cssH - (labels ? AXIS : 4) - 8;
    const top = 8;
    let stored = 0;
    let process = 0;
    let limit = 0;
    let spilled = 0;
    const slot = n === 0 ? 0 : cssW / n;
    const barW = Math.max(1, Math.min(48, slot > 6 ? slot * 0.75 : slot));
    for (let i = 0; i < n; i++) {
      const w = ws[i] as WorkerRow;
      const lim = w[F.memoryLimit] > 0 && Number.isFinite(w[F.memoryLimit]) ? w[F.memoryLimit] : 0;
      const st = Math.max(w[F.nbytes], w[F.managed]);
      const proc = Math.max(w[F.process], st);
      stored += st;
      process += proc;
      limit += lim;
      spilled += w[F.spilled];
      if (lim === 0) continue;
      const x = i * slot + (slot - barW) / 2;
      const fStored = Math.min(1, st / lim);
      const fProc = Math.min(1, proc / lim);
      const color = colorFor(fProc);
      ctx.globalAlpha = 0.3;
      ctx.fillStyle = color;
      ctx.fillRect(x, top + plotH * (1 - fProc), barW, plotH * (fProc - fStored));
      ctx.globalAlpha = 1;
      ctx.fillRect(x, top + plotH * (1 - fStored), barW, Math.max(fStored > 0 ? 1 : 0, plotH * fStored));
    }
    // The limit, at 100% of every bar.
    ctx.strokeStyle = '#8a94a6';
    ctx.setLineDash([4, 3]);
    ctx.beginPath();
    ctx.moveTo(0, top + 0.5);
    ctx.lineTo(cssW, top + 0.5);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.strokeStyle = '#d5d9e0';
    ctx.beginPath();
    ctx.moveTo(0, top + plotH + 0.5);
    ctx.lineTo(cssW, top + plotH + 0.5);
    ctx.stroke();
    if (labels) {
      ctx.fillStyle = '#5b6475';
      ctx.font = '10px system-ui, sans-serif';
      ctx.textAlign = 'center';
      ctx.textBaseline = 'top';
      for (let i = 0; i < n; i++) {
        const name = (ws[i] as WorkerRow)[F.name];
        ctx.fillText(name.length > 10 ? `…${name.slice(-9)}` : name, i * slot + slot / 2, top + plotH + 3, slot - 2);
      }
    }
    if (n === 0) {
      ctx.fillStyle = '#8a94a6';
      ctx.font = '13px system-ui, sans-serif';
      ctx.textAlign = 'center';
      ctx.fillText('No workers', cssW / 2, cssH / 2);
    }
    canvas.dataset['workers'] = String(n);
    this.#summary.textContent =
      `stored ${formatBytes(stored)} · process ${formatBytes(process)} · limit ${formatBytes(limit)} · spilled ${formatBytes(spilled)}` +
      (m.workerCount > n ? ` · ${m.workerCount - n} workers not shown` : '');
  }
}
