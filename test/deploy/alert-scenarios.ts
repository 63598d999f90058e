/**
 * Scenarios for deploy/prometheus/alerts.yml in `promtool test rules` form: what each alert is for
 * (it fires) and what it must not page on (a healthy idle cluster, one failure, one burst after a
 * pause, a planned drain, little traffic). Series are sampled every 15 s, like the scrape config.
 */

interface Series {
  readonly series: string;
  /** promtool's expanding notation: `a+bxN` is N+1 samples from a, step b; `stale` ends the series. */
  readonly values: string;
}
interface Expected {
  readonly eval_time: string;
  readonly alertname: string;
  readonly exp_alerts: readonly { readonly exp_labels: Readonly<Record<string, string>> }[];
}
export interface AlertScenario {
  readonly name: string;
  readonly interval: string;
  readonly input_series: readonly Series[];
  readonly alert_rule_test: readonly Expected[];
}

const at = (instance: string, extra = ''): string => `instance="${instance}", job="iot"${extra}`;
const quiet = (eval_time: string, alertname: string): Expected => ({ eval_time, alertname, exp_alerts: [] });

export const ALERT_SCENARIOS: readonly AlertScenario[] = [
  {
    name: 'a node dies and its target goes with it: the ring it left says so',
    interval: '15s',
    input_series: [
      { series: `up{${at('n1')}}`, values: '1x80' },
      { series: `up{${at('n2')}}`, values: '1x80' },
      { series: `up{${at('n3')}}`, values: '1x20 stale' },
      { series: `iot_cluster_ring_nodes{${at('n1', ', state="active"')}}`, values: '3x20 2x60' },
      { series: `iot_cluster_ring_nodes{${at('n2', ', state="active"')}}`, values: '3x20 2x60' },
      { series: `iot_cluster_ring_nodes{${at('n3', ', state="active"')}}`, values: '3x20 stale' },
      { series: `iot_cluster_ring_nodes{${at('n1', ', state="draining"')}}`, values: '0x80' },
    ],
    alert_rule_test: [
      quiet('9m', 'IotRingLostNode'),
      { eval_time: '12m', alertname: 'IotRingLostNode', exp_alerts: [{ exp_labels: { severity: 'warning' } }] },
      quiet('12m', 'IotRingMissingNodes'),
      quiet('12m', 'IotTargetDown'),
    ],
  },
  {
    name: 'a node drains out on purpose: no loss',
    interval: '15s',
    input_series: [
      { series: `up{${at('n1')}}`, values: '1x80' },
      { series: `up{${at('n2')}}`, values: '1x80' },
      { series: `iot_cluster_ring_nodes{${at('n1', ', state="active"')}}`, values: '3x18 2x62' },
      { series: `iot_cluster_ring_nodes{${at('n1', ', state="draining"')}}`, values: '0x18 1x1 0x60' },
    ],
    alert_rule_test: [quiet('12m', 'IotRingLostNode'), quiet('12m', 'IotRingMissingNodes')],
  },
  {
    name: 'a live node out of the ring',
    interval: '15s',
    input_series: [
      ...['n1', 'n2', 'n3'].map((n) => ({ series: `up{${at(n)}}`, values: '1x40' })),
      ...['n1', 'n2', 'n3'].map((n) => ({ series: `iot_cluster_ring_nodes{${at(n, ', state="active"')}}`, values: '2x40' })),
      { series: `iot_cluster_in_ring{${at('n1')}}`, values: '1x40' },
      { series: `iot_cluster_in_ring{${at('n3')}}`, values: '0x40' },
    ],
    alert_rule_test: [
      { eval_time: '6m', alertname: 'IotRingMissingNodes', exp_alerts: [{ exp_labels: { severity: 'warning' } }] },
      {
        eval_time: '6m',
        alertname: 'IotNodeMissingFromRing',
        exp_alerts: [{ exp_labels: { instance: 'n3', job: 'iot', severity: 'warning' } }],
      },
      quiet('6m', 'IotRingLostNode'),
    ],
  },
  {
    name: 'no node up',
    interval: '15s',
    input_series: [{ series: `up{${at('n1')}}`, values: '0x20' }],
    alert_rule_test: [
      quiet('1m', 'IotNoNodeUp'),
      { eval_time: '3m', alertname: 'IotNoNodeUp', exp_alerts: [{ exp_labels: { severity: 'critical' } }] },
    ],
  },
  {
    name: 'a breaker left open on an idle cluster is quiet; one that refuses traffic fires',
    interval: '15s',
    input_series: [
      { series: `iot_peer_breaker_state{${at('n1', ', peer="n2"')}}`, values: '2x40' },
      { series: `iot_peer_asks_total{${at('n1', ', peer="n2", outcome="rejected"')}}`, values: '3x40' },
      { series: `iot_peer_breaker_state{${at('n2', ', peer="n3"')}}`, values: '2x40' },
      { series: `iot_peer_sends_total{${at('n2', ', peer="n3", kind="tell", outcome="rejected"')}}`, values: '0+5x40' },
    ],
    alert_rule_test: [
      {
        eval_time: '5m',
        alertname: 'IotPeerBreakerOpen',
        exp_alerts: [{ exp_labels: { instance: 'n2', peer: 'n3', severity: 'warning' } }],
      },
    ],
  },
  {
    name: 'one failed write is quiet, a tenth fails, nothing written',
    interval: '15s',
    input_series: [
      { series: `iot_persist_write_failures_total{${at('n1')}}`, values: '0x20 1x60' },
      { series: `iot_persist_seconds_count{${at('n1')}}`, values: '0+250x80' },
      { series: `iot_persist_write_failures_total{${at('n2')}}`, values: '0+30x80' },
      { series: `iot_persist_seconds_count{${at('n2')}}`, values: '0+250x80' },
      { series: `iot_persist_write_failures_total{${at('n3')}}`, values: '0+10x80' },
      { series: `iot_persist_seconds_count{${at('n3')}}`, values: '100x80' },
    ],
    alert_rule_test: [
      {
        eval_time: '6m',
        alertname: 'IotPersistFailures',
        exp_alerts: [{ exp_labels: { instance: 'n2', severity: 'warning' } }, { exp_labels: { instance: 'n3', severity: 'warning' } }],
      },
      { eval_time: '6m', alertname: 'IotPersistStalled', exp_alerts: [{ exp_labels: { instance: 'n3', severity: 'critical' } }] },
    ],
  },
  {
    name: 'one burst of fence rejections after a pause is quiet, three episodes fire',
    interval: '15s',
    input_series: [
      { series: `iot_persist_fence_rejections_total{${at('n1')}}`, values: '0x20 40x63' },
      { series: `iot_persist_fence_rejections_total{${at('n2')}}`, values: '0x8 10x31 20x31 30x12' },
    ],
    alert_rule_test: [
      quiet('6m', 'IotFenceRejections'),
      quiet('16m', 'IotFenceRejections'),
      { eval_time: '20m', alertname: 'IotFenceRejections', exp_alerts: [{ exp_labels: { instance: 'n2', severity: 'warning' } }] },
    ],
  },
  {
    name: 'a handoff pages when it is 3 minutes old',
    interval: '15s',
    input_series: [{ series: `iot_cluster_handoff_oldest_seconds{${at('n1')}}`, values: '0+15x40' }],
    alert_rule_test: [
      quiet('3m', 'IotHandoffStuck'),
      {
        eval_time: '3m30s',
        alertname: 'IotHandoffStuck',
        exp_alerts: [{ exp_labels: { instance: 'n1', job: 'iot', severity: 'critical' } }],
      },
    ],
  },
  {
    name: 'slow acks alert on a node with traffic, not on one acking a report now and then',
    interval: '15s',
    input_series: [
      ...(['n1', 'n2'] as const).flatMap((n) => {
        const step = n === 'n1' ? 7 : 60; // about 0.5/s on n1, 4/s on n2, all between 0.1 and 1 s
        return [
          { series: `iot_hub_ack_latency_seconds_bucket{${at(n, ', le="0.1"')}}`, values: '0x80' },
          { series: `iot_hub_ack_latency_seconds_bucket{${at(n, ', le="1"')}}`, values: `0+${step}x80` },
          { series: `iot_hub_ack_latency_seconds_bucket{${at(n, ', le="+Inf"')}}`, values: `0+${step}x80` },
          { series: `iot_hub_ack_latency_seconds_count{${at(n)}}`, values: `0+${step}x80` },
        ];
      }),
    ],
    alert_rule_test: [
      { eval_time: '16m', alertname: 'IotHubAckLatencyHigh', exp_alerts: [{ exp_labels: { instance: 'n2', severity: 'warning' } }] },
    ],
  },
  {
    name: 'a self-fence warns for 15 minutes; a node that never fenced is quiet',
    interval: '15s',
    input_series: [
      { series: `iot_cluster_self_fences_total{${at('n1')}}`, values: '0x20 1x100' },
      { series: `iot_cluster_self_fences_total{${at('n2')}}`, values: '0x120' },
    ],
    alert_rule_test: [
      quiet('4m', 'IotNodeSelfFenced'),
      {
        eval_time: '6m',
        alertname: 'IotNodeSelfFenced',
        exp_alerts: [{ exp_labels: { instance: 'n1', job: 'iot', severity: 'warning' } }],
      },
      quiet('25m', 'IotNodeSelfFenced'),
    ],
  },
  {
    name: 'rate limits per node for 5 minutes warn; a Redis blip of a minute is quiet',
    interval: '15s',
    input_series: [
      { series: `iot_http_rate_limit_fallback_active{${at('n1')}}`, values: '0x4 1x60' },
      { series: `iot_http_rate_limit_fallback_active{${at('n2')}}`, values: '0x4 1x4 0x4 1x4 0x4 1x4 0x40' },
    ],
    alert_rule_test: [
      quiet('4m', 'IotRateLimitsNotShared'),
      {
        eval_time: '7m',
        alertname: 'IotRateLimitsNotShared',
        exp_alerts: [{ exp_labels: { instance: 'n1', job: 'iot', severity: 'warning' } }],
      },
    ],
  },
  {
    name: 'replica waits: a few short ones are quiet, a tenth refused warns, none acked pages',
    interval: '15s',
    input_series: [
      // n1: 1 window in 200 fails (a replica slow now and then); n2: 1 in 10; n3: every window.
      { series: `iot_redis_replica_wait_windows_total{${at('n1')}}`, values: '0+200x80' },
      { series: `iot_redis_replica_wait_failures_total{${at('n1', ', reason="short"')}}`, values: '0+1x80' },
      { series: `iot_redis_replica_wait_windows_total{${at('n2')}}`, values: '0+200x80' },
      { series: `iot_redis_replica_wait_failures_total{${at('n2', ', reason="short"')}}`, values: '0+20x80' },
      { series: `iot_redis_replica_wait_windows_total{${at('n3')}}`, values: '0+50x80' },
      { series: `iot_redis_replica_wait_failures_total{${at('n3', ', reason="unknown"')}}`, values: '0+50x80' },
    ],
    alert_rule_test: [
      {
        eval_time: '12m',
        alertname: 'IotReplicaWaitFailures',
        exp_alerts: [{ exp_labels: { instance: 'n2', severity: 'warning' } }, { exp_labels: { instance: 'n3', severity: 'warning' } }],
      },
      { eval_time: '12m', alertname: 'IotReplicaWaitStalled', exp_alerts: [{ exp_labels: { instance: 'n3', severity: 'critical' } }] },
      quiet('1m', 'IotReplicaWaitStalled'), // pending: it pages after 2 minutes
    ],
  },
];
