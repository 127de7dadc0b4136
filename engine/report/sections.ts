/**
 * What both report formats share: input checks, the table list, plot and grid rendering, file
 * names and number formats. The Markdown and HTML renderers only differ in markup.
 */
import { decodeImage, encodePng } from '../data/image-codec';
import type { RgbImage } from '../data/image';
import { slug } from './escape';
import { composeGrid, scaleFor, upscaleNearest } from './image-grid';
import type { ReportData } from './report-data';
import { expertProvenanceTable } from './expert-provenance';
import { droTermsFigure, type DroTermsFigure } from './dro-terms';
import { genevalExclusionsTable, genevalTagTable } from './geneval-detail';
import { renderLinePlot } from './svg-plot';
import type { Table } from './tables';
import { genevalTable, humanStudyTable, utilityTables, winRateDetailTable, winRateTable } from './tables';

/** Side, in px, that samples are enlarged to (at least) with nearest-neighbour. Default 96. */
export const SAMPLE_TARGET_PX = 96;

export interface LossPlot {
  stage: string;
  file: string;
  svg: string;
}

export interface MethodSamples {
  method: string;
  /** Grid of all the method's samples in prompt order, PNG; written as `file`. */
  gridFile: string;
  gridPng: Uint8Array;
  /** Each sample enlarged, PNG, in prompt order. */
  cells: Uint8Array[];
}

export interface PreparedReport {
  tables: Table[];
  plots: LossPlot[];
  /** The DRO hinge's terms per update, when the DRO summary logged them. */
  dro?: DroTermsFigure;
  samples: MethodSamples[];
}

/** Throws a RangeError naming the field when the data cannot make a consistent report. */
export function checkReportData(data: ReportData): void {
  const grid = data.samples;
  if (grid) {
    if (grid.seeds.length !== grid.prompts.length) {
      throw new RangeError(`samples.seeds: ${grid.seeds.length} seeds for ${grid.prompts.length} prompts`);
    }
    const seen = new Set<string>();
    grid.methods.forEach((m, i) => {
      if (m.images.length !== grid.prompts.length) {
        throw new RangeError(
          `samples.methods[${i}] (${m.method}): ${m.images.length} images for ${grid.prompts.length} prompts`,
        );
      }
      if (seen.has(slug(m.method))) {
        throw new RangeError(`samples.methods[${i}]: method name "${m.method}" repeats an earlier one`);
      }
      seen.add(slug(m.method));
    });
  }
  data.artifacts.forEach((a, i) => {
    if (!/^[0-9a-f]{64}$/.test(a.sha256)) {
      throw new RangeError(`artifacts[${i}].sha256 (${a.role}): not a lowercase hex SHA-256`);
    }
  });
}

export function reportTables(data: ReportData): Table[] {
  const tables: Table[] = [];
  if (data.geneval.length) {
    tables.push(genevalTable(data.geneval));
    const perTag = genevalTagTable(data.geneval);
    if (perTag) tables.push(perTag);
    const excluded = data.genevalSuite && genevalExclusionsTable(data.genevalSuite);
    if (excluded) tables.push(excluded);
  }
  if (data.winRates.length) tables.push(winRateTable(data.winRates), winRateDetailTable(data.winRates));
  for (const t of utilityTables(data.utility)) if (typeof t !== 'string') tables.push(t);
  const perReward = data.perRewardMedianWinRates ?? [];
  if (perReward.length) tables.push(winRateTable(perReward, true), winRateDetailTable(perReward, true));
  if (data.humanStudy?.rows.length) tables.push(humanStudyTable(data.humanStudy.rows));
  if (data.expertProvenance?.length) tables.push(expertProvenanceTable(data.expertProvenance));
  return tables;
}

export function prepareReport(data: ReportData): PreparedReport {
  checkReportData(data);
  const plots = data.lossCurves.map((curve) => ({
    stage: curve.stage,
    file: `loss-${slug(curve.stage)}.svg`,
    svg: renderLinePlot(
      [{ label: curve.stage, points: curve.points.map((p) => ({ x: p.step, y: p.loss })) }],
      {
        title: `${curve.stage} loss`,
        xLabel: 'step',
        yLabel: 'loss',
      },
    ),
  }));
  const samples: MethodSamples[] = [];
  const grid = data.samples;
  if (grid) {
    for (const m of grid.methods) {
      const images: RgbImage[] = m.images.map((bytes, i) =>
        decodeImage(bytes, { source: `samples ${m.method} image ${i}` }),
      );
      if (images.length === 0) continue;
      const scale = scaleFor(
        Math.max((images[0] as RgbImage).width, (images[0] as RgbImage).height),
        SAMPLE_TARGET_PX,
      );
      samples.push({
        method: m.method,
        gridFile: `grid-${slug(m.method)}.png`,
        gridPng: encodePng(composeGrid(images, { scale, columns: 8, gap: scale }).image),
        cells: images.map((im) => encodePng(upscaleNearest(im, scale))),
      });
    }
  }
  const dro = droTermsFigure(data.droTerms);
  return { tables: reportTables(data), plots, ...(dro ? { dro } : {}), samples };
}

/** "0.4 s", "51 s", "3 min 44 s", "1 h 02 min". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return 'n/a';
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** "1 participant", "3 participants". */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function totalWallSeconds(data: ReportData): number {
  return data.stages.reduce((sum, s) => sum + s.wallSeconds, 0);
}

/** The config as indented JSON with sorted keys, so two reports of one config read the same. */
export function configJson(config: unknown): string {
  return JSON.stringify(sortKeys(config), null, 2) ?? 'null';
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}
