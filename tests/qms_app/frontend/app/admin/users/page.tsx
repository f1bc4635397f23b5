// A frontend page under /admin/ (guide section 8): nginx must not send /admin/... to Django,
// whose admin lives at /django-admin/.
export default function Users() {
  return (
    <>
      <h1>User management</h1>
      <p id="users-page">Users are managed here, in the frontend; Django&apos;s admin is at /django-admin/.</p>
    </>
  );
}
