/**
 * Credentials out of text that goes to a terminal, a synth error or a CloudFormation event. A
 * message may show what was given, never a password or token in it: each one is replaced by a
 * marker saying where it was, so the reader still knows what to fix.
 */

/** What stands where a credential was. */
export const REDACTED = '<hidden>';

/**
 * Tokens with a recognisable shape: GitHub's (classic `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_` and
 * fine-grained `github_pat_`), AWS access key ids, and PEM private keys.
 */
const TOKEN_SHAPES: readonly RegExp[] = [
  /\bgh[pousr]_[A-Za-z0-9]{20,}/g,
  /\bgithub_pat_[A-Za-z0-9_]{20,}/g,
  /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g,
];

/**
 * A query parameter that carries a credential, wherever the text around it no longer reads as a
 * URL (a path resolved from one: `/dir/https:/host/app.jar?X-Amz-Signature=...`).
 */
const CREDENTIAL_PARAMETER =
  /(?<=[?&])(X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|AWSAccessKeyId|sig|token|access_token|password|secret)=[^&\s"'`#]*/gi;

/** A GitHub token as a whole value: a prefixed one, or a classic 40-hex one. */
const WHOLE_GITHUB_TOKEN = /^(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|[0-9a-f]{40})$/;

/** Whether `value` is, as a whole, shaped like a GitHub token. */
export function looksLikeGitHubToken(value: string): boolean {
  return WHOLE_GITHUB_TOKEN.test(value.trim());
}

/**
 * `text` with credentials replaced by `REDACTED`:
 * - the user info of a URL (`https://user:password@host`, `https://TOKEN@host`): all of it for
 *   http(s), whose user names are tokens as often as not; for other schemes (ssh://git@host) the
 *   user name stays and only a password goes;
 * - a URL's query, which carries presigned URLs' signatures and session tokens, and any
 *   credential-named query parameter (`X-Amz-Signature=`, `token=`) elsewhere;
 * - tokens with a recognisable shape (`TOKEN_SHAPES`), anywhere.
 */
export function redactCredentials(text: string): string {
  let redacted = text.replace(
    /\b([a-z][a-z0-9+.-]*):\/\/([^\s/?#"'`]*)@/gi,
    (_match, scheme: string, userInfo: string) => {
      const keepsUser = !/^https?$/i.test(scheme) && !userInfo.includes(':');
      if (keepsUser) return `${scheme}://${userInfo}@`;
      const colon = userInfo.indexOf(':');
      const user = !/^https?$/i.test(scheme) && colon > 0 ? userInfo.slice(0, colon) : undefined;
      return `${scheme}://${user === undefined ? REDACTED : `${user}:${REDACTED}`}@`;
    },
  );
  // The query runs to a blank, a quote or the end, less the punctuation of the sentence around it.
  redacted = redacted.replace(
    /\b([a-z][a-z0-9+.-]*:\/\/[^\s?#"'`]*)\?[^\s#"'`]*?(?=[.,;:)]*(?:[\s#"'`]|$))/gi,
    (_match, beforeQuery: string) => `${beforeQuery}?${REDACTED}`,
  );
  redacted = redacted.replace(CREDENTIAL_PARAMETER, (_match, name: string) => `${name}=${REDACTED}`);
  for (const shape of TOKEN_SHAPES) redacted = redacted.replace(shape, REDACTED);
  return redacted;
}

/** Whether `text` holds anything `redactCredentials` would hide. */
export function holdsCredentials(text: string): boolean {
  return redactCredentials(text) !== text;
}
