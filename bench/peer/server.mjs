// The Node.js peer of bench/peers.sh: the service a team would write instead of wxlogin, as
// issue 14 measured it. Fastify 5 in cluster mode (one worker per core), ioredis, better-sqlite3
// in WAL mode, an undici keep-alive pool to WeChat and Node's own AES. The same paths and
// bodies as wxlogin's, so that one load script drives both:
//
//   POST /api/v1/auth/login        {code, appid}: jscode2session, the user found or made in
//                                  SQLite, session_key kept in Redis under a random UUID token
//   GET  /api/v1/me                the token's user, read from SQLite
//   POST /api/v1/wechat/decrypt    {encryptedData, iv}: AES-128-CBC with the session_key
//
// Environment: PORT, WECHAT (the emulator's base URL), APPS (appid:secret,...), DB (a SQLite
// file), REDIS_PORT, WORKERS.
import cluster from 'node:cluster';
import crypto from 'node:crypto';
import os from 'node:os';

import Database from 'better-sqlite3';
import Fastify from 'fastify';
import Redis from 'ioredis';
import { Pool } from 'undici';

const env = process.env;
const WORKERS = Number(env.WORKERS || os.availableParallelism());
const SESSION_TTL = 7 * 24 * 3600;

function openDb() {
  const db = new Database(env.DB);
  // WAL, and synchronous=FULL (as wxlogin's): a commit is on disk when it returns. Said
  // explicitly: better-sqlite3 builds SQLite with SQLITE_DEFAULT_WAL_SYNCHRONOUS=1, so a database
  // opened in WAL mode would otherwise run synchronous=NORMAL (a commit's WAL frames are not
  // synced; a power loss can lose the last commits). SYNCHRONOUS=NORMAL runs it as shipped.
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${env.SYNCHRONOUS === 'NORMAL' ? 'NORMAL' : 'FULL'}`);
  db.pragma('busy_timeout = 5000');
  return db;
}

if (cluster.isPrimary) {
  const db = openDb();
  db.exec(`
    CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS identities (
      appid TEXT NOT NULL, openid TEXT NOT NULL, unionid TEXT,
      user_id TEXT NOT NULL REFERENCES users(id), PRIMARY KEY (appid, openid));`);
  db.close();
  for (let i = 0; i < WORKERS; i++) cluster.fork();
} else {
  await worker();
}

async function worker() {
  const apps = new Map(env.APPS.split(',').map((a) => a.split(':')));
  const wechat = new Pool(env.WECHAT, { connections: 32, pipelining: 1 });
  const redis = new Redis({ port: Number(env.REDIS_PORT), host: '127.0.0.1' });
  const db = openDb();
  const findOwner = db.prepare('SELECT user_id FROM identities WHERE appid = ? AND openid = ?');
  const insertUser = db.prepare('INSERT INTO users (id, created_at) VALUES (?, ?)');
  const insertIdentity = db.prepare(
    'INSERT INTO identities (appid, openid, unionid, user_id) VALUES (?, ?, ?, ?)');
  const readUser = db.prepare('SELECT id, created_at FROM users WHERE id = ?');
  // Find, or make in a write transaction (BEGIN IMMEDIATE) that looks again: a concurrent
  // first login of the same person in the other worker waits for the lock and finds the owner.
  const make = db.transaction((appid, openid, unionid) => {
    const found = findOwner.get(appid, openid);
    if (found) return { userId: found.user_id, isNewUser: false };
    const userId = crypto.randomUUID();
    insertUser.run(userId, Math.floor(Date.now() / 1000));
    insertIdentity.run(appid, openid, unionid ?? null, userId);
    return { userId, isNewUser: true };
  });
  const signIn = (appid, openid, unionid) => {
    const found = findOwner.get(appid, openid);
    if (found) return { userId: found.user_id, isNewUser: false };
    return make.immediate(appid, openid, unionid);
  };

  const app = Fastify({ logger: false });

  async function session(request, reply) {
    const auth = request.headers.authorization || '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    const raw = token && (await redis.get('sess:' + token));
    if (!raw) {
      reply.code(401).send({ code: 'UNAUTHENTICATED', message: 'Sign in again.' });
      return null;
    }
    return JSON.parse(raw);
  }

  app.post('/api/v1/auth/login', async (request, reply) => {
    const { code, appid } = request.body || {};
    const secret = apps.get(appid);
    if (typeof code !== 'string' || !secret) {
      return reply.code(400).send({ code: 'INVALID_REQUEST', message: 'code and appid' });
    }
    const query = new URLSearchParams({ appid, secret, js_code: code, grant_type: 'authorization_code' });
    const { body } = await wechat.request({ method: 'GET', path: '/sns/jscode2session?' + query });
    const wx = JSON.parse(await body.text());
    if (wx.errcode) {
      return reply.code(401).send({ code: 'WECHAT_CODE_INVALID', message: wx.errmsg });
    }
    const { userId, isNewUser } = signIn(appid, wx.openid, wx.unionid);
    const token = crypto.randomUUID();
    const stored = { userId, appid, openid: wx.openid, sessionKey: wx.session_key };
    await redis.set('sess:' + token, JSON.stringify(stored), 'EX', SESSION_TTL);
    return { token, expiresIn: SESSION_TTL, isNewUser, user: { id: userId } };
  });

  app.get('/api/v1/me', async (request, reply) => {
    const s = await session(request, reply);
    if (!s) return reply;
    const user = readUser.get(s.userId);
    return { id: user.id, createdAt: user.created_at, openid: s.openid };
  });

  app.post('/api/v1/wechat/decrypt', async (request, reply) => {
    const s = await session(request, reply);
    if (!s) return reply;
    const { encryptedData, iv } = request.body || {};
    let data;
    try {
      const key = Buffer.from(s.sessionKey, 'base64');
      const decipher = crypto.createDecipheriv('aes-128-cbc', key, Buffer.from(iv, 'base64'));
      const plain = Buffer.concat([decipher.update(encryptedData, 'base64'), decipher.final()]);
      data = JSON.parse(plain.toString('utf8'));
    } catch {
      return reply.code(400).send({ code: 'DECRYPT_FAILED', message: 'Bad encryptedData or iv.' });
    }
    if (data.watermark?.appid !== s.appid) {
      return reply.code(400).send({ code: 'DECRYPT_FAILED', message: 'Another app’s data.' });
    }
    return data;
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  await app.listen({ port: Number(env.PORT), host: '127.0.0.1' });
}
