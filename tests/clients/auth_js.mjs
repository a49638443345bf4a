// The published @supabase/auth-js client (GoTrueClient / GoTrueAdminApi) against gotrue-lite.
// Usage: node auth_js.mjs <scenario> <server-url>   (see lib.mjs for the environment and output)
//
// Scenarios and the server configuration pytest gives them:
//   password  MAILER_AUTOCONFIRM=true   sign-up/in, session, user, claims, refresh, update, anonymous
//   signout   MAILER_AUTOCONFIRM=true   signOut with each scope, seen from other sessions
//   otp       MAILER_AUTOCONFIRM=false  confirmation, OTP codes, token hashes, recovery, resend,
//                                       reauthenticate, email change — codes read from /_dev/mail
//   pkce      MAILER_AUTOCONFIRM=false  flowType 'pkce': mailed link -> GET /verify -> ?code= ->
//                                       exchangeCodeForSession
//   url       MAILER_AUTOCONFIRM=false  the client's own URL handling (detectSessionInUrl) fed with
//                                       the redirects of GET /verify (implicit flow)
//   edge      GOTRUE_JWT_EXP=60, GOTRUE_PASSWORD_MIN_LENGTH=12: weakPassword on sign-in, refresh
//             inside getSession()
//   claims    GOTRUE_JWT_KEYS=[ES256|RS256 signing key, HS256 verify-only]: getClaims via JWKS
//   admin     MAILER_AUTOCONFIRM=true   the admin namespace with the service_role key
//   captcha   SECURITY_CAPTCHA_ENABLED against a local siteverify; GL_CAPTCHA_TOKENS holds tokens
//             the fake vendor issued (comma-separated), passed as options.captchaToken
//   phone     EXTERNAL_PHONE_ENABLED, no SMS provider: sign-up, password and OTP sign-in, verifyOtp sms
//             and phone_change, updateUser phone, resend, reauthenticate — codes read from the dev outbox
//   mfa       MAILER_AUTOCONFIRM=true, MFA_PHONE_ENROLL/VERIFY_ENABLED=true: TOTP and phone
//             factors with mfa.enroll, challenge, verify, challengeAndVerify, unenroll, listFactors,
//             getAuthenticatorAssuranceLevel and the admin mfa.listFactors / deleteFactor (SMS
//             codes read from the dev outbox)
//   webauthn  MFA_WEB_AUTHN_*=true, WEBAUTHN_RP_ID=localhost, RP_ORIGINS=http://localhost:3000:
//             mfa.webauthn.register / authenticate with a software authenticator
//             (soft_authenticator.mjs) standing in for navigator.credentials
//   id_token  EXTERNAL_KEYCLOAK_* pointing at tests/idp; GL_ID_TOKEN (nonce GL_NONCE, raw),
//             GL_ID_TOKEN_WRONG_AUD, GL_ID_TOKEN_LINK: ID tokens the local OpenID provider issued;
//             signInWithIdToken, then linking a second identity with linkIdentity({token})
//   identities SECURITY_MANUAL_LINKING_ENABLED=true; GL_IDENTITY_EMAIL names a user pytest made
//             with a second (github) identity: getUserIdentities, unlinkIdentity

import { createHmac } from 'node:crypto';

import { GoTrueAdminApi, GoTrueClient } from '@supabase/auth-js';

import {
  ANON_KEY, PASSWORD, SERVICE_ROLE_KEY, SITE_URL, authData, decodeJwt, done, email, fail,
  followLink, latestMail, phoneFlows, memoryStorage, recordEvents, recordingFetch, scenario, serverUrl,
  secureEmailChange, sessionSummary, step,
} from './lib.mjs';
import { SoftAuthenticator } from './soft_authenticator.mjs';

let clientCount = 0;

/** A GoTrueClient as an app would configure it: anon key, storage in memory, no timers. */
function client(label, options = {}) {
  clientCount += 1;
  const storage = memoryStorage();
  const c = new GoTrueClient({
    url: serverUrl,
    headers: { apikey: ANON_KEY },
    storageKey: `sb-test-${label}-${clientCount}`,
    storage,
    persistSession: true,
    autoRefreshToken: false,
    detectSessionInUrl: false,
    fetch: recordingFetch(label),
    ...options,
  });
  c.testStorage = storage;
  recordEvents(c, label);
  return c;
}

function adminApi(key = SERVICE_ROLE_KEY, label = 'admin') {
  return new GoTrueAdminApi({
    url: serverUrl,
    headers: { apikey: key, Authorization: `Bearer ${key}` },
    fetch: recordingFetch(label),
  });
}

const session = async (c) => sessionSummary((await c.getSession()).data.session);

// --- scenarios ---------------------------------------------------------------------------------

const scenarios = {};

