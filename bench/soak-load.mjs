// The load of bench/soak.sh (bench/load.mjs's mix). MODE=max: a closed loop of 32 workers for
// DURATION_S seconds; prints the requests per second it reached. MODE=soak: an open loop at
// RATE requests per second for DURATION_S seconds; every minute prints one JSON line with the
// minute's requests, errors, p50 and p99, and the server's RSS, open file descriptors and
// Redis's used memory (SERVER_PID, REDIS_PORT). MODE=overload: the same open loop (at RATE,
// twice the flat-out rate), while /healthz and /readyz are asked every 100 ms; prints one JSON
// line: the answers by status, their p99 and slowest, the health probes' p99 and slowest, and
// the server's RSS before and after.

import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { prepareFromEnv } from './load.mjs';

const env = process.env;
const duration = Number(env.DURATION_S || 60);
const rate = Number(env.RATE || 0);
// Four minutes of the busiest workload's codes at a time (max: the run's 15 s at any pace).
const load = await prepareFromEnv(env.MODE === 'max' ? 200000 : Math.ceil(rate * 240 * 0.25) + 1000);

if (env.MODE === 'max') {
  const deadline = Date.now() + duration * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (Date.now() < deadline) {
        await load.request();
        done += 1;
      }
    }),
  );
  console.log(Math.round(done / duration));
  process.exit(0);
}

const percentile = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : 0);
const sample = () => {
  const status = readFileSync(`/proc/${env.SERVER_PID}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024;
  const fds = readdirSync(`/proc/${env.SERVER_PID}/fd`).length;
  const info = execFileSync('redis-cli', ['-p', env.REDIS_PORT, 'info', 'memory'], { encoding: 'utf8' });
  const redis = Number(/used_memory:(\d+)/.exec(info)[1]) / 1024 / 1024;
  return { rss: +rss.toFixed(1), fds, redisMb: +redis.toFixed(2) };
};

if (env.MODE === 'overload') {
  const node = env.NODES.split(',')[0];
  const rssBefore = sample().rss;
  const statuses = {};
  const latencies = [];
  const probes = [];
  let inFlightNow = 0;
  const begin = Date.now();
  let issued = 0;
  const loop = setInterval(() => {
    const due = Math.floor(((Date.now() - begin) / 1000) * rate) - issued;
    for (let i = 0; i < due; i++) {
      issued += 1;
      if (inFlightNow >= 8192) {
        statuses.client_dropped = (statuses.client_dropped || 0) + 1;
        continue;
      }
      inFlightNow += 1;
      load.request().then(({ status, ms }) => {
        inFlightNow -= 1;
        statuses[status] = (statuses[status] || 0) + 1;
        latencies.push(ms);
      });
    }
  }, 5);
  const probe = setInterval(async () => {
    for (const path of ['/healthz', '/readyz']) {
      const t = performance.now();
      const ok = await fetch(node + path, { signal: AbortSignal.timeout(5000) }).then((r) => r.status, () => 0);
      probes.push({ ms: performance.now() - t, ok });
    }
  }, 100);
  await new Promise((r) => setTimeout(r, duration * 1000));
  clearInterval(loop);
  clearInterval(probe);
  await new Promise((r) => setTimeout(r, 2000));
  const sorted = latencies.sort((a, b) => a - b);
  const probeMs = probes.map((p) => p.ms).sort((a, b) => a - b);
  console.log(JSON.stringify({
    rate,
    statuses,
    p99: +percentile(sorted, 0.99).toFixed(1),
    slowest: +(sorted[sorted.length - 1] || 0).toFixed(1),
    healthP99: +percentile(probeMs, 0.99).toFixed(1),
    healthSlowest: +(probeMs[probeMs.length - 1] || 0).toFixed(1),
    healthNot200: probes.filter((p) => p.ok !== 200).length,
    rssBefore,
    rssAfter: sample().rss,
  }));
  process.exit(0);
}

let minute = { latencies: [], errors: 0, dropped: 0 };
let inFlight = 0;
const MAX_IN_FLIGHT = 4096;
const start = Date.now();
let sent = 0;
const tick = setInterval(() => {
  // Open loop: what is due by now is sent, whatever is still in flight.
  const due = Math.floor(((Date.now() - start) / 1000) * rate) - sent;
  for (let i = 0; i < due; i++) {
    sent += 1;
    if (inFlight >= MAX_IN_FLIGHT) {
      minute.dropped += 1;
      continue;
    }
    inFlight += 1;
    const bucket = minute;
    load.request().then(({ status, ms }) => {
      inFlight -= 1;
      bucket.latencies.push(ms);
      if (status !== 200) bucket.errors += 1;
    });
  }
}, 5);
for (let m = 1; m <= Math.floor(duration / 60); m++) {
  await new Promise((r) => setTimeout(r, start + m * 60000 - Date.now()));
  const done = minute;
  minute = { latencies: [], errors: 0, dropped: 0 };
  const sorted = done.latencies.sort((a, b) => a - b);
  console.log(JSON.stringify({
    minute: m,
    requests: sorted.length,
    errors: done.errors,
    dropped: done.dropped,
    p50: +percentile(sorted, 0.5).toFixed(1),
    p99: +percentile(sorted, 0.99).toFixed(1),
    ...sample(),
  }));
}
clearInterval(tick);
process.exit(0);
