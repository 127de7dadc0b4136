/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
 * exposition format 0.0.4. Storage, activities and the metrics endpoint share it; it has no
 * dependency on Temporal or on the workers, so any module may record into it. Recording is a Map
 * lookup and an addition: cheap enough for a training step loop or every artifact read.
 */

/** Content type of the text exposition format this module renders. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Label values of one series, keyed by label name. */
export type LabelValues<L extends string> = Readonly<Record<L, string>>;

export interface MetricOptions<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
}

export interface HistogramOptions<L extends string> extends MetricOptions<L> {
  /** Upper bounds of the buckets, ascending; `+Inf` is always added. */
  buckets: readonly number[];
}

type MetricType = 'counter' | 'gauge' | 'histogram';

/** `\`, `"` and line feeds are the only characters a label value must escape. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escapes `\` and line feeds (quotes stay as they are). */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A sample value as Prometheus parses it (`+Inf`, `-Inf`, `NaN` spelled its way). */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function labelText(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const pairs = names.map((n, i) => `${n}="${escapeLabelValue(values[i]!)}"`);
  if (extra) pairs.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`;
}

abstract class Metric<L extends string, S> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  abstract readonly type: MetricType;
  /** Series by the JSON of their label values. */
  protected readonly series = new Map<string, { values: string[]; state: S }>();

  constructor(options: MetricOptions<L>, reserved: readonly string[] = []) {
    if (!METRIC_NAME.test(options.name))
      throw new Error(`metric name ${JSON.stringify(options.name)} is invalid`);
    const labelNames = options.labelNames ?? [];
    for (const label of labelNames)
      if (!LABEL_NAME.test(label) || label.startsWith('__') || reserved.includes(label))
        throw new Error(`metric ${options.name}: label name ${JSON.stringify(label)} is invalid`);
    if (new Set(labelNames).size !== labelNames.length)
      throw new Error(`metric ${options.name}: label names repeat`);
    this.name = options.name;
    this.help = options.help;
    this.labelNames = labelNames;
  }

  protected abstract initial(): S;

  private valuesOf(labels: LabelValues<L> | undefined): string[] {
    return this.labelNames.map((n) => {
      const v = labels?.[n];
      if (typeof v !== 'string') throw new Error(`metric ${this.name}: label ${n} has no value`);
      return v;
    });
  }

  protected stateOf(labels: LabelValues<L> | undefined): S {
    const values = this.valuesOf(labels);
    const key = JSON.stringify(values);
    let entry = this.series.get(key);
    if (!entry) {
      entry = { values, state: this.initial() };
      this.series.set(key, entry);
    }
    return entry.state;
  }

  /** The state of a series that exists, without creating it. */
  protected peek(labels: LabelValues<L> | undefined): S | undefined {
    return this.series.get(JSON.stringify(this.valuesOf(labels)))?.state;
  }

  /** Sample lines of the series, without HELP and TYPE. */
  protected abstract sampleLines(values: readonly string[], state: S): string[];

  render(): string {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    // A metric without labels always has its one series, so a scrape shows it from the start.
    if (this.labelNames.length === 0 && this.series.size === 0) this.stateOf(undefined);
    for (const { values, state } of this.series.values()) lines.push(...this.sampleLines(values, state));
    return lines.join('\n') + '\n';
  }

  /** Forgets every series (tests). */
  reset(): void {
    this.series.clear();
  }
}

/** A value that only goes up (resets with the process). */
export class Counter<L extends string = never> extends Metric<L, { value: number }> {
  readonly type = 'counter';
  protected initial() {
    return { value: 0 };
  }
  inc(...args: [L] extends [never] ? [by?: number] : [labels: LabelValues<L>, by?: number]): void {
    const [labels, by] = (this.labelNames.length === 0 ? [undefined, args[0]] : args) as [
      LabelValues<L> | undefined,
      number | undefined,
    ];
    const amount = by ?? 1;
    if (!(amount >= 0)) throw new Error(`counter ${this.name}: cannot add ${amount}`);
    this.stateOf(labels).value += amount;
  }
  /** Current value of one series (0 when it has none). */
  get(labels?: LabelValues<L>): number {
    return this.peek(labels)?.value ?? 0;
  }
  protected sampleLines(values: readonly string[], state: { value: number }): string[] {
    return [`${this.name}${labelText(this.labelNames, values)} ${formatValue(state.value)}`];
  }
}

/** A value that goes up and down. */
export class Gauge<L extends string = never> extends Metric<L, { value: number }> {
  readonly type = 'gauge';
  protected initial() {
    return { value: 0 };
  }
  set(...args: [L] extends [never] ? [value: number] : [labels: LabelValues<L>, value: number]): void {
    const [labels, value] = (this.labelNames.length === 0 ? [undefined, args[0]] : args) as [
      LabelValues<L> | undefined,
      number,
    ];
    this.stateOf(labels).value = value;
  }
  get(labels?: LabelValues<L>): number {
    return this.peek(labels)?.value ?? 0;
  }
  protected sampleLines(values: readonly string[], state: { value: number }): string[] {
    return [`${this.name}${labelText(this.labelNames, values)} ${formatValue(state.value)}`];
  }
}

interface HistogramState {
  /** Observations per bucket (not cumulative; rendering accumulates). */
  counts: number[];
  sum: number;
  count: number;
}

/** Observations counted into buckets, with their sum and count. */
export class Histogram<L extends string = never> extends Metric<L, HistogramState> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];

  constructor(options: HistogramOptions<L>) {
    super(options, ['le']);
    const b = options.buckets;
    if (b.length === 0 || b.some((x, i) => !Number.isFinite(x) || (i > 0 && x <= b[i - 1]!)))
      throw new Error(`histogram ${options.name}: buckets must be finite and ascending`);
    this.buckets = [...b];
  }
  protected initial(): HistogramState {
    return { counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
  }
  observe(...args: [L] extends [never] ? [value: number] : [labels: LabelValues<L>, value: number]): void {
    const [labels, value] = (this.labelNames.length === 0 ? [undefined, args[0]] : args) as [
      LabelValues<L> | undefined,
      number,
    ];
    if (Number.isNaN(value)) return;
    const state = this.stateOf(labels);
    let i = this.buckets.findIndex((upper) => value <= upper);
    if (i < 0) i = this.buckets.length;
    state.counts[i]! += 1;
    state.sum += value;
    state.count += 1;
  }
  protected sampleLines(values: readonly string[], state: HistogramState): string[] {
    const lines: string[] = [];
    let cumulative = 0;
    const bounds = [...this.buckets.map(formatValue), '+Inf'];
    bounds.forEach((le, i) => {
      cumulative += state.counts[i]!;
      lines.push(`${this.name}_bucket${labelText(this.labelNames, values, ['le', le])} ${cumulative}`);
    });
    const labels = labelText(this.labelNames, values);
    lines.push(`${this.name}_sum${labels} ${formatValue(state.sum)}`);
    lines.push(`${this.name}_count${labels} ${state.count}`);
    return lines;
  }
}

type AnyMetric = Counter<string> | Gauge<string> | Histogram<string>;

/** Metrics of one process, rendered together; collectors refresh gauges just before a scrape. */
export class Registry {
  private readonly metrics = new Map<string, AnyMetric>();
  private readonly collectors: (() => Promise<void> | void)[] = [];

  private add<M extends AnyMetric>(metric: M): M {
    if (this.metrics.has(metric.name)) throw new Error(`metric ${metric.name} is registered twice`);
    this.metrics.set(metric.name, metric);
    return metric;
  }
  counter<L extends string = never>(options: MetricOptions<L>): Counter<L> {
    return this.add(new Counter<L>(options));
  }
  gauge<L extends string = never>(options: MetricOptions<L>): Gauge<L> {
    return this.add(new Gauge<L>(options));
  }
  histogram<L extends string = never>(options: HistogramOptions<L>): Histogram<L> {
    return this.add(new Histogram<L>(options));
  }
  /** Runs `collect` before each scrape; one that throws leaves its gauges as they were. */
  onCollect(collect: () => Promise<void> | void): () => void {
    this.collectors.push(collect);
    return () => {
      const i = this.collectors.indexOf(collect);
      if (i >= 0) this.collectors.splice(i, 1);
    };
  }
  /** Every metric in the text format, after the collectors ran. */
  async scrape(): Promise<string> {
    await Promise.allSettled(this.collectors.map(async (c) => c()));
    return this.render();
  }
  /** Every metric in the text format, as recorded so far. */
  render(): string {
    return [...this.metrics.values()].map((m) => m.render()).join('');
  }
  /** Forgets every series of every metric (tests). */
  reset(): void {
    for (const m of this.metrics.values()) m.reset();
  }
}