scenarios.password = async () => {
  const main = client('main');
  const E1 = email('ada');
  await step('initialize', async () => {
    await main.initialize();
    return { data: { session: await session(main) }, error: null };
  });

  await step('signUp', async () => authData(await main.signUp({
    email: E1, password: PASSWORD,
    options: { data: { name: 'Ada', plan: 'pro' }, emailRedirectTo: `${SITE_URL}/welcome` },
  })));

  await step('signUp_existing', async () => authData(await client('dup').signUp({ email: E1, password: PASSWORD })));
  await step('signUp_weak_password', async () => authData(await client('weak').signUp({ email: email('weak'), password: '123' })));
  await step('signUp_invalid_email', async () => authData(await client('bad').signUp({ email: 'not-an-email', password: PASSWORD })));
  await step('signIn_wrong_password', async () => authData(await client('wrong').signInWithPassword({ email: E1, password: 'wrong-password-1' })));
  await step('signIn_unknown_user', async () => authData(await client('unknown').signInWithPassword({ email: email('nobody'), password: PASSWORD })));

  let res = await step('signInWithPassword', async () => authData(await main.signInWithPassword({ email: E1, password: PASSWORD })));
  const signedIn = res.data?.session;

  await step('getSession', async () => ({ data: { session: await session(main) }, error: null }));
  await step('getUser', async () => main.getUser());
  await step('getClaims', async () => main.getClaims());

  res = await step('refreshSession', async () => authData(await main.refreshSession()));
  const refreshed = res.data?.session;
  await step('getSession_after_refresh', async () => ({ data: { session: await session(main) }, error: null }));
  await step('getUser_after_refresh', async () => main.getUser());

  // Another client (say, another device) adopts the tokens.
  const adopter = client('adopter');
  await step('setSession', async () => authData(await adopter.setSession({
    access_token: refreshed.access_token, refresh_token: refreshed.refresh_token,
  })));

  await step('updateUser_data', async () => main.updateUser({ data: { plan: 'team', name: null, theme: 'dark' } }));
  await step('updateUser_weak_password', async () => main.updateUser({ password: 'abc' }));
  await step('updateUser_password', async () => main.updateUser({ password: `${PASSWORD}-new` }));
  await step('updateUser_same_password', async () => main.updateUser({ password: `${PASSWORD}-new` }));
  await step('signIn_old_password', async () => authData(await client('old').signInWithPassword({ email: E1, password: PASSWORD })));
  await step('signIn_new_password', async () => authData(await client('new').signInWithPassword({ email: E1, password: `${PASSWORD}-new` })));
  await step('updateUser_email', async () => main.updateUser({ email: email('ada-new') }, { emailRedirectTo: `${SITE_URL}/changed` }));
  await step('updateUser_email_taken', async () => {
    await client('other').signUp({ email: email('taken'), password: PASSWORD });
    return main.updateUser({ email: email('taken') });
  });
  await step('getUser_after_updates', async () => main.getUser());

  // Refresh-token reuse: an old token, presented after rotation, kills the whole session.
  const reuser = client('reuser');
  const first = (await reuser.signInWithPassword({ email: E1, password: `${PASSWORD}-new` })).data.session;
  await step('refresh_rotate', async () => authData(await reuser.refreshSession()));
  // The parent of the active token is forgiven (a lost response) and answers the active one.
  await step('refresh_parent_again', async () => authData(await client('retry').refreshSession({ refresh_token: first.refresh_token })));
  await step('refresh_rotate_again', async () => authData(await reuser.refreshSession()));
  await step('refresh_reuse_old_token', async () => authData(await client('thief').refreshSession({ refresh_token: first.refresh_token })));
  await step('refresh_after_reuse', async () => authData(await reuser.refreshSession()));

  // Anonymous users.
  const anon = client('anon');
  await step('signInAnonymously', async () => authData(await anon.signInAnonymously({ options: { data: { color: 'blue' } } })));
  await step('anonymous_getClaims', async () => anon.getClaims());
  await step('anonymous_updateUser_password_only', async () => anon.updateUser({ password: `${PASSWORD}-anon` }));
  await step('anonymous_updateUser_email', async () => anon.updateUser({ email: email('was-anon') }));

  // OTP sign-in of a new address with autoconfirm on: created confirmed, then a magic link.
  const o = client('otp-auto');
  await step('signInWithOtp_new_user', async () => o.signInWithOtp({ email: email('ada-otp') }));
  await step('verifyOtp_new_user', async () => {
    const mail = await latestMail(email('ada-otp'));
    return { data: { mail, ...(authData(await o.verifyOtp({ email: email('ada-otp'), token: mail.code, type: 'email' })).data) }, error: null };
  });

  await step('signOut', async () => main.signOut());
  await step('getSession_after_signOut', async () => ({ data: { session: await session(main) }, error: null }));
  await step('getUser_after_signOut', async () => main.getUser());
  await step('old_access_token_after_signOut', async () => client('stale').getUser(signedIn.access_token));
};

scenarios.signout = async () => {
  const E = email('multi');
  await client('setup').signUp({ email: E, password: PASSWORD });
  const devices = {};
  for (const name of ['a', 'b', 'c', 'd', 'e']) {
    devices[name] = client(name);
    await devices[name].signInWithPassword({ email: E, password: PASSWORD });
  }
  const { a, b, c, d, e } = devices;
  const tokens = {};
  for (const [name, dev] of Object.entries(devices)) tokens[name] = (await dev.getSession()).data.session;

  await step('signOut_others', async () => a.signOut({ scope: 'others' }));
  await step('others_current_session_kept', async () => a.getUser());
  await step('others_other_session_gone', async () => b.getUser());
  await step('others_other_refresh_gone', async () => authData(await client('c2').refreshSession({ refresh_token: tokens.c.refresh_token })));
  await step('signOut_local_session_already_gone', async () => c.signOut({ scope: 'local' }));

  // Two fresh sessions besides a.
  await d.signInWithPassword({ email: E, password: PASSWORD });
  await e.signInWithPassword({ email: E, password: PASSWORD });
  tokens.d = (await d.getSession()).data.session;
  tokens.a = (await a.getSession()).data.session;

  await step('signOut_local', async () => a.signOut({ scope: 'local' }));
  await step('local_getSession', async () => ({ data: { session: await session(a) }, error: null }));
  await step('local_old_token_rejected', async () => client('probe1').getUser(tokens.a.access_token));
  await step('local_other_session_kept', async () => d.getUser());

  await step('signOut_global', async () => d.signOut());
  await step('global_getSession', async () => ({ data: { session: await session(d) }, error: null }));
  await step('global_other_session_gone', async () => e.getUser());
  await step('global_refresh_gone', async () => authData(await client('probe2').refreshSession({ refresh_token: tokens.d.refresh_token })));
  await step('signOut_without_session', async () => client('nobody').signOut());
};

