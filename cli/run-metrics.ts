/**
 * `dro run --metrics`: the Prometheus endpoint of a run whose workers live in this process. It is
 * bound before the pre-flight checks, so a bad or taken address is reported before anything
 * connects; it never keeps the process alive (the run's end ends the command).
 */
import type { PipelineConfig } from '../config/schemas';
import { startMetricsEndpoint, type MetricsEndpoint } from '../workers/metrics-endpoint';

export async function startRunMetrics(
  flag: string | undefined,
  config: PipelineConfig,
  submit: boolean,
  out: (line: string) => void = (line) => console.log(line),
): Promise<MetricsEndpoint | undefined> {
  if (submit) {
    // The config's address is for processes with workers; the flag asks for something impossible.
    if (flag !== undefined)
      throw new Error('--metrics: not with --submit (no worker runs here); use `dro worker --metrics`');
    return undefined;
  }
  const address = flag ?? config.workers.metricsAddress;
  if (address === undefined) return undefined;
  const endpoint = await startMetricsEndpoint(
    address,
    flag !== undefined ? '--metrics' : 'workers.metricsAddress',
  );
  out(`Metrics:  ${endpoint.url}`);
  return endpoint;
}
