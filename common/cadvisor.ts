// cAdvisor's container metrics as kubelet's /metrics/cadvisor exposes them (cAdvisor
// metrics/prometheus.go): names, help texts and base label keys. Facts shared by the CRI metrics
// rpcs (pod/stats/cadvisor.ts) and skiff's own /metrics (metrics/container-metrics.ts), so that
// both spell each metric the same way.

/** kubelet's label keys on every container series. */
export const CADVISOR_LABELS = ['container', 'id', 'image', 'name', 'namespace', 'pod'] as const;

export interface CadvisorMetric {
  readonly name: string;
  readonly help: string;
}

export const CADVISOR = {
  cpuUsage: { name: 'container_cpu_usage_seconds_total', help: 'Cumulative cpu time consumed in seconds.' },
  cpuUser: { name: 'container_cpu_user_seconds_total', help: 'Cumulative user cpu time consumed in seconds.' },
  cpuSystem: { name: 'container_cpu_system_seconds_total', help: 'Cumulative system cpu time consumed in seconds.' },
  cfsPeriods: { name: 'container_cpu_cfs_periods_total', help: 'Number of elapsed enforcement period intervals.' },
  cfsThrottled: { name: 'container_cpu_cfs_throttled_periods_total', help: 'Number of throttled period intervals.' },
  cfsThrottledSeconds: { name: 'container_cpu_cfs_throttled_seconds_total', help: 'Total time duration the container has been throttled.' },
  memUsage: { name: 'container_memory_usage_bytes', help: 'Current memory usage in bytes, including all memory regardless of when it was accessed' },
  memWorkingSet: { name: 'container_memory_working_set_bytes', help: 'Current working set in bytes.' },
  memRss: { name: 'container_memory_rss', help: 'Size of RSS in bytes.' },
  memCache: { name: 'container_memory_cache', help: 'Number of bytes of page cache memory.' },
  memFailures: { name: 'container_memory_failures_total', help: 'Cumulative count of memory allocation failures.' },
  memLimit: { name: 'container_spec_memory_limit_bytes', help: 'Memory limit for the container.' },
  processes: { name: 'container_processes', help: 'Number of processes running inside the container.' },
  fsUsage: { name: 'container_fs_usage_bytes', help: 'Number of bytes that are consumed by the container on this filesystem.' },
  fsInodes: { name: 'container_fs_inodes_total', help: 'Number of Inodes' },
  startTime: { name: 'container_start_time_seconds', help: 'Start time of the container since unix epoch in seconds.' },
  rxBytes: { name: 'container_network_receive_bytes_total', help: 'Cumulative count of bytes received' },
  rxPackets: { name: 'container_network_receive_packets_total', help: 'Cumulative count of packets received' },
  rxDropped: { name: 'container_network_receive_packets_dropped_total', help: 'Cumulative count of packets dropped while receiving' },
  rxErrors: { name: 'container_network_receive_errors_total', help: 'Cumulative count of errors encountered while receiving' },
  txBytes: { name: 'container_network_transmit_bytes_total', help: 'Cumulative count of bytes transmitted' },
  txPackets: { name: 'container_network_transmit_packets_total', help: 'Cumulative count of packets transmitted' },
  txDropped: { name: 'container_network_transmit_packets_dropped_total', help: 'Cumulative count of packets dropped while transmitting' },
  txErrors: { name: 'container_network_transmit_errors_total', help: 'Cumulative count of errors encountered while transmitting' },
} as const satisfies Record<string, CadvisorMetric>;
