import type { NextConfig } from "next";

const nextConfig: NextConfig = {
  // Static export to out/, served by nginx (guide section 1). No trailingSlash: pages export as login.html.
  output: 'export',
};

export default nextConfig;