scenarios.otp = async () => {
  const E1 = email('otp');
  const c = client('otp');

  await step('signUp_unconfirmed', async () => authData(await c.signUp({
    email: E1, password: PASSWORD, options: { data: { name: 'Otto' }, emailRedirectTo: `${SITE_URL}/confirmed` },
  })));
  await step('signIn_unconfirmed', async () => authData(await client('early').signInWithPassword({ email: E1, password: PASSWORD })));
  await step('signUp_again_unconfirmed', async () => authData(await client('again0').signUp({ email: E1, password: PASSWORD })));
  await step('resend_signup', async () => c.resend({ type: 'signup', email: E1, options: { emailRedirectTo: `${SITE_URL}/confirmed` } }));
  let mail;
  await step('mail_confirmation', async () => (mail = await latestMail(E1, { kind: 'confirmation' })));
  await step('verifyOtp_wrong_code', async () => authData(await client('guess').verifyOtp({ email: E1, token: mail.code === '000000' ? '111111' : '000000', type: 'signup' })));
  await step('verifyOtp_signup', async () => authData(await c.verifyOtp({ email: E1, token: mail.code, type: 'signup' })));
  // Signing up again with a confirmed address: no error, no session, a user without identities.
  await step('signUp_existing_confirmed', async () => authData(await client('again1').signUp({ email: E1, password: 'another-password-1' })));
  await step('verifyOtp_signup_reused', async () => authData(await client('again').verifyOtp({ email: E1, token: mail.code, type: 'signup' })));
  await step('getUser_confirmed', async () => c.getUser());
  await step('resend_signup_confirmed', async () => c.resend({ type: 'signup', email: E1 }));

  // Magic link / OTP for the now confirmed user: by code, then by token hash.
  const m = client('magic');
  await step('signInWithOtp', async () => m.signInWithOtp({ email: E1, options: { emailRedirectTo: `${SITE_URL}/magic` } }));
  await step('mail_magiclink', async () => (mail = await latestMail(E1, { kind: 'magic_link' })));
  await step('verifyOtp_email_code', async () => authData(await m.verifyOtp({ email: E1, token: mail.code, type: 'email' })));
  const h = client('hash');
  await step('signInWithOtp_again', async () => h.signInWithOtp({ email: E1 }));
  await step('mail_magiclink_again', async () => (mail = await latestMail(E1, { kind: 'magic_link' })));
  await step('verifyOtp_token_hash', async () => authData(await h.verifyOtp({ token_hash: mail.token_hash, type: mail.type })));
  await step('verifyOtp_token_hash_reused', async () => authData(await client('hash2').verifyOtp({ token_hash: mail.token_hash, type: mail.type })));

  // OTP sign-in of an unknown address creates the user; shouldCreateUser: false refuses.
  const E2 = email('otp-new');
  const n = client('newuser');
  await step('signInWithOtp_new_user', async () => n.signInWithOtp({ email: E2, options: { data: { source: 'otp' } } }));
  await step('mail_new_user', async () => (mail = await latestMail(E2)));
  await step('verifyOtp_new_user_token_hash', async () => authData(await n.verifyOtp({ token_hash: mail.token_hash, type: 'email' })));
  await step('signInWithOtp_no_create', async () => client('nocreate').signInWithOtp({ email: email('otp-none'), options: { shouldCreateUser: false } }));

  // Password recovery by code: PASSWORD_RECOVERY, then a new password.
  const r = client('recovery');
  await step('resetPasswordForEmail', async () => r.resetPasswordForEmail(E1, { redirectTo: `${SITE_URL}/reset` }));
  await step('mail_recovery', async () => (mail = await latestMail(E1, { kind: 'recovery' })));
  await step('verifyOtp_recovery', async () => authData(await r.verifyOtp({ email: E1, token: mail.code, type: 'recovery' })));
  await step('updateUser_password_after_recovery', async () => r.updateUser({ password: `${PASSWORD}-reset` }));
  await step('signIn_after_recovery', async () => authData(await client('after').signInWithPassword({ email: E1, password: `${PASSWORD}-reset` })));
  await step('resetPasswordForEmail_unknown', async () => client('unknownreset').resetPasswordForEmail(email('otp-unknown')));

  // Reauthentication nonce for a password change.
  await step('reauthenticate', async () => r.reauthenticate());
  await step('mail_reauthentication', async () => (mail = await latestMail(E1, { kind: 'reauthentication' })));
  await step('updateUser_password_with_nonce', async () => r.updateUser({ password: `${PASSWORD}-nonce`, nonce: mail.code }));
  await step('signIn_after_nonce', async () => authData(await client('after2').signInWithPassword({ email: E1, password: `${PASSWORD}-nonce` })));

  // Secure email change: one code to the new address, one to the current one.
  await secureEmailChange(r, { current: E1, moved: email('otp-moved'), password: `${PASSWORD}-nonce`, fresh: () => client('moved') });
};

/** Open the newest mailed link and exchange the ?code= it redirects to, like an app's callback page. */
async function pkceCallback(c, to, kind, name) {
  let mail;
  let hop;
  await step(`${name}_mail`, async () => (mail = await latestMail(to, { kind })));
  await step(`${name}_follow_link`, async () => (hop = await followLink(mail.link)));
  const exchanged = await step(`${name}_exchangeCodeForSession`, async () => authData(await c.exchangeCodeForSession(hop.query.code)));
  await step(`${name}_link_reused`, async () => followLink(mail.link));
  return exchanged;
}

