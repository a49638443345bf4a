// The `auth` namespace of the published @supabase/supabase-js, created the way apps create it:
// createClient(<server root>, <anon key>) — so every call goes to <server>/auth/v1/… with the
// apikey header and `Authorization: Bearer <anon key or access token>`.
// Usage: node supabase_js.mjs <scenario> <server-url>   (see lib.mjs for the environment and output)
//
// Scenarios:
//   core   MAILER_AUTOCONFIRM=true, anonymous sign-ins on: the everyday flows and the admin API
//   email  MAILER_AUTOCONFIRM=false: confirmation / recovery / OTP codes and token hashes, resend,
//          setSession, signOut others, reauthenticate, email change, and a PKCE magic link
//   claims GOTRUE_JWT_KEYS with an asymmetric signing key: getClaims via /auth/v1/.well-known/jwks.json
//   phone  EXTERNAL_PHONE_ENABLED, no SMS provider: lib.mjs phoneFlows (codes from the dev outbox)

import { createClient } from '@supabase/supabase-js';

import {
  ANON_KEY, PASSWORD, SERVICE_ROLE_KEY, SITE_URL, authData, done, email, fail, followLink,
  latestMail, memoryStorage, phoneFlows, recordEvents, recordingFetch, scenario, serverUrl, secureEmailChange,
  sessionSummary, step,
} from './lib.mjs';

// Node 20 has no global WebSocket, which supabase-js's realtime client insists on at creation.
// Realtime is never used here; a stand-in that refuses to connect keeps createClient working.
class NoWebSocket {
  constructor() { throw new Error('realtime is not used in these tests'); }
}
const realtime = typeof globalThis.WebSocket === 'function' ? {} : { transport: NoWebSocket };

let count = 0;

function supabase(label, key = ANON_KEY, auth = {}) {
  count += 1;
  const storage = memoryStorage();
  const client = createClient(serverUrl, key, {
    auth: {
      storage,
      storageKey: `sb-supabase-js-${label}-${count}`,
      persistSession: true,
      autoRefreshToken: false,
      detectSessionInUrl: false,
      ...auth,
    },
    global: { fetch: recordingFetch(label) },
    realtime,
  });
  client.testStorage = storage;
  recordEvents(client.auth, label);
  return client;
}

const session = async (auth) => sessionSummary((await auth.getSession()).data.session);

const scenarios = {};

scenarios.core = async () => {
  const { auth } = supabase('app');
  const E1 = email('sb');
  await step('signUp', async () => authData(await auth.signUp({
    email: E1, password: PASSWORD, options: { data: { name: 'Lin' }, emailRedirectTo: `${SITE_URL}/welcome` },
  })));
  await step('signUp_existing', async () => authData(await supabase('dup').auth.signUp({ email: E1, password: PASSWORD })));
  await step('signUp_weak_password', async () => authData(await supabase('weak').auth.signUp({ email: email('sb-weak'), password: 'short' })));
  await step('signIn_wrong_password', async () => authData(await supabase('wrong').auth.signInWithPassword({ email: E1, password: 'not-the-password' })));
  await step('signInWithPassword', async () => authData(await auth.signInWithPassword({ email: E1, password: PASSWORD })));
  await step('getSession', async () => ({ data: { session: await session(auth) }, error: null }));
  await step('getUser', async () => auth.getUser());
  await step('getClaims', async () => auth.getClaims());
  await step('refreshSession', async () => authData(await auth.refreshSession()));
  await step('updateUser', async () => auth.updateUser({ data: { name: 'Lin Yu', lang: 'en' } }));
  await step('resetPasswordForEmail', async () => auth.resetPasswordForEmail(E1, { redirectTo: `${SITE_URL}/reset` }));
  await step('signInAnonymously', async () => authData(await supabase('anon').auth.signInAnonymously()));

  const other = supabase('other').auth;
  await other.signInWithPassword({ email: E1, password: PASSWORD });
  await step('signOut_local', async () => other.signOut({ scope: 'local' }));
  await step('after_local_main_still_in', async () => auth.getUser());
  await step('signOut', async () => auth.signOut());
  await step('getSession_after_signOut', async () => ({ data: { session: await session(auth) }, error: null }));

  // The admin API through a service_role client.
  const admin = supabase('admin', SERVICE_ROLE_KEY).auth.admin;
  let created;
  await step('admin_createUser', async () => {
    const res = await admin.createUser({ email: email('sb-admin'), password: PASSWORD, email_confirm: true, user_metadata: { by: 'admin' } });
    created = res.data.user;
    return res;
  });
  await step('admin_listUsers', async () => admin.listUsers({ page: 1, perPage: 1 }));
  await step('admin_getUserById', async () => admin.getUserById(created.id));
  await step('admin_updateUserById', async () => admin.updateUserById(created.id, { user_metadata: { by: null, level: 3 } }));
  await step('admin_generateLink', async () => admin.generateLink({ type: 'magiclink', email: E1, options: { redirectTo: `${SITE_URL}/magic` } }));
  await step('admin_inviteUserByEmail', async () => admin.inviteUserByEmail(email('sb-invited')));
  await step('admin_deleteUser', async () => admin.deleteUser(created.id));
  await step('admin_with_anon_key', async () => supabase('anon-admin').auth.admin.listUsers());
};

