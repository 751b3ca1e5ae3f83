// Mixed load against wxlogin nodes, shared by bench/chaos-load.mjs and bench/soak-load.mjs:
// first and returning logins, /me, decrypt of WeChat's sample, and the phone button, sent
// round-robin to the nodes. `prepare()` signs in the users the load needs and mints codes (and
// mints them again as they run out or near their expiry);
// its `request()` sends one request of a random workload and says how it went.

const SAMPLE = {
  encryptedData: 'CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==',
  iv: 'r7BXXKkLb8qrSNn05n0qiA==',
};

async function post(url, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = 'Bearer ' + token;
  const r = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(15000) });
  return { status: r.status, body: await r.json().catch(() => null) };
}

/** `prepare` with the nodes, emulator and apps the bench scripts give in the environment. */
export function prepareFromEnv(count) {
  const env = process.env;
  return prepare({
    nodes: env.NODES.split(','),
    emu: env.EMU,
    appid: env.APPID,
    sampleAppid: env.SAMPLE_APPID,
    sampleKey: env.SAMPLE_KEY,
    count,
  });
}

/**
 * Signs in what the load needs (through the first node). Codes are minted `count` at a time,
 * and again before the emulator's expire (five minutes), so that a load runs as long as it
 * likes.
 */
export async function prepare({ nodes, emu, appid, sampleAppid, sampleKey, count }) {
  const run = Math.random().toString(36).slice(2, 8);
  const codes = async (kind, userPrefix, userCount, n) => {
    const all = [];
    for (let left = n; left > 0; left -= 1000000) {
      const r = await post(emu + '/__emulator/codes', { appid, kind, userPrefix, userCount, count: Math.min(left, 1000000) });
      for (const code of r.body.codes) all.push(code);
    }
    return all;
  };
  /** Codes of one kind, minted again when used up or four minutes old. */
  const pool = (kind, prefix, users, size) => {
    let minted = 0;
    let round = 0;
    let stock = [];
    let filling = null;
    return async () => {
      if (!stock.length || Date.now() - minted > 240000) {
        filling ||= codes(kind, prefix(round++), users ?? size, size).then((c) => {
          stock = c;
          minted = Date.now();
          filling = null;
        });
        await filling;
      }
      return stock.pop();
    };
  };
  const returning = [];
  for (const code of await codes('login', `ret-${run}-`, 100, 100)) {
    const r = await post(nodes[0] + '/api/v1/auth/login', { code, appid });
    if (r.status !== 200) throw new Error('setup login: ' + r.status);
    returning.push(r.body.token);
  }
  // `/codes` names its users prefix + index: the phone codes below are user `phone-RUN0`'s.
  const phoneCode = (await post(emu + '/__emulator/login', { appid, user: `phone-${run}0` })).body.code;
  const phoneToken = (await post(nodes[0] + '/api/v1/auth/login', { code: phoneCode, appid })).body.token;
  const sampleCode = (await post(emu + '/__emulator/login', { appid: sampleAppid, user: `band-${run}`, sessionKey: sampleKey })).body.code;
  const sampleToken = (await post(nodes[0] + '/api/v1/auth/login', { code: sampleCode, appid: sampleAppid })).body.token;
  // New users every round; the same hundred returning users; one phone.
  const fresh = pool('login', (r) => `new-${run}-${r}-`, null, count);
  const again = pool('login', () => `ret-${run}-`, 100, count);
  const phones = pool('phone', () => `phone-${run}`, 1, Math.ceil(count / 2));
  await Promise.all([fresh(), again(), phones()]);

  let rr = 0;
  /** One request of a random workload: {kind, node, status, ms, body}. Status 0: no answer. */
  async function request() {
    const node = nodes[rr++ % nodes.length];
    const pick = Math.random();
    let kind;
    let send;
    if (pick < 0.2) {
      kind = 'first login';
      send = async () => post(node + '/api/v1/auth/login', { code: await fresh(), appid });
    } else if (pick < 0.4) {
      kind = 'returning login';
      send = async () => post(node + '/api/v1/auth/login', { code: await again(), appid });
    } else if (pick < 0.7) {
      kind = '/me';
      const token = returning[Math.floor(Math.random() * returning.length)];
      send = async () => {
        const r = await fetch(node + '/api/v1/me', { headers: { authorization: 'Bearer ' + token }, signal: AbortSignal.timeout(15000) });
        return { status: r.status, body: await r.json().catch(() => null) };
      };
    } else if (pick < 0.9) {
      kind = 'decrypt';
      send = () => post(node + '/api/v1/wechat/decrypt', SAMPLE, sampleToken);
    } else {
      kind = 'phone';
      send = async () => post(node + '/api/v1/me/phone', { code: await phones() }, phoneToken);
    }
    const started = performance.now();
    let status = 0;
    let body = null;
    try {
      ({ status, body } = await send());
    } catch (_) {
      status = 0;
    }
    return { kind, node, status, ms: performance.now() - started, body };
  }
  return { request };
}