scenarios.pkce = async () => {
  const admin = adminApi();
  const E1 = email('pkce');
  const p = client('pkce', { flowType: 'pkce' });

  await step('signUp', async () => authData(await p.signUp({
    email: E1, password: PASSWORD, options: { emailRedirectTo: `${SITE_URL}/callback` },
  })));
  await step('verifier_stored', async () => ({ data: { keys: [...p.testStorage.items.keys()] }, error: null }));
  // An implicit-flow client asks for another confirmation mail at once: too soon.
  await step('resend_too_soon', async () => client('impatient').resend({ type: 'signup', email: E1 }));
  await pkceCallback(p, E1, 'confirmation', 'signup');
  await step('verifier_removed', async () => ({ data: { keys: [...p.testStorage.items.keys()] }, error: null }));
  await step('exchange_without_verifier', async () => authData(await client('late', { flowType: 'pkce' }).exchangeCodeForSession('0b9ac3c1-6f0e-4bb4-9b9e-8a6d6b1f6f0e')));

  const m = client('pkce-magic', { flowType: 'pkce' });
  await step('signInWithOtp', async () => m.signInWithOtp({ email: E1, options: { emailRedirectTo: `${SITE_URL}/magic` } }));
  await pkceCallback(m, E1, 'magic_link', 'magiclink');

  // Recovery for another (admin-created, confirmed) user: the exchange reports 'recovery'.
  const E2 = email('pkce-reset');
  await admin.createUser({ email: E2, password: PASSWORD, email_confirm: true });
  const r = client('pkce-recovery', { flowType: 'pkce' });
  await step('resetPasswordForEmail', async () => r.resetPasswordForEmail(E2, { redirectTo: `${SITE_URL}/reset` }));
  await step('recovery_verifier_stored', async () => ({ data: { values: [...r.testStorage.items.values()].filter((v) => typeof v === 'string') }, error: null }));
  await pkceCallback(r, E2, 'recovery', 'recovery');
  await step('updateUser_password_after_recovery', async () => r.updateUser({ password: `${PASSWORD}-reset` }));
  await step('signIn_after_recovery', async () => authData(await client('after').signInWithPassword({ email: E2, password: `${PASSWORD}-reset` })));

  // A code presented with the wrong verifier: the exchange fails on the server.
  const E3 = email('pkce-wrong');
  await admin.createUser({ email: E3, password: PASSWORD, email_confirm: true });
  const w = client('pkce-wrong', { flowType: 'pkce' });
  await step('signInWithOtp_wrong_verifier', async () => w.signInWithOtp({ email: E3 }));
  const mail = await latestMail(E3, { kind: 'magic_link' });
  const hop = await followLink(mail.link);
  for (const [key, value] of w.testStorage.items) {
    const verifier = key.endsWith('-code-verifier') ? JSON.parse(value) : null;
    if (typeof verifier === 'string') w.testStorage.items.set(key, JSON.stringify(`${verifier.slice(0, -4)}abcd`));
  }
  await step('exchange_bad_verifier', async () => authData(await w.exchangeCodeForSession(hop.query.code)));

  // Email change in a PKCE flow: two links; the second hands out the code.
  const E4 = email('pkce-moved');
  await step('updateUser_email', async () => p.updateUser({ email: E4 }, { emailRedirectTo: `${SITE_URL}/moved` }));
  let first;
  let second;
  await step('email_change_follow_first', async () => (first = await followLink((await latestMail(E1, { kind: 'email_change' })).link)));
  await step('email_change_follow_second', async () => (second = await followLink((await latestMail(E4, { kind: 'email_change' })).link)));
  await step('email_change_exchangeCodeForSession', async () => authData(await p.exchangeCodeForSession(second.query.code ?? first.query.code)));
};

scenarios.url = async () => {
  // The client reads window.location on initialize() when detectSessionInUrl is on. A minimal
  // stand-in for the browser globals it touches: location, history, event listeners.
  const listeners = [];
  const fakeWindow = {
    location: { href: `${SITE_URL}/`, hash: '' },
    history: { state: null, replaceState: (_state, _title, url) => { fakeWindow.location.href = url; } },
    addEventListener: (...args) => listeners.push(args),
    removeEventListener: () => {},
  };
  globalThis.window = fakeWindow;
  globalThis.document = { visibilityState: 'visible', addEventListener: () => {}, removeEventListener: () => {} };

  const admin = adminApi();
  const E1 = email('url-reset');
  await admin.createUser({ email: E1, password: PASSWORD, email_confirm: true });
  await client('asker', { detectSessionInUrl: false }).resetPasswordForEmail(E1, { redirectTo: `${SITE_URL}/reset?next=account` });
  let hop;
  let recoveryLink;
  await step('recovery_follow_link', async () => {
    recoveryLink = (await latestMail(E1, { kind: 'recovery' })).link;
    return (hop = await followLink(recoveryLink));
  });

  const landing = async (name, location) => {
    fakeWindow.location.href = location;
    fakeWindow.location.hash = new URL(location).hash;
    return step(`${name}_initialize`, async () => {
      // The constructor starts initialize(), which reads the URL at once.
      const c = client(name, { detectSessionInUrl: true });
      const { error } = await c.initialize();
      return { data: { session: await session(c), hash_after: fakeWindow.location.hash }, error };
    });
  };
  await landing('recovery', hop.location);

  // The same link again: the error redirect the client turns into an error.
  await step('recovery_link_reused', async () => (hop = await followLink(recoveryLink)));
  await landing('reused', hop.location);

  // A sign-up confirmation link: SIGNED_IN.
  const E2 = email('url-signup');
  await client('signup', { detectSessionInUrl: false }).signUp({ email: E2, password: PASSWORD, options: { emailRedirectTo: `${SITE_URL}/welcome` } });
  await step('signup_follow_link', async () => (hop = await followLink((await latestMail(E2, { kind: 'confirmation' })).link)));
  await landing('signup', hop.location);
};

