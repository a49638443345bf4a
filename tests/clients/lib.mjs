// Shared plumbing for the client scripts (auth_js.mjs, supabase_js.mjs), driven by
// tests/test_clients_js.py.
//
// Invocation: node <script> <scenario> <server-url>
// Environment: GL_ANON_KEY, GL_SERVICE_ROLE_KEY (HS256 API keys minted by pytest),
//              GL_TAG (makes the e-mail addresses of one run unique),
//              GL_PHONES (phone scenarios: fresh numbers, digits only; their texts land in the dev outbox).
//
// Output: one JSON object per line on stdout, one per step:
//   {"step": name, "ok": bool, "data": …, "error": {name, status, code, message} | null,
//    "requests": [{method, path, query, status, apikey, bearer}], "events": [{client, event, …}]}
// and a last line {"step": "done", "ok": true} when the scenario ran to its end. Everything the
// clients print themselves (warnings) goes to stderr.

export const [scenario, serverUrl] = process.argv.slice(2);
if (!scenario || !serverUrl) {
  process.stderr.write('usage: node <script> <scenario> <server-url>\n');
  process.exit(2);
}
export const ANON_KEY = process.env.GL_ANON_KEY ?? '';
export const SERVICE_ROLE_KEY = process.env.GL_SERVICE_ROLE_KEY ?? '';
const TAG = process.env.GL_TAG || `t${Math.random().toString(16).slice(2, 10)}`;  // never all digits: see latestMail's code

export const PASSWORD = 'correct-horse-battery-1';
export const SITE_URL = 'http://localhost:3000';

/** A fresh address for this run: `${name}-${tag}@example.com`. */
export const email = (name) => `${name}-${TAG}@example.com`;

/** Fresh phone numbers for this run (digits only). */
export const PHONES = (process.env.GL_PHONES ?? '').split(',').filter(Boolean);

// --- what happened during a step -----------------------------------------------------------

const requests = [];
const events = [];

/** A fetch that records every request the clients make (method, path, status, key headers). */
export function recordingFetch(label = 'client') {
  return async (input, init = {}) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    const auth = headers.get('authorization') ?? '';
    const entry = {
      client: label,
      method: (init.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase(),
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      apikey: headers.get('apikey'),
      bearer: auth.toLowerCase().startsWith('bearer ') ? auth.slice(7) : null,
      api_version: headers.get('x-supabase-api-version'),
      client_info: headers.get('x-client-info'),
      headers: [...headers.keys()],
      status: null,
    };
    requests.push(entry);
    const response = await fetch(input, init);
    entry.status = response.status;
    return response;
  };
}

/** Record the auth events of a client under `label`. */
export function recordEvents(client, label) {
  const { data } = client.onAuthStateChange((event, session) => {
    events.push({
      client: label,
      event,
      session: !!session,
      user_id: session?.user?.id ?? null,
      access_token: session?.access_token ?? null,
    });
  });
  return data.subscription;
}

/** An in-memory storage adapter (what a browser's localStorage would be). */
export function memoryStorage() {
  const items = new Map();
  return {
    items,
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => void items.set(key, value),
    removeItem: (key) => void items.delete(key),
  };
}

