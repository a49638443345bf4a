// A software WebAuthn authenticator for Node, installed as navigator.credentials: a P-256 key that
// makes real `none` attestations and ES256 assertions, so auth-js's mfa.webauthn runs unchanged.

import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';

// --- a small CBOR encoder (unsigned/negative ints, byte and text strings, maps) -------------------

function head(major, n) {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 0x100) return Buffer.from([(major << 5) | 24, n]);
  if (n < 0x10000) { const b = Buffer.alloc(3); b[0] = (major << 5) | 25; b.writeUInt16BE(n, 1); return b; }
  const b = Buffer.alloc(5); b[0] = (major << 5) | 26; b.writeUInt32BE(n, 1); return b;
}

function cbor(value) {
  if (typeof value === 'number') return value >= 0 ? head(0, value) : head(1, -1 - value);
  if (typeof value === 'string') { const s = Buffer.from(value, 'utf8'); return Buffer.concat([head(3, s.length), s]); }
  if (Buffer.isBuffer(value)) return Buffer.concat([head(2, value.length), value]);
  const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
  return Buffer.concat([head(5, entries.length), ...entries.flatMap(([k, v]) => [cbor(k), cbor(v)])]);
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const bytes = (ab) => Buffer.from(ab instanceof ArrayBuffer ? new Uint8Array(ab) : ab);

/** A PublicKeyCredential as a browser hands it out; toJSON is the WebAuthn Level 3 shape. */
export class SoftPublicKeyCredential {
  constructor(json) { this.json = json; this.id = json.id; this.type = 'public-key'; }
  toJSON() { return this.json; }
  getClientExtensionResults() { return {}; }
}

export class SoftAuthenticator {
  constructor(origin) {
    this.origin = origin;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    this.privateKey = privateKey;
    this.jwk = publicKey.export({ format: 'jwk' });
    this.credentialId = randomBytes(32);
    this.signCount = 0;
    this.calls = [];
  }

  clientData(type, challenge) {
    return Buffer.from(JSON.stringify({ type, challenge: b64url(bytes(challenge)), origin: this.origin, crossOrigin: false }));
  }

  async create({ publicKey }) {
    this.calls.push({ kind: 'create', rp: publicKey.rp, user: publicKey.user.name });
    const rpHash = createHash('sha256').update(publicKey.rp.id).digest();
    this.signCount += 1;
    const count = Buffer.alloc(4); count.writeUInt32BE(this.signCount);
    const idLength = Buffer.alloc(2); idLength.writeUInt16BE(this.credentialId.length);
    const coseKey = cbor(new Map([[1, 2], [3, -7], [-1, 1],
      [-2, Buffer.from(this.jwk.x, 'base64url')], [-3, Buffer.from(this.jwk.y, 'base64url')]]));
    const authData = Buffer.concat([rpHash, Buffer.from([0x45]), count, Buffer.alloc(16), idLength, this.credentialId, coseKey]);
    const attestationObject = cbor(new Map([['fmt', 'none'], ['attStmt', new Map()], ['authData', authData]]));
    return new SoftPublicKeyCredential({
      id: b64url(this.credentialId), rawId: b64url(this.credentialId), type: 'public-key',
      response: { clientDataJSON: b64url(this.clientData('webauthn.create', publicKey.challenge)),
                  attestationObject: b64url(attestationObject), transports: ['usb'] },
      clientExtensionResults: {}, authenticatorAttachment: 'cross-platform',
    });
  }

  async get({ publicKey }) {
    this.calls.push({ kind: 'get', rpId: publicKey.rpId, allow: (publicKey.allowCredentials ?? []).length });
    const rpHash = createHash('sha256').update(publicKey.rpId).digest();
    this.signCount += 1;
    const count = Buffer.alloc(4); count.writeUInt32BE(this.signCount);
    const authData = Buffer.concat([rpHash, Buffer.from([0x05]), count]);
    const clientData = this.clientData('webauthn.get', publicKey.challenge);
    const signature = sign('sha256', Buffer.concat([authData, createHash('sha256').update(clientData).digest()]), this.privateKey);
    return new SoftPublicKeyCredential({
      id: b64url(this.credentialId), rawId: b64url(this.credentialId), type: 'public-key',
      response: { clientDataJSON: b64url(clientData), authenticatorData: b64url(authData), signature: b64url(signature) },
      clientExtensionResults: {}, authenticatorAttachment: 'cross-platform',
    });
  }

  /** Make this process look like a browser with this authenticator plugged in (after the
   * clients were built, so their set-up saw plain Node). */
  install() {
    globalThis.window = globalThis.window ?? { location: new URL(this.origin), addEventListener() {}, removeEventListener() {} };
    globalThis.window.PublicKeyCredential = SoftPublicKeyCredential;
    globalThis.document = globalThis.document ?? { visibilityState: 'visible', addEventListener() {}, removeEventListener() {} };
    globalThis.PublicKeyCredential = SoftPublicKeyCredential;
    Object.defineProperty(globalThis, 'navigator', {
      value: { credentials: { create: (o) => this.create(o), get: (o) => this.get(o) } },
      configurable: true, writable: true,
    });
  }
}