scenarios.edge = async () => {
  // Server: GOTRUE_JWT_EXP=60 (inside auth-js's 90 s expiry margin), GOTRUE_PASSWORD_MIN_LENGTH=12.
  const E = email('edge');
  await step('admin_createUser_short_password', async () => adminApi().createUser({ email: E, password: 'short-pw-1', email_confirm: true }));
  const c = client('edge');
  await step('signIn_weak_password', async () => authData(await c.signInWithPassword({ email: E, password: 'short-pw-1' })));
  // The stored session is about to expire: getSession() refreshes it first.
  await step('getSession_near_expiry', async () => ({ data: { session: await session(c) }, error: null }));
  await step('getUser_after_auto_refresh', async () => c.getUser());
  await step('updateUser_short_password', async () => c.updateUser({ password: 'short-pw-2' }));
  await step('updateUser_long_password', async () => c.updateUser({ password: 'a-long-enough-password-1' }));
  await step('signIn_strong_password', async () => authData(await client('strong').signInWithPassword({ email: E, password: 'a-long-enough-password-1' })));
};

scenarios.claims = async () => {
  const c = client('claims');
  await step('signUp', async () => authData(await c.signUp({ email: email('claims'), password: PASSWORD })));
  await step('getUser', async () => c.getUser());
  await step('getClaims', async () => c.getClaims());
  await step('getClaims_cached', async () => c.getClaims());
  await step('getClaims_forged', async () => {
    const token = (await c.getSession()).data.session.access_token;
    const [header, , signature] = token.split('.');
    const claims = { ...decodeJwt(token).payload, role: 'service_role' };
    const forged = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
    return c.getClaims(forged);
  });
  await step('refreshSession', async () => authData(await c.refreshSession()));
  await step('admin_listUsers', async () => adminApi().listUsers({ page: 1, perPage: 10 }));
};

scenarios.admin = async () => {
  const admin = adminApi();
  const E = (n) => email(`adm${n}`);

  await step('createUser', async () => admin.createUser({
    email: E(1), password: PASSWORD, email_confirm: true,
    user_metadata: { name: 'Grace' }, app_metadata: { plan: 'gold' },
  }));
  const created = (await admin.createUser({ email: E(2), password: PASSWORD })).data.user;
  await admin.createUser({ email: E(3), email_confirm: true });
  await admin.createUser({ email: E(10), password: PASSWORD, email_confirm: true });
  await step('createUser_existing', async () => admin.createUser({ email: E(1), password: PASSWORD }));
  await step('signIn_created_user', async () => authData(await client('grace').signInWithPassword({ email: E(1), password: PASSWORD })));
  await step('signIn_unconfirmed_created_user', async () => authData(await client('unconfirmed').signInWithPassword({ email: E(2), password: PASSWORD })));

  await step('listUsers_page1', async () => admin.listUsers({ page: 1, perPage: 2 }));
  await step('listUsers_page2', async () => admin.listUsers({ page: 2, perPage: 2 }));
  await step('listUsers_default', async () => admin.listUsers());

  await step('getUserById', async () => admin.getUserById(created.id));
  await step('getUserById_unknown', async () => admin.getUserById('5b3c9d0e-3f59-4c27-8f7a-1d2e3f4a5b6c'));
  await step('updateUserById', async () => admin.updateUserById(created.id, {
    email_confirm: true, user_metadata: { nickname: 'bob' }, app_metadata: { tier: 2 }, role: 'authenticated',
  }));
  await step('signIn_after_confirm', async () => authData(await client('bob').signInWithPassword({ email: E(2), password: PASSWORD })));
  await step('updateUserById_password', async () => admin.updateUserById(created.id, { password: `${PASSWORD}-admin` }));
  await step('signIn_after_admin_password', async () => authData(await client('bob2').signInWithPassword({ email: E(2), password: `${PASSWORD}-admin` })));
  await step('updateUserById_ban', async () => admin.updateUserById(created.id, { ban_duration: '24h' }));
  await step('signIn_banned', async () => authData(await client('bob3').signInWithPassword({ email: E(2), password: `${PASSWORD}-admin` })));
  await step('updateUserById_unban', async () => admin.updateUserById(created.id, { ban_duration: 'none' }));

  await step('mfa_listFactors', async () => admin.mfa.listFactors({ userId: created.id }));

  await step('inviteUserByEmail', async () => admin.inviteUserByEmail(E(4), { data: { team: 'blue' }, redirectTo: `${SITE_URL}/join` }));
  await step('inviteUserByEmail_mail', async () => latestMail(E(4), { kind: 'invite' }));
  await step('inviteUserByEmail_existing', async () => admin.inviteUserByEmail(E(1)));
  // The invitee: the mailed code gives a session, then they choose a password.
  const invitee = client('invitee');
  await step('invite_verifyOtp', async () => {
    const mail = await latestMail(E(4), { kind: 'invite' });
    return authData(await invitee.verifyOtp({ email: E(4), token: mail.code, type: 'invite' }));
  });
  await step('invite_updateUser_password', async () => invitee.updateUser({ password: `${PASSWORD}-invited` }));
  await step('invite_signIn', async () => authData(await client('invitee2').signInWithPassword({ email: E(4), password: `${PASSWORD}-invited` })));

  const links = {};
  for (const [type, extra] of [
    ['signup', { email: E(5), password: PASSWORD, options: { data: { via: 'link' }, redirectTo: `${SITE_URL}/welcome` } }],
    ['invite', { email: E(6), options: { data: { via: 'invite' } } }],
    ['magiclink', { email: E(1) }],
    ['recovery', { email: E(10), options: { redirectTo: `${SITE_URL}/reset` } }],
    ['email_change_current', { email: E(3), newEmail: E(7) }],
    ['email_change_new', { email: E(3), newEmail: E(7) }],
  ]) {
    const res = await step(`generateLink_${type}`, async () => admin.generateLink({ type, ...extra }));
    links[type] = res.data?.properties;
  }
  await step('generateLink_recovery_unknown', async () => admin.generateLink({ type: 'recovery', email: E(99) }));
  // The generated links work for the user: a hashed token, an OTP and an action link.
  await step('verify_generated_magiclink', async () => authData(await client('gen1').verifyOtp({ token_hash: links.magiclink.hashed_token, type: 'magiclink' })));
  await step('verify_generated_signup_otp', async () => authData(await client('gen2').verifyOtp({ email: E(5), token: links.signup.email_otp, type: 'signup' })));
  await step('follow_generated_recovery', async () => followLink(links.recovery.action_link));

  await step('admin_with_anon_key', async () => adminApi(ANON_KEY, 'anon-admin').listUsers());
  await step('admin_with_user_token', async () => {
    const token = (await client('plain').signInWithPassword({ email: E(1), password: PASSWORD })).data.session.access_token;
    return adminApi(token, 'user-admin').createUser({ email: E(8) });
  });

  await step('deleteUser', async () => admin.deleteUser(created.id));
  await step('getUserById_deleted', async () => admin.getUserById(created.id));
  const soft = (await admin.createUser({ email: E(9), password: PASSWORD, email_confirm: true })).data.user;
  await step('deleteUser_soft', async () => admin.deleteUser(soft.id, true));
  await step('getUserById_soft_deleted', async () => admin.getUserById(soft.id));
  await step('signIn_soft_deleted', async () => authData(await client('ghost').signInWithPassword({ email: E(9), password: PASSWORD })));

  // signOut through the admin API with a user's JWT.
  const s = (await client('victim').signInWithPassword({ email: E(1), password: PASSWORD })).data.session;
  await step('admin_signOut', async () => admin.signOut(s.access_token, 'global'));
  await step('admin_signOut_token_rejected', async () => client('probe').getUser(s.access_token));
};

