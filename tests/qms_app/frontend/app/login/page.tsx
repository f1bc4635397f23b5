'use client';

import { FormEvent, useEffect, useState } from 'react';
import api, { errorMessage } from '@/lib/api';

export default function Login() {
  const [user, setUser] = useState<string | null>(null);
  const [message, setMessage] = useState('');

  useEffect(() => {
    // Also sets the csrftoken cookie that the POST below sends back as X-CSRFToken.
    api
      .get<{ username: string | null }>('/me/')
      .then((response) => setUser(response.data.username))
      .catch((e) => setMessage(errorMessage(e)));
  }, []);

  async function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    try {
      const response = await api.post<{ username: string }>('/login/', {
        username: form.get('username'),
        password: form.get('password'),
      });
      setUser(response.data.username);
      setMessage('Logged in.');
    } catch (e) {
      setMessage(`Login failed: ${errorMessage(e)}`);
    }
  }

  return (
    <>
      <h1>Log in</h1>
      {user && <p id="login-user">Logged in as {user}</p>}
      <form onSubmit={onSubmit}>
        <p>
          <label>
            Username <input name="username" autoComplete="username" />
          </label>
        </p>
        <p>
          <label>
            Password <input name="password" type="password" autoComplete="current-password" />
          </label>
        </p>
        <button type="submit">Log in</button>
      </form>
      {message && <p id="login-message">{message}</p>}
    </>
  );
}
