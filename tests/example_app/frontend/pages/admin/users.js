import Layout from '../../components/Layout';
import Health from '../../components/Health';

export default function Users() {
  return (
    <Layout title="Users">
      <p>User management lives here in the real QMS; this example only checks the API.</p>
      <Health />
    </Layout>
  );
}