scenarios.captcha = async () => {
  const tokens = (process.env.GL_CAPTCHA_TOKENS ?? '').split(',').filter(Boolean);
  const captchaToken = () => {
    if (!tokens.length) throw new Error('GL_CAPTCHA_TOKENS ran out');
    return tokens.shift();
  };
  const main = client('main');
  const E1 = email('cap');
  await step('signUp_no_token', async () => authData(await main.signUp({ email: E1, password: PASSWORD })));
  await step('signUp', async () => authData(await main.signUp({
    email: E1, password: PASSWORD, options: { captchaToken: captchaToken() },
  })));
  await step('signIn_no_token', async () => authData(await client('bare').signInWithPassword({ email: E1, password: PASSWORD })));
  await step('signIn_bad_token', async () => authData(await client('forged').signInWithPassword({
    email: E1, password: PASSWORD, options: { captchaToken: 'forged-token' },
  })));
  await step('signInWithPassword', async () => authData(await main.signInWithPassword({
    email: E1, password: PASSWORD, options: { captchaToken: captchaToken() },
  })));
  await step('refreshSession', async () => authData(await main.refreshSession()));
  await step('resetPasswordForEmail', async () => main.resetPasswordForEmail(E1, { captchaToken: captchaToken() }));
  await step('signInWithOtp', async () => authData(await client('otp').signInWithOtp({
    email: E1, options: { shouldCreateUser: false, captchaToken: captchaToken() },
  })));
  await step('resend', async () => client('resend').resend({ type: 'signup', email: E1, options: { captchaToken: captchaToken() } }));
  await step('signInAnonymously_no_token', async () => authData(await client('anon0').signInAnonymously()));
  await step('signInAnonymously', async () => authData(await client('anon').signInAnonymously({
    options: { captchaToken: captchaToken() },
  })));
};

// --- MFA ----------------------------------------------------------------------------------------

// Seven digits of the run's tag: a phone number of its own for each run.
const TAG_DIGITS = String(parseInt(createHmac('sha1', 'tag').update(email('x')).digest('hex').slice(0, 8), 16)).padStart(7, '0').slice(-7);

/** RFC 6238 TOTP (SHA-1, 6 digits, 30 s) of a base32 secret, as an authenticator app computes it. */
function totp(secret, at = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(value).padStart(6, '0');
}

