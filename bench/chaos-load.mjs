// The load of bench/chaos.sh: mixed requests (bench/load.mjs) from WORKERS concurrent loops,
// round-robin over the nodes, for DURATION_S seconds after its setup; the epoch ms it started
// at goes to `out.start`. One JSON line per request goes to the output file:
// {t, kind, node, status[, user, openid]}.
//
//   NODES=http://a,http://b EMU=http://emu APPID=... SAMPLE_APPID=... SAMPLE_KEY=...
//   DURATION_S=60 node bench/chaos-load.mjs out.jsonl

import { appendFileSync, writeFileSync } from 'node:fs';
import { prepareFromEnv } from './load.mjs';

const out = process.argv[2];
const env = process.env;
const load = await prepareFromEnv(200000);
writeFileSync(out, '');
const START = Date.now();
const DEADLINE = START + Number(env.DURATION_S || 60) * 1000;
writeFileSync(out + '.start', String(START));

const lines = [];
const flush = () => {
  if (lines.length) appendFileSync(out, lines.splice(0).join('\n') + '\n');
};
const timer = setInterval(flush, 1000);
await Promise.all(
  Array.from({ length: Number(env.WORKERS || 16) }, async () => {
    while (Date.now() < DEADLINE) {
      const { kind, node, status, body } = await load.request();
      const line = { t: Date.now(), kind, node, status };
      if (kind === 'first login' && status === 200) {
        line.user = body.user.id;
        line.openid = body.user.identities[0].openid;
      }
      lines.push(JSON.stringify(line));
    }
  }),
);
clearInterval(timer);
flush();
