// The identity provider of meshguard's interop tests: panva's oidc-provider on 127.0.0.1.
//
// Started by tests/idp_support: `node --input-type=module --eval` with this text, in the
// directory holding node_modules (`node idp.mjs` there works too). It prints one JSON line,
//   {"ready":true,"issuer":"http://127.0.0.1:PORT","clients":{...}}
// and exits when its standard input ends, so the test process dying takes it along.
//
// Everything secret is made here at start-up and lives as long as the process: the signing
// keys (one per algorithm) and the client secrets, which reach the tests through the ready line.
import { createPublicKey, generateKeyPairSync, randomBytes, verify } from 'node:crypto';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

// One signing key per JWS algorithm. Each JWK names its `alg`, so oidc-provider signs each
// resource's tokens with exactly one key and the published JWKS says which key is for what.
// `Ed25519` is the fully-specified name of RFC 9864; `EdDSA` the polymorphic one of RFC 8037.
const SIGNING = {
  RS256: ['rsa', { modulusLength: 2048 }],
  PS256: ['rsa', { modulusLength: 2048 }],
  ES256: ['ec', { namedCurve: 'P-256' }],
  ES384: ['ec', { namedCurve: 'P-384' }],
  EdDSA: ['ed25519', {}],
  Ed25519: ['ed25519', {}],
};

// The public half of each signing key by `kid`, for the token exchange below to verify the
// subject tokens this IdP issued.
const PUBLIC_KEYS = new Map();

function signingKey(alg) {
  const [type, options] = SIGNING[alg];
  const { privateKey } = generateKeyPairSync(type, options);
  const kid = `${alg.toLowerCase()}-key`;
  PUBLIC_KEYS.set(kid, { alg, key: createPublicKey(privateKey) });
  return { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid };
}

// Resource indicators (RFC 8707): what a client_credentials request names with `resource`
// decides the token's audience, format, signing algorithm and lifetime.
const RESOURCES = {
  'https://api.test/rs256': { alg: 'RS256' },
  'https://api.test/ps256': { alg: 'PS256' },
  'https://api.test/es256': { alg: 'ES256' },
  'https://api.test/es384': { alg: 'ES384' },
  'https://api.test/eddsa': { alg: 'EdDSA' },
  'https://api.test/ed25519': { alg: 'Ed25519' },
  // A short lifetime, for tests that move a clock past `exp`.
  'https://api.test/short': { alg: 'ES256', ttl: 5 },
  // Opaque tokens, readable only through the introspection endpoint.
  'https://api.test/opaque': { opaque: true },
};
const DEFAULT_TTL = 300;

function resourceServer(resource) {
  const spec = RESOURCES[resource];
  if (!spec) {
    return undefined;
  }
  const info = { scope: 'read write', audience: resource, accessTokenTTL: spec.ttl ?? DEFAULT_TTL };
  if (spec.opaque) {
    return { ...info, accessTokenFormat: 'opaque' };
  }
  return { ...info, accessTokenFormat: 'jwt', jwt: { sign: { alg: spec.alg } } };
}

const secret = () => randomBytes(24).toString('base64url');

// Clients for the client_credentials grant, one per way of sending the secret and one held
// to DPoP nonces, and a resource server that may only introspect.
const CLIENTS = {
  basic: { client_id: 'svc-basic', client_secret: secret(), method: 'client_secret_basic', grant: true },
  post: { client_id: 'svc-post', client_secret: secret(), method: 'client_secret_post', grant: true },
  // The one client whose DPoP proofs must carry a nonce of the IdP's (RFC 9449 §8).
  nonce: { client_id: 'svc-nonce', client_secret: secret(), method: 'client_secret_basic', grant: true },
  introspector: { client_id: 'rs', client_secret: secret(), method: 'client_secret_basic', grant: false },
  // A service that may also exchange a user's token for one to another service (RFC 8693).
  exchanger: { client_id: 'svc-exchange', client_secret: secret(), method: 'client_secret_post', grant: true, exchange: true },
};

// RFC 8693 token exchange, which oidc-provider leaves to a registered grant (below).
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

const clients = Object.values(CLIENTS).map((c) => ({
  client_id: c.client_id,
  client_secret: c.client_secret,
  token_endpoint_auth_method: c.method,
  grant_types: [...(c.grant ? ['client_credentials'] : []), ...(c.exchange ? [TOKEN_EXCHANGE] : [])],
  response_types: [],
  redirect_uris: [],
  scope: c.grant ? 'read write' : undefined,
}));

