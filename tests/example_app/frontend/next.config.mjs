/** @type {import('next').NextConfig} */
const nextConfig = {
  // Static export to out/: nginx serves it; pages export as e.g. out/admin/users.html (trailingSlash: false).
  output: 'export',
  images: { unoptimized: true },
  // No ESLint in this example app (keeps installs small).
  eslint: { ignoreDuringBuilds: true },
};

export default nextConfig;
