// A local OpenID provider for the tests: panva's certified `oidc-provider` serving Keycloak's
// paths under /realms/<realm>, plus a small control API under /_test/ that the pytest fixture
// (tests/idp.py) drives. Started on loopback only; prints {"port": N, "issuer": "..."} on its
// first stdout line and exits when its stdin closes (the test process went away).
//
// Control API (JSON in, JSON out):
//   POST /_test/clients   {client_id, client_secret, redirect_uris, id_token_signed_response_alg?,
//                          token_endpoint_auth_method?}  register or replace a client
//   POST /_test/users     {sub, claims}  an account whose claims the provider releases by scope
//   POST /_test/id_token  {aud, sub?, nonce?, claims?, key?, alg?, expires_in?, iat?, nbf?,
//                          access_token?, iss?, kid?}  an ID token signed with one of the keys
//   POST /_test/fault     {endpoint, mode: "hang"|"status"|"off", status?, body?, content_type?}
//   POST /_test/rotate    publish the "next" key in the JWKS (a key rotation at the provider)
//   GET  /_test/requests  the provider endpoints' requests seen so far (method, path, query, form)
//
// Logging in is non-interactive: the authorization request's `login_hint` names the account
// (its `sub`). An unknown hint ends the interaction with error=access_denied, as a user who
// cancels at the provider would.

import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { URL } from 'node:url';

import * as jose from 'jose';
import Provider from 'oidc-provider';
import { createMemoryAdapter } from 'oidc-provider/lib/adapters/memory_adapter.js';

const REALM = process.env.IDP_REALM || 'test';
const PREFIX = `/realms/${REALM}`;
const OIDC = '/protocol/openid-connect';

// --- keys --------------------------------------------------------------------------------------
// current: signs the provider's own RS256 ID tokens; es256: for clients asking ES256;
// rotated: an older RSA key still published (tokens it signed stay valid);
// next: published only after POST /_test/rotate; unknown: never published.

async function makeKey(kid, alg) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true, ...(alg === 'RS256' ? { modulusLength: 2048 } : {}) });
  const jwk = { ...(await jose.exportJWK(privateKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, jwk };
}

const KEYS = {
  current: await makeKey('rs-current', 'RS256'),
  es256: await makeKey('es-current', 'ES256'),
  rotated: await makeKey('rs-rotated', 'RS256'),
  next: await makeKey('rs-next', 'RS256'),
  unknown: await makeKey('rs-unknown', 'RS256'),
};
let published = ['current', 'es256', 'rotated'];

function publicJwk(jwk) {
  const { d, p, q, dp, dq, qi, ...pub } = jwk;
  return pub;
}

// --- accounts and clients ----------------------------------------------------------------------

const users = new Map();
const adapter = createMemoryAdapter(0);
const faults = new Map();
const seen = [];

const STANDARD_CLAIMS = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  phone: ['phone_number', 'phone_number_verified'],
  profile: ['name', 'given_name', 'family_name', 'middle_name', 'nickname', 'preferred_username',
    'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at', 'profile'],
};

const port = Number(process.env.IDP_PORT || 0);
// IDP_TLS_CERT / IDP_TLS_KEY (PEM files): serve https, for relying parties that accept only
// https issuers (upstream's custom OIDC providers); the test trusts its own CA.
const tls = process.env.IDP_TLS_CERT && process.env.IDP_TLS_KEY
  ? { cert: readFileSync(process.env.IDP_TLS_CERT), key: readFileSync(process.env.IDP_TLS_KEY) }
  : null;
const server = tls ? https.createServer(tls) : http.createServer();
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const origin = `${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}`;
const issuer = origin + PREFIX;

const provider = new Provider(issuer, {
  adapter,
  jwks: { keys: [KEYS.current.jwk, KEYS.es256.jwk, KEYS.rotated.jwk] },
  claims: STANDARD_CLAIMS,
  scopes: ['openid', 'offline_access', 'email', 'profile', 'phone'],
  conformIdTokenClaims: false, // like Keycloak: the scopes' claims go into the ID token too
  cookies: { keys: [randomBytes(16).toString('hex')] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `${PREFIX}/login-actions/${interaction.uid}` },
  routes: {
    authorization: `${OIDC}/auth`,
    token: `${OIDC}/token`,
    userinfo: `${OIDC}/userinfo`,
    jwks: `${OIDC}/certs`,
    end_session: `${OIDC}/logout`,
    revocation: `${OIDC}/revoke`,
  },
  pkce: { required: () => false },
  // Keycloak issues a refresh token with every code exchange.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  clientDefaults: {
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  },
  async findAccount(ctx, sub) {
    const claims = users.get(sub);
    if (!claims) return undefined;
    return { accountId: sub, claims: async () => ({ ...claims, sub }) };
  },
  async renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
});
const handle = provider.callback();

// --- the non-interactive login -----------------------------------------------------------------

