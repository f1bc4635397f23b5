import { useState } from 'react';
import Layout from '../components/Layout';

export default function Login() {
  const [message, setMessage] = useState('');

  function onSubmit(event) {
    event.preventDefault();
    setMessage('This example app has no real authentication.');
  }

  return (
    <Layout title="Log in">
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
      {message && <p>{message}</p>}
    </Layout>
  );
}
