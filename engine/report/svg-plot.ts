/**
 * A small hand-written SVG line plot for loss curves: axes with round ticks, one `<path>` per
 * series, a legend when there is more than one series. No script, no external references, so the
 * same markup works inline in the HTML report and as a standalone `.svg` file.
 */
import { escapeXml } from './escape';

export interface PlotSeries {
  label: string;
  points: readonly { x: number; y: number }[];
}

export interface LinePlotOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Width in px. Default 560. */
  width?: number;
  /** Height in px. Default 300. */
  height?: number;
  /** A range the y axis covers whatever the data, e.g. [0, 1] for a share. */
  yRange?: readonly [number, number];
  /**
   * Where the legend of several series goes: `inside` the plot's top right corner (default), or in
   * a row `below` the axes, where it never hides a line.
   */
  legend?: 'inside' | 'below';
}

/** Colour-blind-safe series colours (Okabe-Ito). */
const COLORS = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9'];

const MARGIN = { left: 64, right: 16, top: 32, bottom: 44 };
/** Height of the legend row under the axes. */
const LEGEND_ROW = 22;

/** About `count` round tick values (1, 2 or 5 times a power of ten) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * power >= raw) ?? 10) * power;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    ticks.push(Number(v.toPrecision(12)));
  }
  return ticks;
}

const exponential = (v: number): boolean => {
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5);
};

/** Labels of one axis: all in exponent form when any needs it, so 1.0e-3 sits beside 5.0e-4. */
function tickLabels(ticks: readonly number[]): string[] {
  const expo = ticks.some(exponential);
  return ticks.map((v) => (expo && v !== 0 ? v.toExponential(1) : String(Number(v.toPrecision(4)))));
}

/**
 * Renders the series as an SVG document string. Non-finite points are skipped (a NaN loss would
 * otherwise break the path); a series with no finite point still gets an empty path so the count of
 * paths always equals the count of series.
 */
export function renderLinePlot(series: readonly PlotSeries[], options: LinePlotOptions): string {
  const width = options.width ?? 560;
  const height = options.height ?? 300;
  const finite = series.map((s) => s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)));
  const all = finite.flat();
  let [x0, x1] = extent(all.map((p) => p.x));
  let [y0, y1] = extent(all.map((p) => p.y));
  if (options.yRange) [y0, y1] = [Math.min(y0, options.yRange[0]), Math.max(y1, options.yRange[1])];
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 === y0) [y0, y1] = [y0 - Math.abs(y0 || 1) * 0.1, y1 + Math.abs(y1 || 1) * 0.1];
  const pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;
  const plotW = width - MARGIN.left - MARGIN.right;
  const below = options.legend === 'below' && series.length > 1;
  const plotH = height - MARGIN.top - MARGIN.bottom - (below ? LEGEND_ROW : 0);
  const sx = (x: number): number => MARGIN.left + ((x - x0) / (x1 - x0)) * plotW;
  const sy = (y: number): number => MARGIN.top + (1 - (y - y0) / (y1 - y0)) * plotH;
  const r = (v: number): string => v.toFixed(1);

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" font-family="system-ui, sans-serif" font-size="11">`,
    `<title>${escapeXml(options.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${MARGIN.left}" y="18" font-size="13" font-weight="600">${escapeXml(options.title)}</text>`,
  ];
  const yTicks = niceTicks(y0, y1);
  const yLabels = tickLabels(yTicks);
  yTicks.forEach((t, i) => {
    out.push(
      `<line x1="${MARGIN.left}" x2="${width - MARGIN.right}" y1="${r(sy(t))}" y2="${r(sy(t))}" stroke="#e5e5e5"/>`,
      `<text x="${MARGIN.left - 6}" y="${r(sy(t) + 4)}" text-anchor="end" fill="#444">${yLabels[i]}</text>`,
    );
  });
  const xTicks = niceTicks(x0, x1);
  const xLabels = tickLabels(xTicks);
  xTicks.forEach((t, i) => {
    out.push(
      `<line x1="${r(sx(t))}" x2="${r(sx(t))}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH + 4}" stroke="#444"/>`,
      `<text x="${r(sx(t))}" y="${MARGIN.top + plotH + 16}" text-anchor="middle" fill="#444">${xLabels[i]}</text>`,
    );
  });
  out.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#444"/>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${MARGIN.top + plotH + MARGIN.bottom - 6}" text-anchor="middle">${escapeXml(options.xLabel)}</text>`,
    `<text transform="translate(14 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(options.yLabel)}</text>`,
  );
  finite.forEach((points, i) => {
    const color = COLORS[i % COLORS.length] as string;
    const d = points.map((p, j) => `${j === 0 ? 'M' : 'L'}${r(sx(p.x))} ${r(sy(p.y))}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.5" stroke-linejoin="round"/>`);
  });
  if (series.length > 1) out.push(...legend(series, below ? 'below' : 'inside', width, height));
  out.push('</svg>');
  return out.join('\n');
}

/** A swatch and label per series: stacked in the top right corner, or in one row under the axes. */
function legend(
  series: readonly PlotSeries[],
  where: 'inside' | 'below',
  width: number,
  height: number,
): string[] {
  const out: string[] = [];
  let x = where === 'below' ? MARGIN.left : width - MARGIN.right - 120;
  series.forEach((s, i) => {
    const y = where === 'below' ? height - 8 : MARGIN.top + 12 + i * 14;
    out.push(
      `<line x1="${x}" x2="${x + 16}" y1="${y - 4}" y2="${y - 4}" stroke="${COLORS[i % COLORS.length]}" stroke-width="2"/>`,
      `<text x="${x + 20}" y="${y}">${escapeXml(s.label)}</text>`,
    );
    // About 6.5 px per character at the plot's 11 px font, then a gap before the next entry.
    if (where === 'below') x += 20 + Math.ceil(s.label.length * 6.5) + 18;
  });
  return out;
}

function extent(values: readonly number[]): [number, number] {
  if (values.length === 0) return [0, 1];
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}