async function finishInteraction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { params } = details;
  const sub = params.login_hint;
  let result;
  if (!sub || !users.has(sub)) {
    result = { error: 'access_denied', error_description: `no account for login_hint ${JSON.stringify(sub ?? '')}` };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: sub, clientId: params.client_id });
    if (params.scope) grant.addOIDCScope(params.scope);
    result = { login: { accountId: sub }, consent: { grantId: await grant.save() } };
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

// --- ID tokens made to order -------------------------------------------------------------------

function atHash(accessToken) {
  const digest = createHash('sha256').update(accessToken).digest();
  return jose.base64url.encode(digest.subarray(0, digest.length / 2));
}

async function mintIdToken(spec) {
  const key = KEYS[spec.key || (spec.alg === 'ES256' ? 'es256' : 'current')];
  if (!key) throw new Error(`unknown key ${spec.key}`);
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    iss: spec.iss ?? issuer,
    sub: spec.sub ?? 'someone',
    aud: spec.aud,
    iat: spec.iat ?? now,
    exp: (spec.iat ?? now) + (spec.expires_in ?? 600),
    ...(spec.nbf !== undefined ? { nbf: spec.nbf } : {}),
    ...(spec.nonce !== undefined ? { nonce: spec.nonce } : {}),
    ...(spec.access_token ? { at_hash: atHash(spec.access_token) } : {}),
    ...(spec.claims || {}),
  };
  if (spec.alg === 'none') {
    const enc = (o) => jose.base64url.encode(JSON.stringify(o));
    return { id_token: `${enc({ alg: 'none', typ: 'JWT' })}.${enc(payload)}.`, payload };
  }
  const header = { alg: key.alg, kid: spec.kid ?? key.kid, typ: 'JWT' };
  const token = await new jose.SignJWT(payload).setProtectedHeader(header).sign(key.privateKey);
  return { id_token: token, payload };
}

// --- HTTP --------------------------------------------------------------------------------------

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

function sendJson(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function control(req, res, path) {
  if (req.method === 'GET' && path === '/_test/requests') return sendJson(res, 200, seen);
  if (req.method !== 'POST') return sendJson(res, 405, { error: 'method not allowed' });
  const body = await readJson(req);
  switch (path) {
    case '/_test/clients': {
      const { client_id: id, ...metadata } = body;
      await adapter('Client').upsert(id, { client_id: id, ...metadata });
      return sendJson(res, 201, { client_id: id });
    }
    case '/_test/users':
      users.set(body.sub, body.claims || {});
      return sendJson(res, 201, { sub: body.sub });
    case '/_test/id_token':
      return sendJson(res, 200, await mintIdToken(body));
    case '/_test/fault':
      if (body.mode === 'off') faults.delete(body.endpoint);
      else faults.set(body.endpoint, body);
      return sendJson(res, 200, { ok: true });
    case '/_test/rotate':
      if (!published.includes('next')) published = ['next', ...published];
      return sendJson(res, 200, { kid: KEYS.next.kid });
    default:
      return sendJson(res, 404, { error: 'no such control endpoint' });
  }
}

const ENDPOINTS = {
  [`${PREFIX}/.well-known/openid-configuration`]: 'discovery',
  [`${PREFIX}${OIDC}/auth`]: 'auth',
  [`${PREFIX}${OIDC}/token`]: 'token',
  [`${PREFIX}${OIDC}/userinfo`]: 'userinfo',
  [`${PREFIX}${OIDC}/certs`]: 'certs',
};

async function record(req, name, url) {
  const entry = { endpoint: name, method: req.method, path: url.pathname,
    query: Object.fromEntries(url.searchParams), authorization: req.headers.authorization || '' };
  seen.push(entry);
  if (seen.length > 500) seen.shift();
}

server.on('request', async (req, res) => {
  const url = new URL(req.url, origin);
  try {
    if (url.pathname.startsWith('/_test/')) return await control(req, res, url.pathname);
    const name = ENDPOINTS[url.pathname];
    if (name) {
      await record(req, name, url);
      const fault = faults.get(name);
      if (fault?.mode === 'hang') return; // never answers; the client's timeout must fire
      if (fault?.mode === 'status') {
        res.writeHead(fault.status || 500, { 'Content-Type': fault.content_type || 'application/json' });
        return res.end(typeof fault.body === 'string' ? fault.body : JSON.stringify(fault.body ?? {}));
      }
      if (name === 'certs') {
        return sendJson(res, 200, { keys: published.map((k) => publicJwk(KEYS[k].jwk)) });
      }
    }
    if (url.pathname.startsWith(`${PREFIX}/login-actions/`)) return await finishInteraction(req, res);
    if (url.pathname === PREFIX || url.pathname.startsWith(PREFIX + '/')) {
      // mounted as Express does it: the provider reads the mount path from originalUrl
      req.originalUrl = req.url;
      req.url = req.url.slice(PREFIX.length) || '/';
      return handle(req, res);
    }
    sendJson(res, 404, { error: 'not found' });
  } catch (err) {
    if (!res.headersSent) sendJson(res, 500, { error: 'idp_failure', error_description: String(err?.message || err) });
  }
});

process.stdout.write(JSON.stringify({ port: server.address().port, origin, issuer, realm: REALM }) + '\n');
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
