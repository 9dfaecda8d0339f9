/**
 * Origin allow-list matching. Entries are full origins (`https://app.example.com`), host patterns with a
 * leading wildcard (`*.example.com`, matching any scheme and subdomains, not the bare domain), or `*`.
 * An empty list allows every origin; a missing Origin header (non-browser clients) is then allowed too,
 * but refused when a list is set, since only browsers are held to it and they always send one.
 */
export function originAllowed(allowed: readonly string[], origin: string | undefined): boolean {
  if (allowed.length === 0 || allowed.includes('*')) return true;
  if (!origin) return false;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return false;
  }
  const o = origin.toLowerCase();
  return allowed.some((entry) => {
    const e = entry.toLowerCase();
    if (e.startsWith('*.')) return host.toLowerCase().endsWith(e.slice(1));
    return e === o || e === host.toLowerCase();
  });
}
