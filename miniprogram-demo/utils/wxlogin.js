// wxlogin client for mini programs: copy this file (and config.js) into your own.
//
// - login(): wx.login + POST /api/v1/auth/login; the token is kept with wx.setStorageSync. Each
//   attempt sends its own Idempotency-Key, and a retry after a lost answer sends the same code
//   with the same key, so that the server answers it again (to no one else).
//   The WeChat session_key stays on the server; the token is all the client holds.
// - ensureSession(): reuses the stored token; where wx.checkSession fails, sends a fresh code to
//   /api/v1/auth/refresh so that the server's session_key matches the phone's again.
// - call(): an authenticated wx.request to wxlogin; after a 401 it signs in silently and retries
//   once.
// - request(): a wx.request to the business's own API (config.apiBaseUrl) with a current access
//   token (a JWT its servers verify offline, or through their proxy's forward auth): renewed
//   with /api/v1/auth/token a minute before it expires, and once more after a 401. Access tokens
//   live in memory only; the session token is the one thing kept in storage.
// - messageFor(): the server's error codes in words a person understands.

const config = require('../config.js');

const TOKEN_KEY = 'wxlogin.token';
/** Renew an access token this many milliseconds before it expires. */
const RENEW_BEFORE_MS = 60 * 1000;

/** The current access token and when it expires (ms since the epoch); in memory only. */
let access = null;

class WxLoginError extends Error {
  constructor(status, body) {
    super((body && body.message) || 'request failed (' + status + ')');
    this.status = status;
    this.code = (body && body.code) || 'network_error';
    this.bindTicket = body && body.bindTicket;
    this.requestId = body && body.requestId;
  }
}

function send(url, { method = 'GET', data, token, headers } = {}) {
  return new Promise((resolve, reject) => {
    const header = Object.assign({ 'content-type': 'application/json' }, headers);
    if (token) header.Authorization = 'Bearer ' + token;
    wx.request({
      url,
      method,
      data,
      header,
      success: (res) => {
        if (res.statusCode >= 200 && res.statusCode < 300) resolve(res.data);
        else reject(new WxLoginError(res.statusCode, res.data));
      },
      fail: (err) => reject(new WxLoginError(0, { code: 'network_error', message: err.errMsg })),
    });
  });
}

function wxLogin() {
  return new Promise((resolve, reject) => {
    wx.login({
      success: (res) => (res.code ? resolve(res.code) : reject(new WxLoginError(0, { code: 'wx_login_failed', message: res.errMsg }))),
      fail: (err) => reject(new WxLoginError(0, { code: 'wx_login_failed', message: err.errMsg })),
    });
  });
}

/** 16 random bytes in hex: an Idempotency-Key (wx.getRandomValues where the base library has it). */
function randomKey() {
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return new Promise((resolve) => {
    if (typeof wx.getRandomValues !== 'function') {
      resolve(hex(Array.from({ length: 16 }, () => Math.floor(Math.random() * 256))));
      return;
    }
    wx.getRandomValues({ length: 16, success: (res) => resolve(hex(new Uint8Array(res.randomValues))) });
  });
}

function checkSession() {
  return new Promise((resolve) => {
    wx.checkSession({ success: () => resolve(true), fail: () => resolve(false) });
  });
}

function token() {
  return wx.getStorageSync(TOKEN_KEY) || null;
}

/** A call to wxlogin itself. */
function server(path, options) {
  return send(config.baseUrl + path, options);
}

function keepAccess(answer) {
  if (answer && answer.accessToken) {
    access = { token: answer.accessToken, expiresAt: Date.now() + answer.accessTokenExpiresIn * 1000 };
  }
  return answer;
}

function keep(session) {
  wx.setStorageSync(TOKEN_KEY, session.token);
  keepAccess(session);
  return session;
}

/** Signs in with a fresh wx.login code; with username and password, binds this WeChat user to that account. */
async function login(credentials) {
  const code = await wxLogin();
  const data = { code };
  if (config.appid) data.appid = config.appid;
  if (credentials) {
    data.username = credentials.username;
    data.password = credentials.password;
  }
  const options = { method: 'POST', data, headers: { 'Idempotency-Key': await randomKey() } };
  try {
    return keep(await server('/api/v1/auth/login', options));
  } catch (err) {
    // The answer was lost on the way (status 0): the same code and key get it again.
    if (err.status !== 0) throw err;
    return keep(await server('/api/v1/auth/login', options));
  }
}

/** Finishes a login that answered binding_required, with the account's username and password. */
async function bind(bindTicket, username, password) {
  return keep(await server('/api/v1/auth/bind', { method: 'POST', data: { bindTicket, username, password } }));
}

/** Gives the server the phone's current session_key (after wx.checkSession failed). */
async function refresh() {
  const code = await wxLogin();
  await server('/api/v1/auth/refresh', { method: 'POST', data: { code }, token: token() });
}

