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
}

/** Colour-blind-safe series colours (Okabe-Ito). */
const COLORS = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9'];

const MARGIN = { left: 64, right: 16, top: 32, bottom: 44 };

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

function tickLabel(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
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
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 === y0) [y0, y1] = [y0 - Math.abs(y0 || 1) * 0.1, y1 + Math.abs(y1 || 1) * 0.1];
  const pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const sx = (x: number): number => MARGIN.left + ((x - x0) / (x1 - x0)) * plotW;
  const sy = (y: number): number => MARGIN.top + (1 - (y - y0) / (y1 - y0)) * plotH;
  const r = (v: number): string => v.toFixed(1);

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" font-family="system-ui, sans-serif" font-size="11">`,
    `<title>${escapeXml(options.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${MARGIN.left}" y="18" font-size="13" font-weight="600">${escapeXml(options.title)}</text>`,
  ];
  for (const t of niceTicks(y0, y1)) {
    out.push(
      `<line x1="${MARGIN.left}" x2="${width - MARGIN.right}" y1="${r(sy(t))}" y2="${r(sy(t))}" stroke="#e5e5e5"/>`,
      `<text x="${MARGIN.left - 6}" y="${r(sy(t) + 4)}" text-anchor="end" fill="#444">${tickLabel(t)}</text>`,
    );
  }
  for (const t of niceTicks(x0, x1)) {
    out.push(
      `<line x1="${r(sx(t))}" x2="${r(sx(t))}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH + 4}" stroke="#444"/>`,
      `<text x="${r(sx(t))}" y="${MARGIN.top + plotH + 16}" text-anchor="middle" fill="#444">${tickLabel(t)}</text>`,
    );
  }
  out.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#444"/>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${height - 6}" text-anchor="middle">${escapeXml(options.xLabel)}</text>`,
    `<text transform="translate(14 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(options.yLabel)}</text>`,
  );
  finite.forEach((points, i) => {
    const color = COLORS[i % COLORS.length] as string;
    const d = points.map((p, j) => `${j === 0 ? 'M' : 'L'}${r(sx(p.x))} ${r(sy(p.y))}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.5" stroke-linejoin="round"/>`);
  });
  if (series.length > 1) {
    series.forEach((s, i) => {
      const y = MARGIN.top + 12 + i * 14;
      const x = width - MARGIN.right - 120;
      out.push(
        `<line x1="${x}" x2="${x + 16}" y1="${y - 4}" y2="${y - 4}" stroke="${COLORS[i % COLORS.length]}" stroke-width="2"/>`,
        `<text x="${x + 20}" y="${y}">${escapeXml(s.label)}</text>`,
      );
    });
  }
  out.push('</svg>');
  return out.join('\n');
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
