import axios from 'axios';

// The guide's client (section 7). NEXT_PUBLIC_API_URL (e.g. https://qms.test/api) is baked in by `next build`.
const api = axios.create({
  baseURL: process.env.NEXT_PUBLIC_API_URL,
  // Django's CSRF cookie and header (axios's defaults are XSRF-TOKEN / X-XSRF-TOKEN).
  xsrfCookieName: 'csrftoken',
  xsrfHeaderName: 'X-CSRFToken',
});

export interface Defect {
  id: number;
  title: string;
  part_number: string;
  severity: string;
  status: string;
  created_at: string;
}

export function errorMessage(error: unknown): string {
  if (axios.isAxiosError(error)) {
    const detail = (error.response?.data as { error?: string } | undefined)?.error;
    return detail || error.message;
  }
  return String(error);
}

export default api;
