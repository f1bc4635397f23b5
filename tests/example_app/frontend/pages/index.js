import { useEffect, useState } from 'react';
import Layout from '../components/Layout';
import Health from '../components/Health';
import { getJson } from '../lib/api';

export default function Home() {
  const [defects, setDefects] = useState(null);
  const [error, setError] = useState(null);

  useEffect(() => {
    getJson('/defects/')
      .then(setDefects)
      .catch((e) => setError(e.message));
  }, []);

  return (
    <Layout title="QMS">
      <Health />
      <h2>Defects</h2>
      {error && <p id="defects-error">Could not load defects: {error}</p>}
      {!error && defects === null && <p>Loading defects...</p>}
      {defects && defects.length === 0 && <p>No defects recorded.</p>}
      {defects && defects.length > 0 && (
        <ul id="defects">
          {defects.map((d) => (
            <li key={d.id}>
              {d.title} ({d.severity}, {d.status})
            </li>
          ))}
        </ul>
      )}
    </Layout>
  );
}
