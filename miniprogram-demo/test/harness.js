// Runs the demo's own app.js, pages and utils/wxlogin.js in Node: `App`, `Page`, `getApp` and a
// `wx` object are provided here, where wx.request makes real HTTP calls to a running
// `wxlogin demo` and wx.login gets a real code from its emulated WeChat.

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const DEMO = path.join(__dirname, '..');
const APPID = 'wx1000000000000001';

/** Starts `wxlogin demo` on free ports with a fresh SQLite file. */
function startDemo(args = []) {
  const bin = process.env.WXLOGIN_BIN || path.join(DEMO, '..', 'target', 'debug', 'wxlogin');
  const db = path.join(os.tmpdir(), `wxlogin-mp-${process.pid}-${Date.now()}.db`);
  const child = spawn(
    bin,
    ['demo', '--listen', '127.0.0.1:0', '--emulator-listen', '127.0.0.1:0', '--database-url', `sqlite://${db}?mode=rwc`, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('wxlogin demo did not start:\n' + out)), 20000);
    child.on('exit', (code) => reject(new Error(`wxlogin demo exited (${code}):\n${out}`)));
    const seen = (chunk) => {
      out += chunk;
      const server = /API and Swagger UI:\s+(http:\/\/\S+)\/docs/.exec(out);
      const emulator = /WeChat emulator:\s+(http:\/\/\S+)\/__emulator/.exec(out);
      if (server && emulator) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        const operator = /operator console:\s+\S+\s+\(username (\S+), password (\S+)\)/.exec(out);
        resolve({
          server: server[1],
          emulator: emulator[1],
          operator: operator && { username: operator[1], password: operator[2] },
          stop() {
            child.kill();
            for (const f of [db, db + '-wal', db + '-shm']) fs.rmSync(f, { force: true });
          },
        });
      }
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', seen);
  });
}

async function post(url, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = 'Bearer ' + token;
  const r = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

/**
 * The business's own API in the tests: `GET /orders` answers the caller's orders, the caller
 * known from an access token it verifies offline with Node's own crypto (ES256 against the JWK
 * Set wxlogin publishes; issuer, audience and expiry checked). `refuse` answers 401 to that many
 * requests first, as an API would to a token it no longer accepts.
 */
async function startBusinessApi(demo, { refuse = 0 } = {}) {
  const jwks = await (await fetch(demo.server + '/.well-known/jwks.json')).json();
  const { issuer } = await (await fetch(demo.server + '/.well-known/openid-configuration')).json();
  const verify = (token) => {
    const [h, p, s] = token.split('.');
    if (!s) return null;
    const header = JSON.parse(Buffer.from(h, 'base64url'));
    const jwk = jwks.keys.find((k) => k.kid === header.kid);
    if (header.alg !== 'ES256' || header.typ !== 'at+jwt' || !jwk) return null;
    const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
    const signed = Buffer.from(`${h}.${p}`);
    if (!crypto.verify('sha256', signed, { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'))) return null;
    const claims = JSON.parse(Buffer.from(p, 'base64url'));
    const fresh = claims.exp * 1000 > Date.now();
    return claims.iss === issuer && claims.aud === issuer && fresh ? claims : null;
  };
  const seen = [];
  const server = http.createServer((req, res) => {
    const token = (req.headers.authorization || '').replace(/^Bearer /, '');
    seen.push(token);
    const claims = verify(token);
    if (!claims || refuse-- > 0) {
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ user: claims.sub, orders: [{ id: 1, item: 'oolong tea' }] }));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, seen, close: () => server.close() };
}

/** A phone with WeChat on it, signed in to WeChat as test user `user`. */
class Phone {
  constructor(demo, user) {
    this.demo = demo;
    this.user = user;
    this.storage = new Map();
    /** What wx.checkSession answers: false once WeChat's session_key changed under the client. */
    this.sessionValid = true;
    this.requests = [];
    /** The headers of each request, in the order of `requests`. */
    this.headers = [];
    /** Paths whose next answer is lost on the way back (the server did answer). */
    this.loseNextAnswerOf = new Set();
    this.navigations = [];
    this.toasts = [];
  }

  /** The `wx` object the demo's code calls. */
  wx() {
    const phone = this;
    return {
      request({ url, method = 'GET', data, header = {}, success, fail }) {
        const path = url.replace(phone.demo.server, '');
        phone.requests.push(`${method} ${path}`);
        phone.headers.push(header);
        const init = { method, headers: header };
        if (data !== undefined && method !== 'GET') init.body = JSON.stringify(data);
        fetch(url, init)
          .then(async (r) => {
            const text = await r.text();
            let body = text;
            try {
              body = JSON.parse(text);
            } catch (_) {}
            if (phone.loseNextAnswerOf.delete(path)) return fail({ errMsg: 'request:fail timeout' });
            success({ statusCode: r.status, data: body, header: Object.fromEntries(r.headers) });
          })
          .catch((e) => fail({ errMsg: 'request:fail ' + e.message }));
      },
      login({ success, fail }) {
        post(phone.demo.emulator + '/__emulator/login', { appid: APPID, user: phone.user })
          .then((r) => {
            phone.sessionValid = true;
            success({ code: r.body.code, errMsg: 'login:ok' });
          })
          .catch((e) => fail({ errMsg: 'login:fail ' + e.message }));
      },
      checkSession({ success, fail }) {
        setImmediate(() => (phone.sessionValid ? success({ errMsg: 'checkSession:ok' }) : fail({ errMsg: 'checkSession:fail' })));
      },
      getRandomValues({ length, success }) {
        setImmediate(() => success({ randomValues: crypto.getRandomValues(new Uint8Array(length)).buffer }));
      },
      getStorageSync: (k) => (phone.storage.has(k) ? phone.storage.get(k) : ''),
      setStorageSync: (k, v) => phone.storage.set(k, v),
      removeStorageSync: (k) => phone.storage.delete(k),
      showToast: (o) => phone.toasts.push(o.title),
      navigateTo: (o) => phone.navigations.push(o.url),
      redirectTo: (o) => phone.navigations.push(o.url),
      reLaunch: (o) => phone.navigations.push(o.url),
    };
  }

  /** Launches the mini program on this phone: a fresh load of the demo's code. */
  launch() {
    for (const k of Object.keys(require.cache)) {
      if (k.startsWith(DEMO) && !k.startsWith(__dirname)) delete require.cache[k];
    }
    global.wx = this.wx();
    const config = require(path.join(DEMO, 'config.js'));
    config.baseUrl = this.demo.server;
    if (this.demo.api) config.apiBaseUrl = this.demo.api;
    let def;
    global.App = (d) => (def = d);
    require(path.join(DEMO, 'app.js'));
    const app = Object.assign({}, def, { globalData: structuredClone(def.globalData) });
    global.getApp = () => app;
    app.onLaunch();
    this.app = app;
    return app;
  }

  /** Opens a page of the demo: its definition, with `data` and `setData`. */
  open(name) {
    let def;
    global.Page = (d) => (def = d);
    require(path.join(DEMO, 'pages', name, name + '.js'));
    return Object.assign({}, def, {
      data: structuredClone(def.data),
      setData(patch) {
        Object.assign(this.data, patch);
      },
    });
  }

  token() {
    return this.storage.get('wxlogin.token');
  }
}

module.exports = { startDemo, startBusinessApi, Phone, post, APPID, DEMO };
