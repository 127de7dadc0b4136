/**
 * The report's "DRO terms" figure: the hinge's terms per optimizer update from the DRO training
 * summary, so a reader sees whether phi pulls ahead of the reference on the experts, how far the
 * policy's own samples move, and how many samples the hinge still trains on.
 */
import type { DroTermPoint, DroTerms } from './report-data';
import { renderLinePlot, type PlotSeries } from './svg-plot';

export interface DroTermPlot {
  /** File name beside report.md. */
  file: string;
  title: string;
  svg: string;
}

export interface DroTermsFigure {
  plots: DroTermPlot[];
  /** What each series means, one paragraph. */
  caption: string;
}

type TermKey = Exclude<keyof DroTermPoint, 'step'>;

/** The hinge's difference terms, plotted on one axis (all are differences of denoising errors). */
export const DRO_DIFF_TERMS: readonly { key: TermKey; label: string }[] = [
  { key: 'diff', label: 'diff' },
  { key: 'expertDiff', label: 'Le - Le0' },
  { key: 'policyDiff', label: 'Lp - Lp0' },
];

// Two plots side by side fill the report's column.
const PLOT_SIZE = { width: 520, height: 320 };

function series(points: readonly DroTermPoint[], key: TermKey, label: string): PlotSeries {
  const out: { x: number; y: number }[] = [];
  for (const p of points) {
    const y = p[key];
    if (typeof y === 'number') out.push({ x: p.step, y });
  }
  return { label, points: out };
}

const has = (points: readonly DroTermPoint[], key: TermKey): boolean =>
  points.some((p) => typeof p[key] === 'number');

/** The threshold line: below -margin a sample's hinge is closed. */
function marginLine(points: readonly DroTermPoint[], margin: number): PlotSeries {
  const steps = points.map((p) => p.step).filter(Number.isFinite);
  const [lo, hi] = [Math.min(...steps), Math.max(...steps)];
  return {
    label: '-margin',
    points: [
      { x: lo, y: -margin },
      { x: hi, y: -margin },
    ],
  };
}

function caption(terms: DroTerms): string {
  const margin =
    terms.margin === undefined ? 'the margin (config dro.margin)' : `margin ${String(terms.margin)}`;
  return (
    'Per optimizer update, the mean over its samples. Le - Le0: how much worse (above 0) or better ' +
    '(below 0) the trained network denoises the expert images than the frozen reference does; ' +
    "Lp - Lp0: the same on the policy's own samples; diff = (Le - Le0) - (Lp - Lp0). " +
    `The DRO loss is mean(max(0, diff + margin)) with ${margin}: a sample trains only while its ` +
    'hinge is open (diff > -margin), that is until the network ranks the expert ahead of its own ' +
    'sample by more than the margin. The hinge-open plot is the share of samples still open.'
  );
}

/** The figure, or undefined when the summary logged none of the terms. */
export function droTermsFigure(terms: DroTerms | undefined): DroTermsFigure | undefined {
  const points = terms?.points ?? [];
  if (!terms || points.length === 0) return undefined;
  const plots: DroTermPlot[] = [];
  const present = DRO_DIFF_TERMS.filter((t) => has(points, t.key));
  if (present.length) {
    const lines = present.map((t) => series(points, t.key, t.label));
    if (terms.margin !== undefined && Number.isFinite(terms.margin))
      lines.push(marginLine(points, terms.margin));
    const title = 'DRO terms per update';
    plots.push({
      file: 'dro-terms.svg',
      title,
      svg: renderLinePlot(lines, {
        title,
        xLabel: 'step',
        yLabel: 'error difference',
        legend: 'below',
        ...PLOT_SIZE,
      }),
    });
  }
  if (has(points, 'hingeOpen')) {
    const title = 'Share of samples with the hinge open';
    plots.push({
      file: 'dro-hinge-open.svg',
      title,
      svg: renderLinePlot([series(points, 'hingeOpen', 'hinge open')], {
        title,
        xLabel: 'step',
        yLabel: 'share of samples',
        yRange: [0, 1],
        ...PLOT_SIZE,
      }),
    });
  }
  return plots.length ? { plots, caption: caption(terms) } : undefined;
}
