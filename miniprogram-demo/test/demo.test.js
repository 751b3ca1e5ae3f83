// The demo's own code, driven against a real `wxlogin demo`.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { startDemo, startBusinessApi, Phone, post, APPID, DEMO } = require('./harness.js');

test('every page of app.json exists with its four files, and every .js parses', () => {
  const app = JSON.parse(fs.readFileSync(path.join(DEMO, 'app.json'), 'utf8'));
  for (const page of app.pages) {
    for (const ext of ['js', 'wxml', 'json', 'wxss']) {
      assert.ok(fs.existsSync(path.join(DEMO, `${page}.${ext}`)), `${page}.${ext}`);
    }
    JSON.parse(fs.readFileSync(path.join(DEMO, `${page}.json`), 'utf8'));
  }
  const walk = (dir) =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.name === 'node_modules' ? [] : e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)],
    );
  for (const file of walk(DEMO).filter((f) => f.endsWith('.js'))) {
    new Function(fs.readFileSync(file, 'utf8')); // throws on a syntax error
  }
  const project = JSON.parse(fs.readFileSync(path.join(DEMO, 'project.config.json'), 'utf8'));
  assert.equal(project.appid, APPID, 'the appid that `wxlogin demo` configures');
});

test('mini program flows against wxlogin demo', async (t) => {
  const demo = await startDemo();
  t.after(() => demo.stop());

  await t.test('first launch creates a user and keeps only a token', async () => {
    const phone = new Phone(demo, 'mp-alice');
    const app = phone.launch();
    const session = await app.ready;
    assert.equal(session.isNewUser, true);
    assert.match(phone.token(), /^[0-9a-f-]{36}$/);
    const index = phone.open('index');
    await index.onShow();
    assert.equal(index.data.user.id, session.user.id);
    assert.equal(index.data.user.identities[0].appid, APPID);
    assert.deepEqual([...phone.storage.keys()], ['wxlogin.token']);
  });

  await t.test('a login whose answer is lost is retried with the same code and key', async () => {
    const calls = async () => (await (await fetch(demo.emulator + '/__emulator/calls')).json())['/sns/jscode2session'] || 0;
    const before = await calls();
    const phone = new Phone(demo, 'mp-lost');
    phone.loseNextAnswerOf.add('/api/v1/auth/login');
    const session = await phone.launch().ready;
    assert.equal(session.isNewUser, true);
    const logins = phone.requests.flatMap((r, i) => (r === 'POST /api/v1/auth/login' ? [phone.headers[i]] : []));
    assert.equal(logins.length, 2, phone.requests.join('\n'));
    assert.match(logins[0]['Idempotency-Key'], /^[0-9a-f]{32}$/);
    assert.equal(logins[1]['Idempotency-Key'], logins[0]['Idempotency-Key']);
    // The retry got the first answer: WeChat was asked once, and the token works.
    assert.equal((await calls()) - before, 1);
    const me = await fetch(demo.server + '/api/v1/me', { headers: { authorization: 'Bearer ' + phone.token() } });
    assert.equal((await me.json()).id, session.user.id);
  });

  await t.test('a second launch signs in silently with the stored token', async () => {
    const phone = new Phone(demo, 'mp-bob');
    await phone.launch().ready;
    const first = phone.token();
    const userId = phone.app.globalData.user.id;
    phone.requests.length = 0;
    await phone.launch().ready;
    assert.equal(phone.token(), first);
    assert.ok(!phone.requests.some((r) => r.includes('/auth/login')), phone.requests.join('\n'));
    const index = phone.open('index');
    await index.onShow();
    assert.equal(index.data.user.id, userId);
  });

  await t.test('a failed checkSession sends a fresh code to auth/refresh and keeps the token', async () => {
    const phone = new Phone(demo, 'mp-carol');
    await phone.launch().ready;
    const token = phone.token();
    phone.sessionValid = false;
    phone.requests.length = 0;
    await phone.launch().ready;
    assert.ok(phone.requests.includes('POST /api/v1/auth/refresh'), phone.requests.join('\n'));
    assert.equal(phone.token(), token);
    // The server now holds the key of the phone's latest wx.login: its open data decrypts.
    const data = await post(demo.emulator + '/__emulator/encrypt', {
      appid: APPID,
      user: 'mp-carol',
      data: { phoneNumber: '13500001111', purePhoneNumber: '13500001111', countryCode: '86' },
    });
    const page = phone.open('phone');
    await page.onGetPhoneNumber({ detail: { encryptedData: data.body.encryptedData, iv: data.body.iv } });
    assert.equal(page.data.error, '');
    assert.equal(page.data.phone.phoneNumber, '+8613500001111');
  });

  await t.test('the phone button sends the new-style code', async () => {
    const phone = new Phone(demo, 'mp-dave');
    await phone.launch().ready;
    const code = (await post(demo.emulator + '/__emulator/phone-code', { appid: APPID, user: 'mp-dave' })).body.code;
    const page = phone.open('phone');
    await page.onGetPhoneNumber({ detail: { code, errMsg: 'getPhoneNumber:ok' } });
    assert.equal(page.data.error, '');
    const wxUser = await (await fetch(`${demo.emulator}/__emulator/users/mp-dave`)).json();
    assert.equal(page.data.phone.purePhoneNumber, wxUser.purePhoneNumber);
    await page.onGetPhoneNumber({ detail: { errMsg: 'getPhoneNumber:fail user deny' } });
    assert.equal(page.data.error, 'No phone number was shared.');
  });

  await t.test('a request that gets 401 signs in again silently and is retried once', async () => {
    const phone = new Phone(demo, 'mp-erin');
    await phone.launch().ready;
    const old = phone.token();
    await post(demo.server + '/api/v1/auth/logout', {}, old); // revoked behind the app's back
    const profile = phone.open('profile');
    await profile.onLoad();
    assert.equal(profile.data.error, '');
    assert.ok(profile.data.user.id);
    assert.notEqual(phone.token(), old);
  });

  await t.test('profile saves a nickname, and sign-out ends the session', async () => {
    const phone = new Phone(demo, 'mp-frank');
    await phone.launch().ready;
    const profile = phone.open('profile');
    await profile.onLoad();
    profile.onNickname({ detail: { value: 'Frank' } });
    await profile.save();
    assert.equal(profile.data.user.nickname, 'Frank');
    const token = phone.token();
    await profile.signOut();
    assert.equal(phone.token(), undefined);
    assert.deepEqual(phone.navigations.slice(-1), ['/pages/index/index']);
    const r = await fetch(demo.server + '/api/v1/me', { headers: { authorization: 'Bearer ' + token } });
    assert.equal(r.status, 401);
  });

  await t.test('choosing to bind gives the account a username and password', async () => {
    const phone = new Phone(demo, 'mp-gina');
    await phone.launch().ready;
    const page = phone.open('bind');
    page.onLoad();
    assert.equal(page.data.hasTicket, false);
    page.onUsername({ detail: { value: 'gina' } });
    page.onPassword({ detail: { value: 'correct horse battery' } });
    await page.submit();
    assert.equal(page.data.error, '');
    assert.equal(phone.app.globalData.user.username, 'gina');
    const signIn = await post(demo.server + '/api/v1/auth/password', { username: 'gina', password: 'correct horse battery' });
    assert.equal(signIn.body.user.id, phone.app.globalData.user.id);
  });
});

