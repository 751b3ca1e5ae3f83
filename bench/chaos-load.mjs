// The load of bench/chaos.sh: mixed requests (first and returning logins, /me, decrypt, phone)
// from WORKERS concurrent loops, round-robin over the nodes, for DURATION_S seconds after its
// setup; the epoch ms it started at goes to `out.start`. One JSON line per request goes to
// the output file: {t, kind, node, status[, user, openid]}.
//
//   NODES=http://a,http://b EMU=http://emu APPID=... SAMPLE_APPID=... SAMPLE_KEY=...
//   DURATION_S=60 node bench/chaos-load.mjs out.jsonl

import { appendFileSync, writeFileSync } from 'node:fs';

const out = process.argv[2];
const NODES = process.env.NODES.split(',');
const { EMU, APPID, SAMPLE_APPID, SAMPLE_KEY } = process.env;
const WORKERS = Number(process.env.WORKERS || 16);
const RUN = Math.random().toString(36).slice(2, 8);

const post = async (url, body, token) => {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = 'Bearer ' + token;
  const r = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(15000) });
  return { status: r.status, body: await r.json().catch(() => null) };
};
const codes = async (kind, userPrefix, userCount, count) =>
  (await post(EMU + '/__emulator/codes', { appid: APPID, kind, userPrefix, userCount, count })).body.codes;

// Before the clock starts: returning users, the phone's user, the sample's session.
const returning = [];
for (const code of await codes('login', `ret-${RUN}-`, 100, 100)) {
  const r = await post(NODES[0] + '/api/v1/auth/login', { code, appid: APPID });
  if (r.status !== 200) throw new Error('setup login: ' + r.status);
  returning.push(r.body.token);
}
// `/codes` names its users prefix + index: the phone codes below are user `phone-RUN0`'s.
const phoneLogin = await post(EMU + '/__emulator/login', { appid: APPID, user: `phone-${RUN}0` });
const phoneToken = (await post(NODES[0] + '/api/v1/auth/login', { code: phoneLogin.body.code, appid: APPID })).body.token;
const sampleCode = (await post(EMU + '/__emulator/login', { appid: SAMPLE_APPID, user: `band-${RUN}`, sessionKey: SAMPLE_KEY })).body.code;
const sampleToken = (await post(NODES[0] + '/api/v1/auth/login', { code: sampleCode, appid: SAMPLE_APPID })).body.token;
const SAMPLE = {
  encryptedData: 'CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==',
  iv: 'r7BXXKkLb8qrSNn05n0qiA==',
};
const fresh = await codes('login', `new-${RUN}-`, 200000, 200000);
const again = await codes('login', `ret-${RUN}-`, 100, 200000);
const phones = await codes('phone', `phone-${RUN}`, 1, 100000);
writeFileSync(out, '');
const START = Date.now();
const DEADLINE = START + Number(process.env.DURATION_S || 60) * 1000;
writeFileSync(out + '.start', String(START));

let rr = 0;
const lines = [];
const flush = () => {
  if (lines.length) appendFileSync(out, lines.splice(0).join('\n') + '\n');
};
const timer = setInterval(flush, 1000);

async function one() {
  const node = NODES[rr++ % NODES.length];
  const pick = Math.random();
  let kind;
  let request;
  if (pick < 0.2) {
    kind = 'first login';
    request = () => post(node + '/api/v1/auth/login', { code: fresh.pop(), appid: APPID });
  } else if (pick < 0.4) {
    kind = 'returning login';
    request = () => post(node + '/api/v1/auth/login', { code: again.pop(), appid: APPID });
  } else if (pick < 0.7) {
    kind = '/me';
    const token = returning[Math.floor(Math.random() * returning.length)];
    request = async () => {
      const r = await fetch(node + '/api/v1/me', { headers: { authorization: 'Bearer ' + token }, signal: AbortSignal.timeout(15000) });
      return { status: r.status, body: await r.json().catch(() => null) };
    };
  } else if (pick < 0.9) {
    kind = 'decrypt';
    request = () => post(node + '/api/v1/wechat/decrypt', SAMPLE, sampleToken);
  } else {
    kind = 'phone';
    request = () => post(node + '/api/v1/me/phone', { code: phones.pop() }, phoneToken);
  }
  let status = 0;
  let body = null;
  try {
    ({ status, body } = await request());
  } catch (_) {
    status = 0; // no answer: the connection was refused or cut
  }
  const line = { t: Date.now(), kind, node, status };
  if (kind === 'first login' && status === 200) {
    line.user = body.user.id;
    line.openid = body.user.identities[0].openid;
  }
  lines.push(JSON.stringify(line));
}

await Promise.all(
  Array.from({ length: WORKERS }, async () => {
    while (Date.now() < DEADLINE) await one();
  }),
);
clearInterval(timer);
flush();
