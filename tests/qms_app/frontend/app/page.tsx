'use client';

import { useEffect, useState } from 'react';
import api, { Defect, errorMessage } from '@/lib/api';

export default function Home() {
  const [defects, setDefects] = useState<Defect[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    api
      .get<Defect[]>('/defects/')
      .then((response) => setDefects(response.data))
      .catch((e) => setError(errorMessage(e)));
  }, []);

  return (
    <>
      <h1>QMS defects</h1>
      {error && <p id="defects-error">Could not load defects: {error}</p>}
      {!error && defects === null && <p>Loading defects...</p>}
      {defects && defects.length === 0 && <p>No defects recorded.</p>}
      {defects && defects.length > 0 && (
        <ul id="defects">
          {defects.map((d) => (
            <li key={d.id}>
              {d.title} ({d.part_number || 'no part'}, {d.severity}, {d.status})
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
