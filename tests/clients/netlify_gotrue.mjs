// Netlify's gotrue-js (the client behind netlify-identity-widget) against gotrue-lite,
// driven by tests/test_clients_legacy.py.
//
// Invocation: node netlify_gotrue.mjs <scenario> <server-url>, scenario "v1.0" (gotrue-js 1.0.x,
// the TypeScript rewrite) or "v0.9" (gotrue-js 0.9.x, aliased as gotrue-js-0.9).
// Environment and output: see lib.mjs; GL_SERVICE_ROLE_KEY creates the invitation.
//
// The server is expected to run with mailer autoconfirm off and Netlify-flavoured mail
// templates: links of the form SITE_URL/#confirmation_token=<token hash> (recovery_token,
// invite_token), which is what a Netlify site's widget reads from the URL.

import { PASSWORD, SERVICE_ROLE_KEY, done, email, fail, recordingFetch, scenario, serverUrl, step } from './lib.mjs';

const NEW_PASSWORD = 'new-horse-battery-2';
const INVITE_PASSWORD = 'invited-horse-battery-3';
const AUDIENCE = 'netlify-site';

// --- a browser-ish environment -----------------------------------------------------------------
//
// gotrue-js 0.9 decodes the JWT with `window.atob`, and once `window` exists it also uses
// `localStorage` (remember-me sessions). 1.0 checks `typeof window` and otherwise runs on plain
// Node (atob/Buffer, no storage), so it gets no shims. Neither touches document.cookie with
// setCookie: false.
if (scenario === 'v0.9') {
  const items = new Map();
  globalThis.window = globalThis;
  globalThis.localStorage = {
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => void items.set(key, String(value)),
    removeItem: (key) => void items.delete(key),
  };
}

// Record every request: gotrue-js calls the global fetch, so lib.mjs's recorder wraps it. The
// recorder calls `fetch` synchronously, before its first await; that inner call goes to the real
// fetch.
const realFetch = globalThis.fetch;
const recorder = recordingFetch('netlify');
let reentered = false;
globalThis.fetch = (input, init) => {
  if (reentered) {
    reentered = false;
    return realFetch(input, init);
  }
  reentered = true;
  return recorder(input, init);
};

// "webhooks" runs 1.0 against a server whose GOTRUE_WEBHOOK_URL is a site's identity function.
const moduleName = { 'v1.0': 'gotrue-js', 'v0.9': 'gotrue-js-0.9', webhooks: 'gotrue-js' }[scenario];
if (!moduleName) {
  process.stderr.write(`unknown scenario ${scenario} (v1.0 | v0.9 | webhooks)\n`);
  process.exit(2);
}
const loaded = await import(moduleName);
// 1.0 is an ES module; 0.9 is Babel-compiled CommonJS (exports.default).
const GoTrue = typeof loaded.default === 'function' ? loaded.default : loaded.default.default;

// --- helpers -------------------------------------------------------------------------------------

