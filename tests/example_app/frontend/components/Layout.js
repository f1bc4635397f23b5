import Head from 'next/head';
import Link from 'next/link';

// Visible marker the deployment tool's tests look for (and change in later commits).
export const MARKER = 'QMS frontend v1';

export default function Layout({ title, children }) {
  return (
    <>
      <Head>
        <title>{title}</title>
        <meta name="viewport" content="width=device-width, initial-scale=1" />
      </Head>
      <header style={{ borderBottom: '1px solid #ccc', paddingBottom: 8 }}>
        <nav style={{ display: 'flex', gap: 16 }}>
          <Link href="/">Defects</Link>
          <Link href="/admin/users">Users</Link>
          <Link href="/login">Log in</Link>
        </nav>
      </header>
      <main style={{ fontFamily: 'sans-serif', maxWidth: 800 }}>
        <h1>{title}</h1>
        {children}
      </main>
      <footer style={{ marginTop: 32, color: '#666' }}>
        <p id="qms-marker">{MARKER}</p>
      </footer>
    </>
  );
}
