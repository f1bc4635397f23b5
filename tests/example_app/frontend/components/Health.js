import { useEffect, useState } from 'react';
import { getJson } from '../lib/api';

export default function Health() {
  const [line, setLine] = useState('Backend health: checking...');

  useEffect(() => {
    getJson('/health/')
      .then((h) => setLine(`Backend health: ${h.status} (database ${h.database}, migrations ${h.migrations})`))
      .catch((error) => setLine(`Backend health: unreachable (${error.message})`));
  }, []);

  return <p id="health">{line}</p>;
}
