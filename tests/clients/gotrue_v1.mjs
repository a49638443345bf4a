// The GoTrueApi class of @supabase/gotrue-js 1.x (what supabase-js 1.x used) against gotrue-lite,
// driven by tests/test_clients_legacy.py.
//
// Invocation: node gotrue_v1.mjs api|phone <server-url>. Environment and output: see lib.mjs.
// GoTrueApi is stateless: every call gets the JWT it needs; no version header is sent, so errors
// come in the legacy envelope and the client keeps only {message, status}.

import { GoTrueApi } from '@supabase/gotrue-js';

import {
  ANON_KEY, PASSWORD, PHONES, SERVICE_ROLE_KEY, SITE_URL, done, email, fail, latestMail, latestSms, recordingFetch,
  scenario, step, serverUrl,
} from './lib.mjs';

function api(key, label) {
  // supabase-js 1.x configured it like this: apikey and the key as bearer on every call.
  return new GoTrueApi({
    url: serverUrl,
    headers: { apikey: key, Authorization: `Bearer ${key}` },
    fetch: recordingFetch(label),
  });
}

function claimsOf(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

/** A session as GoTrueApi returns it, with the access token decoded. */
function withClaims(result) {
  if (result.data && result.data.access_token) {
    return { ...result, data: { ...result.data, claims: claimsOf(result.data.access_token) } };
  }
  return result;
}

async function main() {
  const anon = api(ANON_KEY, 'anon');
  const admin = api(SERVICE_ROLE_KEY, 'service_role');
  const ada = email('ada');
  const grace = email('grace');

  const signUp = await step('signUpWithEmail', async () => withClaims(await anon.signUpWithEmail(ada, PASSWORD, {
    redirectTo: `${SITE_URL}/welcome`, data: { name: 'Ada' },
  })));
  await step('signUpWithEmail_existing', () => anon.signUpWithEmail(ada, PASSWORD));
  await step('signUpWithEmail_weak_password', () => anon.signUpWithEmail(email('weak'), '123'));

  await step('signInWithEmail_wrong_password', () => anon.signInWithEmail(ada, 'not-the-password'));
  const { data: session } = await step('signInWithEmail', async () => withClaims(await anon.signInWithEmail(ada, PASSWORD)));

  await step('sendMagicLinkEmail', () => anon.sendMagicLinkEmail(ada, { redirectTo: `${SITE_URL}/magic` }));
  const magic = (await step('magic_link_mail', () => latestMail(ada, { kind: 'magic_link' }))).data;
  await step('verifyOTP_magiclink', async () => withClaims(await anon.verifyOTP(
    { email: ada, token: magic.code, type: 'magiclink' }, { redirectTo: `${SITE_URL}/magic` })));
  await step('sendMagicLinkEmail_no_signup', () => anon.sendMagicLinkEmail(email('nobody'), { shouldCreateUser: false }));

  await step('resetPasswordForEmail', () => anon.resetPasswordForEmail(ada, { redirectTo: `${SITE_URL}/reset` }));
  await step('recovery_mail', () => latestMail(ada, { kind: 'recovery' }));
  await step('resetPasswordForEmail_unknown', () => anon.resetPasswordForEmail(email('nobody')));

  const { data: refreshed } = await step('refreshAccessToken',
    async () => withClaims(await anon.refreshAccessToken(session.refresh_token)));
  // The rotated-out token, presented again (not the parent of the active one any more after a
  // second rotation): reuse detection.
  await step('refreshAccessToken_again', async () => withClaims(await anon.refreshAccessToken(refreshed.refresh_token)));
  await step('refreshAccessToken_reused', () => anon.refreshAccessToken(session.refresh_token));
  await step('refreshAccessToken_invalid', () => anon.refreshAccessToken('short'));

  // Reuse of a revoked token revoked the session's tokens; sign in again for the user calls.
  const { data: again } = await step('signInWithEmail_again', async () => withClaims(await anon.signInWithEmail(ada, PASSWORD)));
  const jwt = again.access_token;
  await step('getUser', () => anon.getUser(jwt));
  await step('getUser_bad_jwt', () => anon.getUser('not-a-jwt'));
  await step('updateUser', () => anon.updateUser(jwt, { data: { plan: 'pro' } }));
  await step('signOut', () => anon.signOut(jwt));
  await step('getUser_after_signOut', () => anon.getUser(jwt));

  await step('inviteUserByEmail_anon', () => anon.inviteUserByEmail(grace));
  const invited = await step('inviteUserByEmail', () => admin.inviteUserByEmail(grace, {
    redirectTo: `${SITE_URL}/join`, data: { team: 'engines' },
  }));
  await step('invite_mail', () => latestMail(grace, { kind: 'invite' }));
  await step('inviteUserByEmail_existing', () => admin.inviteUserByEmail(grace));
  await step('listUsers', () => admin.listUsers());
  await step('deleteUser_anon', () => anon.deleteUser(invited.data.id));
  await step('deleteUser', () => admin.deleteUser(invited.data.id));
  await step('getUserById_deleted', () => admin.getUserById(invited.data.id));
  await step('deleteUser_unknown', () => admin.deleteUser(invited.data.id));

  void signUp;
}

/** The phone methods: signUpWithPhone, verifyMobileOTP, signInWithPhone, sendMobileOTP. */
async function phone() {
  const anon = api(ANON_KEY, 'anon');
  const [P1, P2] = PHONES;
  let sms;
  const text = async (name, number) => step(name, async () => (sms = await latestSms(number)));
  await step('signUpWithPhone', () => anon.signUpWithPhone(`+${P1}`, PASSWORD, { data: { name: 'Pat' } }));
  await text('sms_signup', P1);
  await step('signInWithPhone_unconfirmed', () => anon.signInWithPhone(P1, PASSWORD));
  await step('verifyMobileOTP_wrong', () => anon.verifyMobileOTP(P1, sms.code === '000000' ? '111111' : '000000'));
  await step('verifyMobileOTP', async () => withClaims(await anon.verifyMobileOTP(`+${P1}`, sms.code)));
  await step('signInWithPhone', async () => withClaims(await anon.signInWithPhone(P1, PASSWORD)));
  await step('sendMobileOTP', () => anon.sendMobileOTP(P1));
  await text('sms_signin', P1);
  await step('verifyMobileOTP_signin', async () => withClaims(await anon.verifyMobileOTP(P1, sms.code)));
  await step('sendMobileOTP_new', () => anon.sendMobileOTP(P2));
  await text('sms_new', P2);
  await step('verifyOTP_new', async () => withClaims(await anon.verifyOTP({ phone: P2, token: sms.code, type: 'sms' })));
  await step('sendMobileOTP_no_create', () => anon.sendMobileOTP('15550000000', { shouldCreateUser: false }));
  await step('signUpWithPhone_bad_number', () => anon.signUpWithPhone('+1 (555) 0100', PASSWORD));
}

/** getUrlForProvider: the /authorize URL the app sends the browser to (pytest follows it). */
async function oauth() {
  const anon = api(ANON_KEY, 'anon');
  await step('getUrlForProvider', async () => ({
    data: { url: anon.getUrlForProvider('keycloak', { redirectTo: `${SITE_URL}/v1`, scopes: 'openid' }) },
    error: null,
  }));
}

const scenarios = { phone, oauth };
(scenarios[scenario] ?? main)().then(done, fail);
