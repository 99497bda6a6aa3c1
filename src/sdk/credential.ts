import { fail, isConclaveError } from '../core/errors.js';
import { type CaInput, exchangeJson, urlOf } from './http.js';

/** OAuth2 client credentials for a token endpoint (`<data-dir>/admin.json` has this shape). */
export interface ClientCredential {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly tokenEndpoint: string;
  /** Defaults to `https://vault.azure.net/.default`, what Azure clients ask for. */
  readonly scope?: string;
}

/** A bearer access token for the vault: a function returning one, or client credentials to get one. */
export type Credential = (() => string | Promise<string>) | ClientCredential;

/** Resolves a {@link Credential} to a bearer access token; throws `sdk.credential_failed`. */
export async function getAccessToken(credential: Credential, ca?: CaInput): Promise<string> {
  if (typeof credential === 'function') {
    const t = await credential();
    if (typeof t !== 'string' || t === '') throw fail('sdk.credential_failed', 'the credential function returned no access token');
    return t;
  }
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: credential.clientId,
    client_secret: credential.clientSecret,
    scope: credential.scope ?? 'https://vault.azure.net/.default',
  }).toString();
  try {
    const body = await exchangeJson(credential.tokenEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form,
      ca,
      what: 'the token request',
    });
    if (typeof body.access_token !== 'string' || body.access_token === '') throw fail('sdk.credential_failed', 'the token endpoint answered without access_token');
    return body.access_token;
  } catch (e) {
    if (isConclaveError(e, 'sdk.http_error')) throw fail('sdk.credential_failed', `no access token from ${urlOf(credential.tokenEndpoint).origin}: ${e.message}`, e.detail, e);
    throw e;
  }
}
