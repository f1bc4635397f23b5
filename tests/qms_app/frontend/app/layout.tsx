import type { Metadata } from 'next';
import Link from 'next/link';

// Tests change this string to see a new frontend go live.
const MARKER = 'QMS (guide) frontend v1';

export const metadata: Metadata = { title: 'QMS' };

export default function RootLayout({ children }: { children: React.ReactNode }) {
  return (
    <html lang="en">
      <body style={{ fontFamily: 'sans-serif', maxWidth: 800, margin: '0 auto' }}>
        <nav style={{ display: 'flex', gap: 16, borderBottom: '1px solid #ccc', padding: 8 }}>
          <Link href="/">Defects</Link>
          <Link href="/admin/users">Users</Link>
          <Link href="/login">Log in</Link>
        </nav>
        <main>{children}</main>
        <footer style={{ marginTop: 32, color: '#666' }}>
          <p id="qms-marker">{MARKER}</p>
        </footer>
      </body>
    </html>
  );
}
