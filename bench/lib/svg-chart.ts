/**
 * A tiny SVG bar chart (no dependencies): groups of bars, one colour per series, a value on top of
 * each bar, optional dashed target lines. Written next to a scenario's JSON as
 * bench/results/<scenario>-<timestamp>.svg and <scenario>-latest.svg.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { RESULTS_DIR, ROOT } from './results.js';

export interface BarChart {
  readonly title: string;
  /** Unit of the y axis, e.g. "events/s". */
  readonly unit: string;
  /** One label per group (x axis). */
  readonly groups: readonly string[];
  /** Each series has one value per group (NaN: no bar). */
  readonly series: readonly { readonly name: string; readonly values: readonly number[] }[];
  readonly targets?: readonly { readonly label: string; readonly value: number }[];
  /** Use a log10 y axis (values spanning orders of magnitude). */
  readonly log?: boolean;
}

const COLOURS = ['#2563eb', '#9ca3af', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6'];

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function label(v: number): string {
  if (!Number.isFinite(v)) return '';
  if (Math.abs(v) >= 10_000) return `${Math.round(v / 1000).toLocaleString('en-US')}k`;
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  return String(Math.round(v * 10) / 10);
}

export function barChartSvg(chart: BarChart): string {
  const width = Math.max(480, 120 + chart.groups.length * (40 + chart.series.length * 34));
  const height = 340;
  const left = 70;
  const top = 50;
  const bottom = 60;
  const plotH = height - top - bottom;
  const plotW = width - left - 20;
  const all = [...chart.series.flatMap((s) => s.values), ...(chart.targets ?? []).map((t) => t.value)].filter((v) => Number.isFinite(v) && v > 0);
  const max = Math.max(1, ...all) * 1.1;
  const min = chart.log ? Math.max(1e-3, Math.min(...all, max) / 2) : 0;
  const y = (v: number) => {
    if (chart.log) return top + plotH - ((Math.log10(Math.max(v, min)) - Math.log10(min)) / (Math.log10(max) - Math.log10(min))) * plotH;
    return top + plotH - (v / max) * plotH;
  };
  const groupW = plotW / Math.max(1, chart.groups.length);
  const barW = Math.min(30, (groupW - 20) / Math.max(1, chart.series.length));
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  out.push(`<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(chart.title)}</text>`);
  out.push(`<text x="14" y="${top + plotH / 2}" transform="rotate(-90 14 ${top + plotH / 2})" text-anchor="middle">${esc(chart.unit)}${chart.log ? ' (log)' : ''}</text>`);
  out.push(`<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="black"/>`);
  out.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="black"/>`);
  const ticks = chart.log
    ? Array.from({ length: 12 }, (_, i) => 10 ** (Math.floor(Math.log10(min)) + i)).filter((t) => t >= min && t <= max)
    : [0, 0.25, 0.5, 0.75, 1].map((f) => (max / 1.1) * f);
  for (const t of ticks) {
    out.push(`<line x1="${left - 4}" y1="${y(t)}" x2="${left}" y2="${y(t)}" stroke="black"/><text x="${left - 6}" y="${y(t) + 4}" text-anchor="end">${label(t)}</text>`);
  }
  chart.groups.forEach((group, g) => {
    const x0 = left + g * groupW + (groupW - barW * chart.series.length) / 2;
    chart.series.forEach((s, i) => {
      const v = s.values[g] ?? Number.NaN;
      if (!Number.isFinite(v)) return;
      const x = x0 + i * barW;
      const yv = y(Math.max(v, chart.log ? min : 0));
      out.push(`<rect x="${x}" y="${yv}" width="${barW - 2}" height="${top + plotH - yv}" fill="${COLOURS[i % COLOURS.length]}"/>`);
      out.push(`<text x="${x + barW / 2 - 1}" y="${yv - 3}" text-anchor="middle" font-size="9">${label(v)}</text>`);
    });
    out.push(`<text x="${left + g * groupW + groupW / 2}" y="${top + plotH + 16}" text-anchor="middle">${esc(group)}</text>`);
  });
  for (const t of chart.targets ?? []) {
    out.push(`<line x1="${left}" y1="${y(t.value)}" x2="${left + plotW}" y2="${y(t.value)}" stroke="#dc2626" stroke-dasharray="5,4"/>`);
    out.push(`<text x="${left + plotW - 2}" y="${y(t.value) - 4}" text-anchor="end" fill="#dc2626">${esc(t.label)}</text>`);
  }
  chart.series.forEach((s, i) => {
    const x = left + i * 150;
    out.push(`<rect x="${x}" y="${height - 22}" width="12" height="12" fill="${COLOURS[i % COLOURS.length]}"/><text x="${x + 16}" y="${height - 12}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** Writes the chart next to a result JSON (same stem + `suffix`, .svg) and as <scenario>-latest<suffix>.svg. */
export function writeChart(resultFile: string, scenario: string, svg: string, profiled = false, suffix = ''): string {
  const file = path.join(ROOT, resultFile.replace(/\.json$/, `${suffix}.svg`));
  writeFileSync(file, svg);
  if (!profiled) writeFileSync(path.join(RESULTS_DIR, `${scenario}-latest${suffix}.svg`), svg);
  return path.relative(ROOT, file);
}
