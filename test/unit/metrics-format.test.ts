/**
 * The Prometheus registry's text exposition format (0.0.4), the parsing of metrics addresses and
 * the endpoint's refusal of a taken port.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { escapeHelp, escapeLabelValue, formatValue, Registry } from '../../infra/metrics';
import {
  MetricsAddressError,
  parseMetricsAddress,
  startMetricsEndpoint,
} from '../../workers/metrics-endpoint';

describe('Prometheus text format', () => {
  test('counter and gauge: HELP and TYPE lines, labels in declared order, escaped values', () => {
    const r = new Registry();
    const c = r.counter<'stage' | 'outcome'>({
      name: 'x_total',
      help: 'a help with \\ and\nnewline "quoted"',
      labelNames: ['stage', 'outcome'],
    });
    c.inc({ outcome: 'reused', stage: 'a"b\\c\nd' }, 2);
    c.inc({ outcome: 'reused', stage: 'a"b\\c\nd' });
    const g = r.gauge({ name: 'y', help: 'plain' });
    g.set(-1.5);
    assert.equal(
      r.render(),
      [
        '# HELP x_total a help with \\\\ and\\nnewline "quoted"',
        '# TYPE x_total counter',
        'x_total{stage="a\\"b\\\\c\\nd",outcome="reused"} 3',
        '# HELP y plain',
        '# TYPE y gauge',
        'y -1.5',
        '',
      ].join('\n'),
    );
    assert.equal(c.get({ stage: 'a"b\\c\nd', outcome: 'reused' }), 3);
    assert.equal(c.get({ stage: 'other', outcome: 'reused' }), 0);
  });

  test('a metric without labels shows 0 before anything is recorded; one with labels shows no sample', () => {
    const r = new Registry();
    r.counter({ name: 'a_total', help: 'a' });
    r.counter<'k'>({ name: 'b_total', help: 'b', labelNames: ['k'] });
    assert.equal(
      r.render(),
      '# HELP a_total a\n# TYPE a_total counter\na_total 0\n# HELP b_total b\n# TYPE b_total counter\n',
    );
  });

  test('histogram buckets are cumulative, with +Inf, _sum and _count', () => {
    const r = new Registry();
    const h = r.histogram<'stage'>({
      name: 'h_seconds',
      help: 'h',
      labelNames: ['stage'],
      buckets: [0.5, 1, 2.5],
    });
    for (const v of [0.1, 0.5, 0.7, 3, 100]) h.observe({ stage: 'sft' }, v);
    assert.equal(
      r.render(),
      [
        '# HELP h_seconds h',
        '# TYPE h_seconds histogram',
        'h_seconds_bucket{stage="sft",le="0.5"} 2',
        'h_seconds_bucket{stage="sft",le="1"} 3',
        'h_seconds_bucket{stage="sft",le="2.5"} 3',
        'h_seconds_bucket{stage="sft",le="+Inf"} 5',
        'h_seconds_sum{stage="sft"} 104.3',
        'h_seconds_count{stage="sft"} 5',
        '',
      ].join('\n'),
    );
  });

  test('special values and escaping helpers', () => {
    assert.equal(formatValue(Infinity), '+Inf');
    assert.equal(formatValue(-Infinity), '-Inf');
    assert.equal(formatValue(NaN), 'NaN');
    assert.equal(formatValue(1e21), '1e+21');
    assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
    assert.equal(escapeHelp('a\\b"c\nd'), 'a\\\\b"c\\nd');
  });

  test('invalid names, labels, buckets and amounts are refused', () => {
    const r = new Registry();
    assert.throws(() => r.counter({ name: '1bad', help: '' }), /metric name/);
    assert.throws(() => r.counter<'__x'>({ name: 'ok', help: '', labelNames: ['__x'] }), /label name/);
    assert.throws(
      () => r.histogram<'le'>({ name: 'h', help: '', labelNames: ['le'], buckets: [1] }),
      /label name/,
    );
    assert.throws(() => r.histogram({ name: 'h2', help: '', buckets: [2, 1] }), /ascending/);
    const c = r.counter({ name: 'c_total', help: '' });
    assert.throws(() => c.inc(-1), /cannot add/);
    assert.throws(() => r.counter({ name: 'c_total', help: '' }), /twice/);
    const l = r.counter<'k'>({ name: 'l_total', help: '', labelNames: ['k'] });
    assert.throws(() => l.inc({} as { k: string }), /label k has no value/);
  });

  test('collectors run before a scrape; a failing one does not fail it', async () => {
    const r = new Registry();
    const g = r.gauge({ name: 'g', help: 'g' });
    r.onCollect(() => g.set(7));
    r.onCollect(() => {
      throw new Error('down');
    });
    assert.match(await r.scrape(), /^g 7$/m);
  });
});

describe('metrics address', () => {
  test('host:port forms are accepted', () => {
    assert.deepEqual(parseMetricsAddress('127.0.0.1:9464', '--metrics'), { host: '127.0.0.1', port: 9464 });
    assert.deepEqual(parseMetricsAddress('[::1]:0', '--metrics'), { host: '::1', port: 0 });
    assert.deepEqual(parseMetricsAddress('metrics.local:80', '--metrics'), {
      host: 'metrics.local',
      port: 80,
    });
  });

  test('malformed addresses name the setting', () => {
    for (const bad of [
      '9464',
      'localhost',
      ':9464',
      'host:99999',
      '::1:9464',
      '[zz]:1',
      'a b:1',
      'http://x:1',
    ])
      assert.throws(
        () => parseMetricsAddress(bad, 'workers.metricsAddress'),
        (err: unknown) =>
          err instanceof MetricsAddressError && err.message.startsWith('workers.metricsAddress '),
        bad,
      );
  });

  test('a port in use is refused naming the flag', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as net.AddressInfo;
    try {
      await assert.rejects(
        startMetricsEndpoint(`127.0.0.1:${port}`, '--metrics', { sdk: false }),
        new RegExp(`^MetricsAddressError: --metrics "127.0.0.1:${port}": the address is already in use`),
      );
    } finally {
      holder.close();
    }
  });

  test('the endpoint serves the registry at /metrics only', async () => {
    const endpoint = await startMetricsEndpoint('127.0.0.1:0', '--metrics', { sdk: false });
    try {
      const res = await fetch(endpoint.url);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
      const text = await res.text();
      assert.match(text, /^# TYPE dro_sdk_metrics_up gauge$/m);
      assert.match(text, /^dro_sdk_metrics_up 0$/m);
      assert.equal((await fetch(endpoint.url.replace('/metrics', '/other'))).status, 404);
    } finally {
      await endpoint.close();
    }
  });
});