export function errorInfo(error) {
  if (!error) return null;
  const info = {
    name: error.name ?? null,
    status: error.status ?? null,
    code: error.code ?? null,
    message: error.message ?? String(error),
  };
  if (Array.isArray(error.reasons)) info.reasons = error.reasons;
  if (error.details) info.details = error.details;
  return info;
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

// Byte arrays (a JWT signature from getClaims) are summarised, not dumped number by number.
const replacer = (_key, value) => (value instanceof Uint8Array ? { bytes: value.length } : value);

function emit(line) {
  process.stdout.write(JSON.stringify(line, replacer) + '\n');
}

/**
 * Run one step. `fn` returns a client result ({data, error}) or any value (taken as data);
 * a throw is reported as an error too. Returns {data, error} for the script to continue with.
 */
export async function step(name, fn) {
  const firstRequest = requests.length;
  const firstEvent = events.length;
  let data = null;
  let error = null;
  try {
    const result = await fn();
    if (result && typeof result === 'object' && 'error' in result && ('data' in result || Object.keys(result).length === 1)) {
      data = result.data ?? null;
      error = result.error ?? null;
    } else {
      data = result ?? null;
    }
  } catch (thrown) {
    error = thrown;
  }
  // Some events are delivered from a timer (e.g. after a URL callback): let them land.
  await tick();
  await tick();
  emit({
    step: name,
    ok: !error,
    data,
    error: errorInfo(error),
    requests: requests.slice(firstRequest),
    events: events.slice(firstEvent),
  });
  return { data, error };
}

/** Emit the final line and exit (a BroadcastChannel or socket must not keep node alive). */
export function done() {
  emit({ step: 'done', ok: true, data: null, error: null, requests: [], events: [] });
  process.stdout.write('', () => process.exit(0));
}

export function fail(thrown) {
  emit({ step: 'crashed', ok: false, data: null, error: errorInfo(thrown), stack: thrown?.stack ?? null,
         requests: [], events: [] });
  process.stdout.write('', () => process.exit(1));
}

// --- JWTs and the dev mailbox ----------------------------------------------------------------

export function decodeJwt(token) {
  const [header, payload] = token.split('.').slice(0, 2).map(
    (part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')));
  return { header, payload };
}

/** The session fields a caller sees, plus the decoded access token. */
export function sessionSummary(session) {
  if (!session) return null;
  const { header, payload } = decodeJwt(session.access_token);
  return {
    access_token: session.access_token,
    refresh_token: session.refresh_token,
    token_type: session.token_type,
    expires_in: session.expires_in,
    expires_at: session.expires_at,
    user: session.user ?? null,
    jwt_header: header,
    claims: payload,
  };
}

/** A client result ({data: {user, session, …}, error}) with the session summarised. */
export function authData(result) {
  const data = result?.data;
  if (!data || typeof data !== 'object' || !('session' in data)) return result;
  return { data: { ...data, session: sessionSummary(data.session) }, error: result.error ?? null };
}

/** The newest mail to `to` in the server's dev mailbox (optionally of a kind), with the
 * link, its token hash and type, and the one-time code parsed out of it. */
export async function latestMail(to, { kind, count } = {}) {
  const res = await fetch(`${serverUrl}/_dev/mail?email=${encodeURIComponent(to)}`);
  if (!res.ok) throw new Error(`GET /_dev/mail answered ${res.status}: ${await res.text()}`);
  const { messages } = await res.json();
  const matching = messages.filter((m) => !kind || m.kind === kind);
  if (count !== undefined && matching.length !== count) {
    throw new Error(`expected ${count} ${kind ?? ''} mail(s) to ${to}, found ${matching.length}: ` +
                    JSON.stringify(messages.map((m) => [m.kind, m.subject])));
  }
  const message = matching[0];
  if (!message) {
    throw new Error(`no ${kind ?? ''} mail to ${to}; mailbox has ${JSON.stringify(messages.map((m) => m.kind))}`);
  }
  const link = (message.links ?? []).find((l) => l.includes('/verify?')) ?? null;
  const params = link ? new URL(link).searchParams : new URLSearchParams();
  const withoutLinks = message.text.replace(/https?:\/\/\S+/g, ' ');
  const code = (withoutLinks.match(/\b(\d{6,10})\b/) ?? [])[1] ?? null;
  return {
    kind: message.kind,
    to: message.to,
    subject: message.subject,
    total: messages.length,
    link,
    token_hash: params.get('token'),
    type: params.get('type'),
    redirect_to: params.get('redirect_to'),
    code,
  };
}

/** The newest text to `phone` in the server's dev outbox (no SMS provider, loopback): its id,
 * code and how many texts that number got. */
export async function latestSms(phone) {
  const res = await fetch(`${serverUrl}/_dev/mail?phone=${encodeURIComponent(phone)}`);
  if (!res.ok) throw new Error(`GET /_dev/mail answered ${res.status}: ${await res.text()}`);
  const { messages } = await res.json();
  if (!messages.length) throw new Error(`no text to ${phone} in the dev outbox`);
  const [message] = messages;
  return { id: message.id, to: message.to, kind: message.kind, text: message.text, code: message.code,
           total: messages.length };
}

/** Open a mailed /verify link like a browser would, but stop at the redirect. */
export async function followLink(link) {
  const res = await fetch(link, { redirect: 'manual' });
  const location = res.headers.get('location');
  const out = { status: res.status, location, query: {}, fragment: {} };
  if (location) {
    const url = new URL(location);
    out.query = Object.fromEntries(url.searchParams);
    out.fragment = Object.fromEntries(new URLSearchParams(url.hash.replace(/^#/, '')));
    out.base = `${url.origin}${url.pathname}`;
  }
  return out;
}

// The phone methods, as any GoTrueClient-like auth does them: sign-up, password and OTP sign-in,
// verifyOtp sms and phone_change, updateUser phone, resend, reauthenticate. `client(label)` makes
// a fresh client; numbers are PHONES, codes read from the dev outbox.
export async function phoneFlows(client) {
  const [P1, P2, P3, P4] = PHONES;
  let sms;
  const text = async (name, phone) => (await step(name, async () => (sms = await latestSms(phone)))).data;
  const c = client('phone');
  await step('signUp_phone', async () => authData(await c.signUp({
    phone: `+${P1}`, password: PASSWORD, options: { data: { name: 'Pat' }, channel: 'sms' },
  })));
  await text('sms_signup', P1);
  await step('signIn_phone_unconfirmed', async () => authData(await client('early').signInWithPassword({ phone: P1, password: PASSWORD })));
  await step('verifyOtp_sms_wrong', async () => authData(await client('guess').verifyOtp({ phone: P1, token: sms.code === '000000' ? '111111' : '000000', type: 'sms' })));
  await step('verifyOtp_sms', async () => authData(await c.verifyOtp({ phone: `+${P1}`, token: sms.code, type: 'sms' })));
  await step('signInWithPassword_phone', async () => authData(await client('pw').signInWithPassword({ phone: P1, password: PASSWORD })));

  // OTP sign-in: an unknown number signs up ({} back), a confirmed one gets the sign-in code.
  const o = client('otp');
  await step('signInWithOtp_phone_new', async () => o.signInWithOtp({ phone: P2, options: { data: { source: 'otp' } } }));
  await text('sms_otp_new', P2);
  await step('verifyOtp_phone_new', async () => authData(await o.verifyOtp({ phone: P2, token: sms.code, type: 'sms' })));
  await step('signInWithOtp_phone', async () => o.signInWithOtp({ phone: P2, options: { shouldCreateUser: false } }));
  await text('sms_otp', P2);
  await step('verifyOtp_phone', async () => authData(await o.verifyOtp({ phone: P2, token: sms.code, type: 'sms' })));
  await step('signInWithOtp_phone_no_create', async () => client('nocreate').signInWithOtp({ phone: P4, options: { shouldCreateUser: false } }));
  await step('signInWithOtp_whatsapp', async () => client('wa').signInWithOtp({ phone: P4, options: { channel: 'whatsapp' } }));

  // Phone change: the code goes to the new number, which verifies it; resend on the current one.
  await step('updateUser_phone', async () => c.updateUser({ phone: P3 }));
  await text('sms_phone_change', P3);
  await step('resend_phone_change', async () => c.resend({ type: 'phone_change', phone: P1 }));
  await text('sms_phone_change_resent', P3);
  await step('verifyOtp_phone_change', async () => authData(await c.verifyOtp({ phone: P3, token: sms.code, type: 'phone_change' })));
  await step('getUser_after_phone_change', async () => c.getUser());
  await step('resend_sms_confirmed', async () => client('resend').resend({ type: 'sms', phone: P3 }));

  // Reauthentication by SMS (no e-mail on the account), the code as the nonce of a password change.
  await step('reauthenticate_phone', async () => c.reauthenticate());
  await text('sms_reauthentication', P3);
  await step('updateUser_password_with_nonce', async () => c.updateUser({ password: `${PASSWORD}-phone`, nonce: sms.code }));
  await step('signIn_after_nonce', async () => authData(await client('after').signInWithPassword({ phone: P3, password: `${PASSWORD}-phone` })));
}

// The secure email change, as any auth client does it: a code to each address (re-sent once),
// both verified, then the new address signs in. `auth` is the signed-in client; `fresh()` makes
// the client that signs in with `password`.
export async function secureEmailChange(auth, { current, moved, password, fresh }) {
  await step('updateUser_email', async () => auth.updateUser({ email: moved }, { emailRedirectTo: `${SITE_URL}/moved` }));
  let toNew;
  let toCurrent;
  const bothMails = async () => {
    toNew = await latestMail(moved, { kind: 'email_change' });
    toCurrent = await latestMail(current, { kind: 'email_change' });
    return { new: toNew, current: toCurrent };
  };
  await step('mail_email_change', bothMails);
  await step('resend_email_change', async () => auth.resend({ type: 'email_change', email: current }));
  await step('mail_email_change_resent', bothMails);
  await step('verifyOtp_email_change_new', async () => authData(await auth.verifyOtp({ email: moved, token: toNew.code, type: 'email_change' })));
  await step('verifyOtp_email_change_current', async () => authData(await auth.verifyOtp({ email: current, token: toCurrent.code, type: 'email_change' })));
  await step('getUser_after_email_change', async () => auth.getUser());
  await step('signIn_new_email', async () => authData(await fresh().signInWithPassword({ email: moved, password })));
}
