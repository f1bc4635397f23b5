import Layout from '../components/Layout';

export default function NotFound() {
  return (
    <Layout title="Page not found">
      <p>There is no page at this address.</p>
    </Layout>
  );
}
