/** Credentials must never reach logs, errors or reports: every printable form of a URL or header passes here. */

/**
 * A URL safe to print. An http(s) URL that parses has its userinfo and secret-looking parameters masked; anything
 * else (an invalid port, a missing scheme, a password with an unencoded "/") may hide a password where the
 * parser cannot see it, so everything up to the last "@" is masked.
 */
export function redactUrl(raw: string): string {
  let u: URL | undefined;
  try {
    u = new URL(raw);
  } catch {
    u = undefined;
  }
  // "http://u:12/pw@host" parses as host "u", port 12, path "/pw@host": an "@" in the path is a misread userinfo.
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || /@|%40/.test(u.pathname))
    return maskUserinfo(raw);
  if (u.username || u.password) {
    u.username = u.username ? '***' : '';
    u.password = u.password ? '***' : '';
  }
  for (const key of [...u.searchParams.keys()]) {
    if (/pass|secret|token|key|auth/i.test(key)) u.searchParams.set(key, '***');
  }
  return u.toString();
}

function maskUserinfo(raw: string): string {
  const at = raw.lastIndexOf('@');
  if (at < 0) return raw;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(raw)?.[0] ?? '';
  return `${scheme}***${raw.slice(at)}`;
}

/** URL userinfo inside free text (a YAML error's code frame, a message from a library) masked. */
export function redactUrlsIn(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s"'<>@]*@/gi, '$1***@');
}

/** True when a URL string carries (or may carry) userinfo, whether or not it parses. */
export function hasUserinfo(raw: string): boolean {
  return maskUserinfo(raw) !== raw;
}

/** Replace any known secret value inside free text (error bodies can echo request headers back). */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) {
    if (s.length >= 3) out = out.split(s).join('***');
  }
  return out;
}
