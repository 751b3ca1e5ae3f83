// The load of bench/soak.sh (bench/load.mjs's mix). MODE=max: a closed loop of 32 workers for
// DURATION_S seconds; prints the requests per second it reached. MODE=soak: an open loop at
// RATE requests per second for DURATION_S seconds; every minute prints one JSON line with the
// minute's requests, errors, p50 and p99, and the server's RSS, open file descriptors and
// Redis's used memory (SERVER_PID, REDIS_PORT). Overload is bench/overload.sh's.

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