/**
 * A usable session: the stored token where there is one (refreshing the session_key where
 * wx.checkSession says it changed), else a new login. Resolves to the login answer or, for a
 * stored token, to `{ token }`.
 */
async function ensureSession() {
  const stored = token();
  if (!stored) return login();
  if (!(await checkSession())) {
    try {
      await refresh();
    } catch (err) {
      if (err.status !== 401) throw err;
      return login();
    }
  }
  return { token: stored };
}

/** An authenticated request; a 401 signs in again silently and retries once. */
async function call(path, options = {}) {
  if (!token()) await login();
  try {
    return await server(path, Object.assign({}, options, { token: token() }));
  } catch (err) {
    if (err.status !== 401) throw err;
    wx.removeStorageSync(TOKEN_KEY);
    await login();
    return server(path, Object.assign({}, options, { token: token() }));
  }
}

/**
 * A current access token: the one in memory while it has more than a minute left, else a new
 * one from /api/v1/auth/token (signing in again where the session has ended).
 */
async function accessToken() {
  if (access && access.expiresAt - Date.now() > RENEW_BEFORE_MS) return access.token;
  access = null;
  if (!token()) await login();
  if (!access) keepAccess(await call('/api/v1/auth/token', { method: 'POST', data: {} }));
  return access.token;
}

/**
 * A request to the business's own API (a path under config.apiBaseUrl, or a whole URL) with a
 * current access token; after a 401 the token is renewed and the request sent once more.
 */
async function request(path, options = {}) {
  const url = /^https?:\/\//.test(path) ? path : config.apiBaseUrl + path;
  try {
    return await send(url, Object.assign({}, options, { token: await accessToken() }));
  } catch (err) {
    if (err.status !== 401) throw err;
    access = null;
    return send(url, Object.assign({}, options, { token: await accessToken() }));
  }
}

/** Sends what the getPhoneNumber button gave: the new-style code, or the older encryptedData. */
async function phoneNumber(detail) {
  if (detail.code) return call('/api/v1/me/phone', { method: 'POST', data: { code: detail.code } });
  if (detail.encryptedData && detail.iv) {
    // The data was encrypted with the session_key of the phone's last wx.login: make sure the
    // server has that one.
    if (!(await checkSession())) await refresh();
    return call('/api/v1/me/phone', { method: 'POST', data: { encryptedData: detail.encryptedData, iv: detail.iv } });
  }
  throw new WxLoginError(0, { code: 'phone_refused', message: detail.errMsg || 'no phone number given' });
}

async function logout() {
  const stored = token();
  wx.removeStorageSync(TOKEN_KEY);
  access = null;
  if (stored) {
    try {
      await server('/api/v1/auth/logout', { method: 'POST', token: stored });
    } catch (err) {
      if (err.status !== 401) throw err;
    }
  }
}

const MESSAGES = {
  network_error: 'No connection to the server. Check the network and try again.',
  wx_login_failed: 'WeChat sign-in did not start. Try again.',
  phone_refused: 'No phone number was shared.',
  invalid_request: 'Something in the request was not right. Please update the app.',
  wechat_code_invalid: 'The sign-in expired. Please try again.',
  wechat_rate_limited: 'Too many sign-ins just now. Wait a minute and try again.',
  wechat_user_blocked: 'WeChat does not allow this account to sign in now.',
  wechat_unavailable: 'WeChat is busy. Try again in a moment.',
  wechat_error: 'WeChat sign-in failed. Try again later.',
  unauthenticated: 'Please sign in again.',
  decrypt_failed: 'That took too long. Please try again.',
  watermark_mismatch: 'That data was not made for this app.',
  signature_mismatch: 'That data could not be verified. Please try again.',
  binding_required: 'Sign in with your account to link WeChat.',
  invalid_credentials: 'Wrong username or password.',
  account_locked: 'Too many wrong passwords. Try again in 15 minutes.',
  conflict: 'That is already linked to another account.',
  rate_limited: 'Too many attempts. Wait a moment and try again.',
  service_unavailable: 'The service is busy. Try again in a moment.',
  reauthentication_required: 'Please confirm it is you, then try again.',
};

/**
 * Gives this WeChat-only account a username and password. A fresh wx.login code goes with them
 * as proof that the phone's owner is here (a stolen token alone cannot set a password).
 */
async function setCredentials(username, password) {
  const code = await wxLogin();
  return call('/api/v1/me/credentials', { method: 'PUT', data: { username, password, code } });
}

function messageFor(err) {
  return MESSAGES[err && err.code] || 'Something went wrong. Please try again.';
}

module.exports = {
  login,
  bind,
  setCredentials,
  refresh,
  ensureSession,
  call,
  request,
  accessToken,
  phoneNumber,
  logout,
  messageFor,
  token,
  WxLoginError,
  TOKEN_KEY,
};