scenarios.email = async () => {
  const E1 = email('sb-mail');
  const { auth } = supabase('mail');
  await step('signUp', async () => authData(await auth.signUp({ email: E1, password: PASSWORD })));
  await step('resend_signup', async () => auth.resend({ type: 'signup', email: E1, options: { emailRedirectTo: `${SITE_URL}/confirmed` } }));
  let mail;
  await step('mail_confirmation', async () => (mail = await latestMail(E1, { kind: 'confirmation' })));
  await step('verifyOtp_signup', async () => authData(await auth.verifyOtp({ email: E1, token: mail.code, type: 'signup' })));

  const recovery = supabase('recovery').auth;
  await step('resetPasswordForEmail', async () => recovery.resetPasswordForEmail(E1));
  await step('mail_recovery', async () => (mail = await latestMail(E1, { kind: 'recovery' })));
  await step('verifyOtp_recovery', async () => authData(await recovery.verifyOtp({ token_hash: mail.token_hash, type: 'recovery' })));
  await step('updateUser_password', async () => recovery.updateUser({ password: `${PASSWORD}-2` }));

  // Email OTP for the confirmed user: the mailed code, then the link's token hash.
  const otp = supabase('otp').auth;
  await step('signInWithOtp', async () => otp.signInWithOtp({ email: E1, options: { emailRedirectTo: `${SITE_URL}/magic` } }));
  await step('mail_magiclink', async () => (mail = await latestMail(E1, { kind: 'magic_link' })));
  await step('verifyOtp_email_code', async () => authData(await otp.verifyOtp({ email: E1, token: mail.code, type: 'email' })));
  const hash = supabase('hash').auth;
  await step('signInWithOtp_again', async () => hash.signInWithOtp({ email: E1 }));
  await step('mail_magiclink_again', async () => (mail = await latestMail(E1, { kind: 'magic_link' })));
  await step('verifyOtp_token_hash', async () => authData(await hash.verifyOtp({ token_hash: mail.token_hash, type: mail.type })));
  await step('verifyOtp_token_hash_reused', async () => authData(await supabase('hash2').auth.verifyOtp({ token_hash: mail.token_hash, type: mail.type })));

  // Another device adopts the tokens of `hash`.
  const hashed = (await hash.getSession()).data.session;
  const adopter = supabase('adopter').auth;
  await step('setSession', async () => authData(await adopter.setSession({
    access_token: hashed.access_token, refresh_token: hashed.refresh_token,
  })));
  await step('getUser_adopted', async () => adopter.getUser());

  // signOut({scope: 'others'}) from `otp`: its own session stays, the others end.
  await step('signOut_others', async () => otp.signOut({ scope: 'others' }));
  await step('others_current_session_kept', async () => otp.getUser());
  await step('others_other_session_gone', async () => hash.getUser());
  await step('others_other_refresh_gone', async () => authData(await supabase('probe').auth.refreshSession({ refresh_token: hashed.refresh_token })));

  // Reauthentication nonce for a password change.
  await step('reauthenticate', async () => otp.reauthenticate());
  await step('mail_reauthentication', async () => (mail = await latestMail(E1, { kind: 'reauthentication' })));
  await step('updateUser_password_with_nonce', async () => otp.updateUser({ password: `${PASSWORD}-3`, nonce: mail.code }));

  // Secure email change: a code to each address, re-sent once; both needed.
  await secureEmailChange(otp, { current: E1, moved: email('sb-moved'), password: `${PASSWORD}-3`, fresh: () => supabase('moved').auth });

  const E2 = email('sb-pkce');
  await supabase('admin', SERVICE_ROLE_KEY).auth.admin.createUser({ email: E2, email_confirm: true });
  const pkce = supabase('pkce', ANON_KEY, { flowType: 'pkce' }).auth;
  await step('signInWithOtp_pkce', async () => pkce.signInWithOtp({ email: E2, options: { emailRedirectTo: `${SITE_URL}/callback` } }));
  let hop;
  await step('follow_link', async () => (hop = await followLink((await latestMail(E2, { kind: 'magic_link' })).link)));
  await step('exchangeCodeForSession', async () => authData(await pkce.exchangeCodeForSession(hop.query.code)));
};

scenarios.claims = async () => {
  const { auth } = supabase('claims');
  await step('signUp', async () => authData(await auth.signUp({ email: email('sb-claims'), password: PASSWORD })));
  await step('getClaims', async () => auth.getClaims());
  await step('getUser', async () => auth.getUser());
};

scenarios.phone = () => phoneFlows((label) => supabase(label).auth);

const run = scenarios[scenario];
if (!run) {
  fail(new Error(`unknown scenario ${scenario}; known: ${Object.keys(scenarios).join(', ')}`));
} else {
  run().then(done, fail);
}