function claimsOf(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

/** What an app sees of a gotrue-js User object. */
function userSummary(user) {
  if (!user) return user;
  const token = user.tokenDetails();
  return {
    id: user.id,
    aud: user.aud,
    role: user.role,
    email: user.email,
    confirmed_at: user.confirmed_at ?? null,
    email_confirmed_at: user.email_confirmed_at ?? null,
    invited_at: user.invited_at ?? null,
    user_metadata: user.user_metadata,
    app_metadata: user.app_metadata,
    url: user.url,
    audience: user.audience,
    token: token && {
      access_token: token.access_token,
      refresh_token: token.refresh_token,
      token_type: token.token_type,
      expires_in: token.expires_in,
      expires_at: token.expires_at, // milliseconds, from the JWT's exp
    },
    claims: token ? claimsOf(token.access_token) : null,
  };
}

/** gotrue-js rejects with HTTPError subclasses; keep the JSON body the server sent. */
async function call(fn) {
  try {
    return await fn();
  } catch (error) {
    if (error && error.json) error.details = error.json;
    if (error && typeof error.data === 'string') error.details = { text: error.data };
    throw error;
  }
}

/** The token a Netlify site reads from `SITE_URL/#<key>=<token>` in the newest mail of a kind. */
async function mailedToken(to, kind, key) {
  const res = await realFetch(`${serverUrl}/_dev/mail?email=${encodeURIComponent(to)}`);
  if (!res.ok) throw new Error(`GET /_dev/mail answered ${res.status}`);
  const message = (await res.json()).messages.find((m) => m.kind === kind);
  if (!message) throw new Error(`no ${kind} mail to ${to}`);
  const link = (message.links ?? []).find((l) => l.includes(`#${key}=`));
  if (!link) throw new Error(`the ${kind} mail has no #${key}= link: ${JSON.stringify(message.links)}`);
  const token = new URLSearchParams(new URL(link).hash.slice(1)).get(key);
  return { subject: message.subject, link, token };
}

async function rawRefresh(refreshToken) {
  const res = await realFetch(`${serverUrl}/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: `grant_type=refresh_token&refresh_token=${refreshToken}`,
  });
  return { status: res.status, body: await res.json() };
}

// --- the scenario ----------------------------------------------------------------------------------

async function main() {
  const auth = new GoTrue({ APIUrl: serverUrl, setCookie: false });
  const ada = email('ada');
  const grace = email('grace');

  await step('settings', () => call(() => auth.settings()));

  await step('signup', () => call(() => auth.signup(ada, PASSWORD, { full_name: 'Ada Lovelace' })));
  await step('login_unconfirmed', () => call(() => auth.login(ada, PASSWORD)));

  const confirmation = (await step('confirmation_mail', () => mailedToken(ada, 'confirmation', 'confirmation_token'))).data;
  await step('confirm', async () => userSummary(await call(() => auth.confirm(confirmation.token))));
  await step('confirm_again', () => call(() => auth.confirm(confirmation.token)));

  await step('login_wrong_password', () => call(() => auth.login(ada, 'not-the-password')));
  const { data: loggedIn } = await step('login', async () => userSummary(await call(() => auth.login(ada, PASSWORD))));

  const user = auth.currentUser();
  await step('currentUser', () => userSummary(auth.currentUser()));

  await step('update', async () => userSummary(await call(() => user.update({ data: { plan: 'pro' } }))));
  await step('getUserData', async () => userSummary(await call(() => user.getUserData())));

  // jwt(): the cached token while it is fresh; a refresh once it is within a minute of expiry.
  await step('jwt_fresh', () => call(() => user.jwt()));
  await step('jwt_near_expiry', async () => {
    const before = { ...user.tokenDetails() };
    user.token.expires_at = Date.now() + 30 * 1000; // inside gotrue-js's 60 s margin
    const accessToken = await call(() => user.jwt());
    return { before, access_token: accessToken, after: userSummary(user).token, claims: claimsOf(accessToken) };
  });
  await step('jwt_forced', async () => {
    const before = { ...user.tokenDetails() };
    const accessToken = await call(() => user.jwt(true));
    return { before, access_token: accessToken, after: userSummary(user).token };
  });
  await step('jwt_concurrent', async () => {
    // Both calls present the same refresh token: gotrue-js sends one request and shares it.
    const tokens = await call(() => Promise.all([user.jwt(true), user.jwt(true)]));
    return { tokens, after: userSummary(user).token };
  });

  await step('requestPasswordRecovery', () => call(() => auth.requestPasswordRecovery(ada)));
  const recovery = (await step('recovery_mail', () => mailedToken(ada, 'recovery', 'recovery_token'))).data;
  const { data: recoveredSummary } = await step('recover', async () => userSummary(await call(() => auth.recover(recovery.token))));
  const recovered = auth.currentUser();
  await step('update_password', async () => userSummary(await call(() => recovered.update({ password: NEW_PASSWORD }))));
  await step('login_old_password', () => call(() => auth.login(ada, PASSWORD)));
  await step('login_new_password', async () => userSummary(await call(() => auth.login(ada, NEW_PASSWORD))));

  await step('invite', async () => {
    const res = await realFetch(`${serverUrl}/invite`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${SERVICE_ROLE_KEY}` },
      body: JSON.stringify({ email: grace, data: { team: 'engines' } }),
    });
    return { status: res.status, body: await res.json() };
  });
  const invitation = (await step('invite_mail', () => mailedToken(grace, 'invite', 'invite_token'))).data;
  await step('acceptInvite', async () => userSummary(await call(() => auth.acceptInvite(invitation.token, INVITE_PASSWORD))));
  await step('login_invited', async () => userSummary(await call(() => auth.login(grace, INVITE_PASSWORD))));

  const last = auth.currentUser();
  const lastToken = { ...last.tokenDetails() };
  await step('logout', async () => {
    await call(() => last.logout());
    return { currentUser: auth.currentUser(), token: last.tokenDetails() };
  });
  // The session is gone on the server: neither its refresh token nor its access token works.
  await step('refresh_after_logout', () => rawRefresh(lastToken.refresh_token));
  await step('user_after_logout', async () => {
    const res = await realFetch(`${serverUrl}/user`, { headers: { Authorization: `Bearer ${lastToken.access_token}` } });
    return { status: res.status, body: await res.json() };
  });

  // A site that configures an audience: gotrue-js sends X-JWT-AUD with every request.
  const site = new GoTrue({ APIUrl: serverUrl, audience: AUDIENCE, setCookie: false });
  const cy = email('cy');
  await step('audience_signup', () => call(() => site.signup(cy, PASSWORD)));
  const cyMail = (await step('audience_confirmation_mail', () => mailedToken(cy, 'confirmation', 'confirmation_token'))).data;
  await step('audience_confirm', async () => userSummary(await call(() => site.confirm(cyMail.token))));
  await step('audience_login', async () => userSummary(await call(() => site.login(cy, PASSWORD))));
  const cyUser = site.currentUser();
  await step('audience_update', async () => userSummary(await call(() => cyUser.update({ data: { site: 'blog' } }))));
  await step('audience_jwt_forced', async () => claimsOf(await call(() => cyUser.jwt(true))));
  await step('audience_login_other_audience', () => call(() => auth.login(cy, PASSWORD)));

  void loggedIn;
  void recoveredSummary;
}

// --- Netlify-style webhooks ------------------------------------------------------------------------
//
// The site's function (tests/test_webhooks.py) refuses addresses starting with "mallory" at
// validate, gives the role "editor" at signup and adds "reader" at each login: the app sees them
// in user.app_metadata and in the access token, as a Netlify site did.

async function webhooks() {
  const auth = new GoTrue({ APIUrl: serverUrl, setCookie: false });
  const ada = email('ada');
  const mallory = email('mallory');
  await step('signup', () => call(() => auth.signup(ada, PASSWORD, { full_name: 'Ada Lovelace' })));
  const confirmation = (await step('confirmation_mail', () => mailedToken(ada, 'confirmation', 'confirmation_token'))).data;
  await step('confirm', async () => userSummary(await call(() => auth.confirm(confirmation.token))));
  await step('login', async () => userSummary(await call(() => auth.login(ada, PASSWORD))));
  await step('signup_refused', () => call(() => auth.signup(mallory, PASSWORD)));
  await step('login_refused_user', () => call(() => auth.login(mallory, PASSWORD)));
}

(scenario === 'webhooks' ? webhooks : main)().then(done, fail);