scenarios.mfa = async () => {
  const main = client('main');
  const E1 = email('mfa');
  const { data: signedUp } = await main.signUp({ email: E1, password: PASSWORD });
  const userId = signedUp.user.id;
  await step('aal_before', async () => main.mfa.getAuthenticatorAssuranceLevel());

  const enrolled = await step('enroll', async () => main.mfa.enroll({ factorType: 'totp', friendlyName: 'phone app', issuer: 'Example' }));
  const factorId = enrolled.data.id;
  const secret = enrolled.data.totp.secret;
  await step('enroll_duplicate_name', async () => main.mfa.enroll({ factorType: 'totp', friendlyName: 'phone app' }));
  await step('listFactors_pending', async () => main.mfa.listFactors());

  const challenged = await step('challenge', async () => main.mfa.challenge({ factorId }));
  const wrong = totp(secret) === '000000' ? '111111' : '000000';
  await step('verify_wrong', async () => main.mfa.verify({ factorId, challengeId: challenged.data.id, code: wrong }));
  const usedCode = totp(secret);
  await step('verify', async () => authData(await main.mfa.verify({ factorId, challengeId: challenged.data.id, code: usedCode })));
  await step('verify_reused_challenge', async () => main.mfa.verify({ factorId, challengeId: challenged.data.id, code: totp(secret) }));
  await step('session_after_verify', async () => session(main));
  await step('aal_after', async () => main.mfa.getAuthenticatorAssuranceLevel());
  await step('listFactors', async () => main.mfa.listFactors());
  await step('refreshSession', async () => authData(await main.refreshSession()));

  // A later sign-in starts at aal1 and is told to step up.
  const later = client('later');
  await later.signInWithPassword({ email: E1, password: PASSWORD });
  await step('aal_signin', async () => later.mfa.getAuthenticatorAssuranceLevel());
  await step('enroll_at_aal1', async () => later.mfa.enroll({ factorType: 'totp', friendlyName: 'second' }));
  await step('unenroll_at_aal1', async () => later.mfa.unenroll({ factorId }));
  // The code main used is spent, even through a new challenge; the next one (still in the window) works.
  await step('challengeAndVerify_replayed', async () => later.mfa.challengeAndVerify({ factorId, code: usedCode }));
  await step('challengeAndVerify', async () => authData(await later.mfa.challengeAndVerify({ factorId, code: totp(secret, Date.now() + 30_000) })));
  await step('aal_later', async () => later.mfa.getAuthenticatorAssuranceLevel());

  // Pending factors, unenrolled by the user or deleted by an admin.
  const spare = (await later.mfa.enroll({ factorType: 'totp', friendlyName: 'spare' })).data;
  const spare2 = (await later.mfa.enroll({ factorType: 'totp', friendlyName: 'spare2' })).data;
  await step('unenroll_pending', async () => later.mfa.unenroll({ factorId: spare.id }));
  const admin = adminApi();
  await step('admin_listFactors', async () => admin.mfa.listFactors({ userId }));
  await step('admin_deleteFactor', async () => admin.mfa.deleteFactor({ userId, id: spare2.id }));
  await step('admin_deleteFactor_again', async () => admin.mfa.deleteFactor({ userId, id: spare2.id }));

  // The aal2 session drops the verified factor; its next token is aal1 again.
  await step('unenroll', async () => later.mfa.unenroll({ factorId }));
  await step('refresh_after_unenroll', async () => authData(await later.refreshSession()));
  await step('aal_after_unenroll', async () => later.mfa.getAuthenticatorAssuranceLevel());
  await step('listFactors_after_unenroll', async () => later.mfa.listFactors());

  // A phone factor: the code arrives by SMS (the dev outbox stands in for the phone).
  const phoneUser = client('phone');
  await phoneUser.signUp({ email: email('mfaphone'), password: PASSWORD });
  const number = `1555${TAG_DIGITS}`;
  const phoneFactor = await step('enroll_phone', async () => phoneUser.mfa.enroll({ factorType: 'phone', phone: `+${number}`, friendlyName: 'mobile' }));
  const smsChallenge = await step('challenge_phone', async () => phoneUser.mfa.challenge({ factorId: phoneFactor.data.id, channel: 'sms' }));
  const sms = await step('sms', async () => {
    const res = await fetch(`${serverUrl}/_dev/mail?phone=${number}`);
    return (await res.json()).messages[0];
  });
  await step('verify_phone', async () => authData(await phoneUser.mfa.verify({ factorId: phoneFactor.data.id, challengeId: smsChallenge.data.id, code: sms.data.code })));
  await step('aal_phone', async () => phoneUser.mfa.getAuthenticatorAssuranceLevel());
  await step('listFactors_phone', async () => phoneUser.mfa.listFactors());
};

scenarios.webauthn = async () => {
  const main = client('main');
  await main.signUp({ email: email('key'), password: PASSWORD });
  await main.initialize();
  const device = new SoftAuthenticator(SITE_URL);
  device.install();
  const rp = { rpId: 'localhost', rpOrigins: [SITE_URL] };

  await step('register', async () => authData(await main.mfa.webauthn.register({ friendlyName: 'security key', webauthn: rp })));
  await step('aal_registered', async () => main.mfa.getAuthenticatorAssuranceLevel());
  await step('listFactors', async () => main.mfa.listFactors());
  const factorId = (await main.mfa.listFactors()).data.webauthn[0].id;
  // A later sign-in (the step-up above logged out the other aal1 sessions) steps up with the key.
  const later = client('later');
  await later.signInWithPassword({ email: email('key'), password: PASSWORD });
  await step('aal_later', async () => later.mfa.getAuthenticatorAssuranceLevel());
  await step('authenticate', async () => authData(await later.mfa.webauthn.authenticate({ factorId, webauthn: rp })));
  await step('aal_authenticated', async () => later.mfa.getAuthenticatorAssuranceLevel());
  // Another origin's authenticator is refused by the server.
  const other = client('other');
  await other.signInWithPassword({ email: email('key'), password: PASSWORD });
  device.origin = 'https://evil.example';
  await step('authenticate_wrong_origin', async () => other.mfa.webauthn.authenticate({ factorId, webauthn: rp }));
  await step('authenticator_calls', async () => device.calls);
};

