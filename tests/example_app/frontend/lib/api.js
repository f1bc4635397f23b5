// The API base URL, e.g. https://qms.test/api. Next inlines NEXT_PUBLIC_* variables at build time,
// so this must be set when running `npm run build`; there is deliberately no fallback.
export const API = process.env.NEXT_PUBLIC_API_URL;

export async function getJson(path) {
  if (!API) {
    throw new Error('NEXT_PUBLIC_API_URL was not set at build time');
  }
  const response = await fetch(`${API}${path}`, { headers: { Accept: 'application/json' } });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error(`${path} answered ${response.status}${body && body.status ? ` (${body.status})` : ''}`);
  }
  return body;
}