test('require_binding: the app shows the binding page and binds with username and password', async (t) => {
  const demo = await startDemo(['--login-policy', 'require_binding']);
  t.after(() => demo.stop());
  const account = await post(demo.server + '/api/v1/accounts', { username: 'hana', password: 'correct horse battery' });
  assert.equal(account.status, 201);

  const phone = new Phone(demo, 'mp-hana');
  const app = phone.launch();
  assert.equal(await app.ready, null);
  assert.deepEqual(phone.navigations, ['/pages/bind/bind']);
  const page = phone.open('bind');
  page.onLoad();
  assert.equal(page.data.hasTicket, true);
  page.onUsername({ detail: { value: 'hana' } });
  page.onPassword({ detail: { value: 'wrong password' } });
  await page.submit();
  assert.equal(page.data.error, 'Wrong username or password.');
  page.onPassword({ detail: { value: 'correct horse battery' } });
  await page.submit();
  assert.equal(page.data.error, '');
  assert.equal(app.globalData.user.id, account.body.id);
  assert.equal(app.globalData.user.identities[0].appid, APPID);

  // The next launch signs in silently: this WeChat user is bound now.
  phone.storage.clear();
  const session = await phone.launch().ready;
  assert.equal(session.user.id, account.body.id);
});

test('the business API: wxlogin.request sends an access token it verifies, renewed after a 401', async (t) => {
  const demo = await startDemo();
  t.after(() => demo.stop());
  const api = await startBusinessApi(demo, { refuse: 1 });
  t.after(() => api.close());
  demo.api = api.url;

  const phone = new Phone(demo, 'mp-orders');
  const session = await phone.launch().ready;
  const page = phone.open('orders');
  await page.onShow();
  assert.equal(page.data.error, '');
  assert.equal(page.data.owner, session.user.id, 'the API knew the caller from the token alone');
  assert.deepEqual(page.data.orders, [{ id: 1, item: 'oolong tea' }]);

  // The first token was refused once: the client got a fresh one and sent the request again.
  assert.equal(api.seen.length, 2);
  assert.equal(api.seen[0], session.accessToken);
  assert.notEqual(api.seen[1], api.seen[0]);
  assert.notEqual(api.seen[1], phone.token(), 'an access token, never the session token');
  assert.ok(phone.requests.includes('POST /api/v1/auth/token'), phone.requests.join('\n'));
  assert.deepEqual([...phone.storage.keys()], ['wxlogin.token'], 'access tokens stay in memory');

  // A current token is reused, not renewed per request.
  phone.requests.length = 0;
  await page.onShow();
  assert.equal(api.seen[2], api.seen[1]);
  assert.ok(!phone.requests.includes('POST /api/v1/auth/token'), phone.requests.join('\n'));
});
