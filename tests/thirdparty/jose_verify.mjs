// npm `jose` verifies wxlogin's access tokens as a Node API server would: createRemoteJWKSet
// from the JWKS that discovery names, jwtVerify with issuer, audience, ES256 and typ at+jwt. It
// must accept a good token and reject a tampered, expired, wrong-audience and `alg: none` one.
//
//   node jose_verify.mjs ISSUER TOKEN
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader } from 'jose';

const [issuer, token] = process.argv.slice(2);
const config = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
if (config.issuer !== issuer) throw new Error(`issuer ${config.issuer}`);
const jwks = createRemoteJWKSet(new URL(config.jwks_uri));
const verify = (t, options = {}) =>
  jwtVerify(t, jwks, { issuer, audience: issuer, algorithms: ['ES256'], typ: 'at+jwt', ...options });

const { payload } = await verify(token);
if (!payload.sub || !payload.sid || !payload.client_id) throw new Error(JSON.stringify(payload));

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const [head, body, sig] = token.split('.');
const forged = { ...payload, sub: 'someone-else' };
const kid = decodeProtectedHeader(token).kid;
const refused = {
  tampered: () => verify(`${head}.${b64(forged)}.${sig}`),
  // The verifier's clock a thousand seconds on: past the token's 15 minutes.
  expired: () => verify(token, { currentDate: new Date(Date.now() + 1000 * 1000) }),
  'wrong audience': () => verify(token, { audience: 'https://another.example.com' }),
  'alg none': () => verify(`${b64({ alg: 'none', typ: 'at+jwt', kid })}.${body}.`),
};
for (const [name, attempt] of Object.entries(refused)) {
  let accepted = true;
  try {
    await attempt();
  } catch {
    accepted = false;
  }
  if (accepted) throw new Error(`jose accepted a ${name} token`);
}
console.log('jose: a good token verifies; tampered, expired, wrong-audience and alg-none ones do not');