scenarios.identities = async () => {
  const main = client('main');
  const address = process.env.GL_IDENTITY_EMAIL;
  await main.signInWithPassword({ email: address, password: PASSWORD });
  const res = await step('getUserIdentities', async () => main.getUserIdentities());
  const github = res.data.identities.find((i) => i.provider === 'github');
  await step('unlinkIdentity', async () => main.unlinkIdentity(github));
  const after = await step('getUserIdentities_after', async () => main.getUserIdentities());
  await step('unlinkIdentity_last', async () => main.unlinkIdentity(after.data.identities[0]));
  await step('unlinkIdentity_again', async () => main.unlinkIdentity(github));
};

scenarios.id_token = async () => {
  const main = client('main');
  const env = process.env;
  await step('signInWithIdToken', async () => authData(await main.signInWithIdToken({
    provider: 'keycloak', token: env.GL_ID_TOKEN, nonce: env.GL_NONCE,
  })));
  await step('getUserIdentities', async () => main.getUserIdentities());
  await step('signInWithIdToken_wrong_audience', async () => authData(await client('bad').signInWithIdToken({
    provider: 'keycloak', token: env.GL_ID_TOKEN_WRONG_AUD,
  })));
  await step('signInWithIdToken_nonce_mismatch', async () => authData(await client('nonce').signInWithIdToken({
    provider: 'keycloak', token: env.GL_ID_TOKEN, nonce: 'another-nonce',
  })));
  await step('linkIdentity_id_token', async () => authData(await main.linkIdentity({
    provider: 'keycloak', token: env.GL_ID_TOKEN_LINK,
  })));
  await step('getUserIdentities_linked', async () => main.getUserIdentities());
};

// oauth     GOTRUE_EXTERNAL_KEYCLOAK_* pointing at the local OpenID provider (tests/idp),
//           SECURITY_MANUAL_LINKING_ENABLED: signInWithOAuth (skipBrowserRedirect) in PKCE and
//           implicit mode, exchangeCodeForSession, the implicit fragment read on initialize()
//           (detectSessionInUrl), linkIdentity. The browser part is pytest's: each step
//           `<name>_url` prints the URL to open, and pytest answers on stdin with where the
//           redirects landed (GL_LOGIN_HINTS: the provider accounts to log in as, comma-separated).
scenarios.oauth = async () => {
  const { createInterface } = await import('node:readline');
  const answers = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const [firstHint, linkHint, implicitHint] = (process.env.GL_LOGIN_HINTS ?? '').split(',');
  const open = async (name, url) => {
    await step(`${name}_url`, async () => ({ data: { url }, error: null }));
    return (await answers.next()).value;
  };
  const oauthOptions = (hint) => ({
    skipBrowserRedirect: true, redirectTo: `${SITE_URL}/cb`, scopes: 'openid', queryParams: { login_hint: hint },
  });

  // PKCE: the code comes back in the query and is exchanged with the stored verifier.
  const pkce = client('pkce', { flowType: 'pkce' });
  const started = await step('signInWithOAuth_pkce', async () =>
    pkce.signInWithOAuth({ provider: 'keycloak', options: oauthOptions(firstHint) }));
  const landedPkce = await open('pkce', started.data.url);
  const code = new URL(landedPkce).searchParams.get('code');
  await step('exchangeCodeForSession', async () => {
    const result = await pkce.exchangeCodeForSession(code);
    const { provider_token: providerToken, provider_refresh_token: providerRefreshToken } = result.data?.session ?? {};
    const summary = authData(result);
    return { data: { ...summary.data, provider_tokens: [providerToken ?? null, providerRefreshToken ?? null] },
      error: summary.error };
  });
  await step('exchange_again', async () => authData(await pkce.exchangeCodeForSession(code)));
  await step('getUserIdentities', async () => pkce.getUserIdentities());

  // linkIdentity: a password user links a keycloak account (PKCE, so a code again).
  const linker = client('linker', { flowType: 'pkce' });
  await linker.signUp({ email: email('linker'), password: PASSWORD });
  const link = await step('linkIdentity', async () =>
    linker.linkIdentity({ provider: 'keycloak', options: oauthOptions(linkHint) }));
  const landedLink = await open('link', link.data.url);
  await step('exchange_linked', async () =>
    authData(await linker.exchangeCodeForSession(new URL(landedLink).searchParams.get('code'))));
  await step('linked_identities', async () => linker.getUserIdentities());

  // Implicit: the session arrives in the fragment, read the way the client reads a URL.
  const implicit = client('implicit', { flowType: 'implicit' });
  const begun = await step('signInWithOAuth_implicit', async () =>
    implicit.signInWithOAuth({ provider: 'keycloak', options: oauthOptions(implicitHint) }));
  const landedImplicit = await open('implicit', begun.data.url);
  const fakeWindow = {
    location: { href: landedImplicit, hash: new URL(landedImplicit).hash },
    history: { state: null, replaceState: (_state, _title, url) => { fakeWindow.location.href = url; } },
    addEventListener: () => {},
    removeEventListener: () => {},
  };
  globalThis.window = fakeWindow;
  globalThis.document = { visibilityState: 'visible', addEventListener: () => {}, removeEventListener: () => {} };
  await step('implicit_initialize', async () => {
    const c = client('landing', { flowType: 'implicit', detectSessionInUrl: true });
    const { error } = await c.initialize();
    return { data: { session: await session(c), user: (await c.getUser()).data.user }, error };
  });
};

// --- run ---------------------------------------------------------------------------------------

scenarios.phone = () => phoneFlows((label) => client(label));

const run = scenarios[scenario];
if (!run) {
  fail(new Error(`unknown scenario ${scenario}; known: ${Object.keys(scenarios).join(', ')}`));
} else {
  run().then(done, fail);
}