const server = createServer();
await new Promise((resolve) => { server.listen(0, '127.0.0.1', resolve); });
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  jwks: { keys: Object.keys(SIGNING).map(signingKey) },
  clients,
  scopes: ['read', 'write'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // Only the resource-server client reads other clients' tokens.
    introspection: {
      enabled: true,
      allowedPolicy: async (ctx, client, token) => client.clientId === 'rs' || token.clientId === client.clientId,
    },
    // A token request carrying a DPoP proof (RFC 9449) gets a token bound to its key. Nonces
    // are required of `svc-nonce` only (the grant runs after client authentication, so the
    // client is known), leaving every other client's proofs as they were.
    dPoP: {
      enabled: true,
      nonceSecret: randomBytes(32),
      requireNonce: (ctx) => ctx.oidc?.client?.clientId === CLIENTS.nonce.client_id,
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => undefined,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resource) => {
        const info = resourceServer(resource);
        if (!info) {
          throw new errors.InvalidTarget();
        }
        return info;
      },
    },
  },
  ttl: {
    ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL ?? DEFAULT_TTL,
  },
  // A token made by the exchange names the user as `sub` and the exchanging client as the
  // actor (RFC 8693 §4.1), instead of the client as a client-credentials token would.
  formats: {
    customizers: {
      jwt: async (ctx, token, jwt) => {
        const subject = ctx?.state?.exchangedSubject;
        if (subject !== undefined) {
          jwt.payload.sub = subject;
          jwt.payload.act = { sub: token.clientId };
        }
      },
    },
  },
});

// The subject token's claims when it is a JWT this IdP signed (ES256 or RS256), unexpired;
// else `undefined`.
function verifiedSubject(token) {
  const parts = typeof token === 'string' ? token.split('.') : [];
  if (parts.length !== 3) {
    return undefined;
  }
  try {
    const header = JSON.parse(Buffer.from(parts[0], 'base64url'));
    const payload = JSON.parse(Buffer.from(parts[1], 'base64url'));
    const known = PUBLIC_KEYS.get(header.kid);
    if (!known || known.alg !== header.alg || !['ES256', 'RS256'].includes(header.alg)) {
      return undefined;
    }
    const key = header.alg === 'ES256' ? { key: known.key, dsaEncoding: 'ieee-p1363' } : known.key;
    const signed = verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), key, Buffer.from(parts[2], 'base64url'));
    const live = typeof payload.exp === 'number' && payload.exp > Date.now() / 1000;
    return signed && live && payload.iss === issuer ? payload : undefined;
  } catch {
    return undefined;
  }
}

// The exchange: the client is authenticated and allowed the grant by oidc-provider; the
// subject token must be an access token of this IdP's; the new token is for one resource.
provider.registerGrantType(TOKEN_EXCHANGE, async (ctx) => {
  const { params, client } = ctx.oidc;
  if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
    throw new errors.InvalidRequest('subject_token_type must be an access token');
  }
  if (params.requested_token_type && params.requested_token_type !== ACCESS_TOKEN_TYPE) {
    throw new errors.InvalidRequest('only access tokens are issued');
  }
  const subject = verifiedSubject(params.subject_token);
  if (!subject) {
    throw new errors.InvalidGrant('subject_token is not a valid access token of this issuer');
  }
  const info = resourceServer(params.resource);
  if (!info || info.accessTokenFormat !== 'jwt') {
    throw new errors.InvalidTarget();
  }
  const token = new provider.ClientCredentials({ client, scope: params.scope || undefined });
  token.resourceServer = new provider.ResourceServer(params.resource, info);
  ctx.state.exchangedSubject = subject.sub;
  const value = await token.save();
  ctx.body = {
    access_token: value,
    issued_token_type: ACCESS_TOKEN_TYPE,
    token_type: 'Bearer',
    expires_in: token.expiration,
    scope: token.scope,
  };
}, ['subject_token', 'subject_token_type', 'requested_token_type', 'resource', 'scope', 'audience', 'actor_token', 'actor_token_type']);
server.on('request', provider.callback());

const ready = { ready: true, issuer, clients: {} };
for (const [name, c] of Object.entries(CLIENTS)) {
  ready.clients[name] = { id: c.client_id, secret: c.client_secret };
}
process.stdout.write(`${JSON.stringify(ready)}\n`);

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
